"""A deleted collection stays deleted (issue 26, points 4 and 8).

The review deleted a collection while people, keys, events and moves landed in it: on SQLite 21 of 40 rounds
left orphans (rows of a collection that no longer exists), and a new collection of the same name inherited a
working admin key of the old one; on PostgreSQL the losers got 500s (foreign-key errors, StaleDataError) and the
delete itself a misleading 409. Now the write lock comes before the check: every creator either lands before the
delete (and goes with it) or is refused with 404, and nothing else happens.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from app.access.audit import CLI
from app.access.keys import authenticate, create_key
from app.core.errors import NotFound
from app.core.tables import ApiKey, Person, RecognitionEvent, Webhook
from app.live.events import NewEvent
from models.errors import FaceshotError

ROUNDS = 12


@pytest.fixture
def service(database_url, make_client, tmp_path):  # the app closes before its schema is dropped
    return make_client(tmp_path / "data", database_url=database_url).app.state.service


def orphans(service, name: str) -> dict[str, int]:
    with service.sessions() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table)
                                                    .where(table.collection == name))
                for table in (Person, ApiKey, RecognitionEvent, Webhook)}


def one_round(service, name: str) -> tuple[list[str], list[BaseException]]:
    """Delete ``name`` while six others create in it, all released at once; what each got."""
    mover = service.people.create_person(f"mover of {name}", collection="default", actor=CLI)
    start = threading.Barrier(7)
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def run(action):
        start.wait()
        try:
            action()
            outcomes.append("landed")
        except NotFound:
            outcomes.append("refused")  # the collection was gone: a 404, nothing stored
        except BaseException as exc:  # a 409, an IntegrityError, a StaleDataError...: wrong, or a 500 to a client
            failures.append(exc)

    now = datetime.now(timezone.utc)
    actions = [
        lambda: service.collections.delete_collection(name, CLI),
        lambda: service.people.create_person("late", collection=name, actor=CLI),
        lambda: create_key(service.sessions, "late", "admin", collection=name, actor=CLI),
        lambda: service.events.record(NewEvent(time=now, source="door", person_id=None, distance=None,
                                              threshold=None, box=[0, 0, 1, 1], quality={}, collection=name)),
        lambda: service.people.move_person(mover.id, "default", name, actor=CLI),
        lambda: service.people.create_person("late too", collection=name, actor=CLI),
        lambda: service.webhooks.create("https://receiver.example/hook", CLI, name),
    ]
    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes, failures


def test_nothing_lands_in_a_collection_being_deleted(service):
    refused = 0
    for round_ in range(ROUNDS):
        name = f"doomed-{round_}"
        service.collections.create_collection(name, CLI)
        _, old_secret = create_key(service.sessions, "old", "admin", collection=name, actor=CLI)
        outcomes, failures = one_round(service, name)
        assert not failures, f"round {round_}: {failures!r}"
        assert orphans(service, name) == {"people": 0, "api_keys": 0, "recognition_events": 0,
                                          "webhooks": 0}, f"round {round_}"
        # a new collection of the same name is new: the old one's key does not work in it
        service.collections.create_collection(name, CLI)
        with pytest.raises(FaceshotError):
            authenticate(service.sessions, old_secret, need_admin=True, collection=name)
        refused += outcomes.count("refused")
    assert refused  # the race was run, not only won by the creators


def test_a_photo_name_another_write_holds_is_a_conflict_not_an_outage(service):
    """The journal row of a photo name another write holds refused the second write as 'the database is
    unreachable' (seen by two imports of one face id at once)."""
    from app.core.errors import Conflict

    name = service.photos.file_name("0123456789abcdef0123456789abcdef")
    service.photos.reserve([name])
    with pytest.raises(Conflict) as refused:
        service.gallery_sync.write(lambda session: None, new_photos=[name])
    assert refused.value.details == {"reason": "photo_name_taken"}
