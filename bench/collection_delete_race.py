"""Rounds of deleting a collection while people, keys, events, moves and webhooks land in it (issue 26, point 4).

Each round makes a collection with an admin key, then releases seven threads at once: one deletes the collection,
six create in it. Counted: rounds that left rows of a collection that no longer exists (orphans), rounds in which a
creator got an error other than "not found" (a 409 or a 500 to a client), and whether the old key works in a new
collection of the same name. Run from a tree (``--tree``, default this one) on SQLite or PostgreSQL:

    PYTHONPATH=. .venv/bin/python bench/collection_delete_race.py --rounds 40
    git worktree add /tmp/ref 251fb11 && PYTHONPATH=. .venv/bin/python bench/collection_delete_race.py --tree /tmp/ref
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--database-url", default=None, help="a fresh database (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))  # that tree's code, ahead of the venv's install

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from app.core.config import Settings
    from app.main import create_app

    try:
        from app.core.tables import ApiKey, Collection, Person, RecognitionEvent, Webhook
    except ImportError:  # a tree before the re-layout
        from app.core.tables import ApiKey, Collection, Person, RecognitionEvent, Webhook
    try:
        from app.access.audit import CLI
        from app.access.keys import authenticate, create_key
        from app.live.events import NewEvent
    except ImportError:
        from app.access.audit import CLI
        from app.access.keys import authenticate, create_key
        from app.live.events import NewEvent

    data = Path(tempfile.mkdtemp(prefix="faceshot-delete-race-"))
    settings = Settings(data_dir=data, admin_key="bench-admin-key-0123456789",
                        **({"database_url": args.database_url} if args.database_url else {}))
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service
        # the re-layout splits the service: its parts where they are, or the service itself before it
        people = getattr(service, "people", service)
        collections = getattr(service, "collections", service)
        record = service.events.record if hasattr(service, "events") else service.record_event
        hooks = getattr(service, "webhooks", None)
        orphan_rounds, failure_rounds, inherited, refused, deletes_failed = 0, 0, 0, 0, 0
        for round_ in range(args.rounds):
            name = f"doomed-{round_}"
            collections.create_collection(name, CLI)
            mover = people.create_person(f"mover {round_}", collection="default", actor=CLI)
            _, old_secret = create_key(service.sessions, "old", "admin", collection=name, actor=CLI)
            start = threading.Barrier(7)
            outcomes: dict[int, str] = {}
            now = datetime.now(timezone.utc)

            def run(i, action, start=start, outcomes=outcomes):
                start.wait()
                try:
                    action()
                    outcomes[i] = "landed"
                except Exception as exc:  # noqa: BLE001  (what each creator got is the measurement)
                    outcomes[i] = "refused" if getattr(exc, "code", "") == "not_found" else type(exc).__name__

            actions = [
                lambda name=name: collections.delete_collection(name, CLI),
                lambda name=name: people.create_person("late", collection=name, actor=CLI),
                lambda name=name: create_key(service.sessions, "late", "admin", collection=name, actor=CLI),
                lambda name=name, now=now: record(NewEvent(time=now, source="door", person_id=None, distance=None,
                                                           threshold=None, box=[0, 0, 1, 1], quality={},
                                                           collection=name)),
                lambda name=name, mover=mover: people.move_person(mover.id, "default", name, actor=CLI),
                lambda name=name: people.create_person("late too", collection=name, actor=CLI),
                lambda name=name: hooks.create("https://receiver.example/hook", CLI, name),
            ]
            threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            with service.sessions() as session:
                left = sum(session.scalar(select(func.count()).select_from(table).where(table.collection == name))
                           for table in (Person, ApiKey, RecognitionEvent, Webhook))
                gone = session.get(Collection, name) is None
            orphan_rounds += gone and left > 0  # rows of a collection that no longer exists
            deletes_failed += not gone
            failure_rounds += any(o not in ("landed", "refused") for o in outcomes.values())
            refused += list(outcomes.values()).count("refused")
            if not gone:  # the delete itself failed (a misleading 409 on PostgreSQL before)
                continue
            collections.create_collection(name, CLI)
            try:
                authenticate(service.sessions, old_secret, need_admin=True, collection=name)
                inherited += 1
            except Exception:  # noqa: BLE001  (refused: as it should be)
                pass
    print(json.dumps({"tree": str(args.tree), "database": "postgresql" if args.database_url else "sqlite",
                      "rounds": args.rounds, "rounds_with_orphans": orphan_rounds,
                      "rounds_with_an_error_other_than_404": failure_rounds,
                      "new_collections_the_old_key_worked_in": inherited, "creators_refused_404": refused,
                      "deletes_that_failed": deletes_failed}))


if __name__ == "__main__":
    main()
