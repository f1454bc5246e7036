"""``faceshot serve``, ``faceshot import`` and ``faceshot reembed``: the service's own commands."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path


def _apply_overrides(args) -> None:
    """Command-line flags become the same FACESHOT_* variables the workers read."""
    for flag, env in (("data_dir", "FACESHOT_DATA_DIR"), ("database_url", "FACESHOT_DATABASE_URL"),
                      ("encoder", "FACESHOT_ENCODER"), ("device", "FACESHOT_DEVICE")):
        value = getattr(args, flag, None)
        if value:
            os.environ[env] = str(value)


def cmd_serve(args) -> int:
    import uvicorn

    # the workers (fresh interpreters: uvicorn spawns them) inherit the multiprocess directory
    from .observability import log_config, prepare_multiprocess_dir

    made_metrics_dir = args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = prepare_multiprocess_dir(args.workers)
    from .core.config import Settings
    from .core.db import make_engine, make_sessionmaker, upgrade_database
    from .keys import ensure_admin_key

    _apply_overrides(args)
    os.environ["FACESHOT_WORKERS"] = str(args.workers)
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Schema and first admin key once, before the workers start, so they never race for them.
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    where = ensure_admin_key(settings, make_sessionmaker(engine))
    engine.dispose()
    if where and where != "FACESHOT_ADMIN_KEY":
        print(f"faceshot: the admin API key is in {where}", file=sys.stderr)
    try:
        uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers,
                    log_level=args.log_level, log_config=log_config(args.log_level), access_log=False,
                    # X-Forwarded-For only from the proxies named in FORWARDED_ALLOW_IPS (read by uvicorn):
                    # otherwise any caller could pick the address its rate limits are counted under.
                    proxy_headers=bool(os.environ.get("FORWARDED_ALLOW_IPS")))
    finally:
        if made_metrics_dir and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_import(args) -> int:
    """Enroll one person per sub-folder, through the same code path as POST /enroll."""
    from tqdm import tqdm

    from models.dataset_embeddings import list_image_folder
    from models.errors import FaceshotError

    from .core.config import Settings
    from .main import build_service

    _apply_overrides(args)
    service = build_service(Settings())
    folders = list_image_folder(args.dir)
    root = Path(args.dir)
    enrolled, refused, skipped = [], [], []
    existing = {p.name for p in service.list_people(None, 1_000_000, 0)[0]} if args.skip_existing else set()
    for person, files in tqdm(folders.items(), desc="importing", unit="person"):
        name = person.replace("_", " ")
        if name in existing:
            skipped.append(name)
            continue
        prepared = []
        for rel in files[: args.max_photos]:
            try:
                prepared.append(service.prepare((root / rel).read_bytes()))
            except FaceshotError as exc:
                refused.append({"photo": rel, "code": exc.code, "reason": exc.message})
        if not prepared:
            continue
        try:
            result = service.enroll(name, prepared)
            enrolled.append({"name": name, "id": result.person.id, "photos": len(prepared),
                             "warnings": [w["code"] for w in result.warnings]})
        except FaceshotError as exc:
            refused += [{"photo": rel, "code": exc.code, "reason": exc.message} for rel in files[: args.max_photos]]
    summary = {"enrolled_people": len(enrolled), "enrolled_photos": sum(e["photos"] for e in enrolled),
               "skipped_existing": len(skipped), "refused_photos": refused,
               "warnings": [e for e in enrolled if e["warnings"]]}
    print(json.dumps(summary, indent=2))
    return 0 if enrolled or not folders else 1


def cmd_reembed(args) -> int:
    """Re-make every stored embedding with the configured encoder, from the kept photos."""
    from tqdm import tqdm

    from .core.config import Settings
    from .main import build_service

    _apply_overrides(args)
    service = build_service(Settings(), check_encoder=False)
    summary = service.reembed(delete_unrecoverable=args.delete_unrecoverable,
                              progress=lambda rows: tqdm(rows, desc="re-embedding", unit="face"))
    print(json.dumps(summary, indent=2))
    if summary["unrecoverable"] and not args.delete_unrecoverable:
        print(f"faceshot: {len(summary['unrecoverable'])} face(s) cannot be re-made (see above); nothing was changed. "
              "Re-enroll them, or run again with --delete-unrecoverable to remove them.", file=sys.stderr)
        return 1
    return 0


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    def common(p):
        p.add_argument("--data-dir", default=None, help="default: $FACESHOT_DATA_DIR or ./data")
        p.add_argument("--database-url", default=None, help="default: SQLite under the data directory")
        p.add_argument("--encoder", default=None)
        p.add_argument("--device", default=None)
        return p

    p = common(sub.add_parser("serve", help="run the HTTP service (migrations first)"))
    p.add_argument("--host", default=os.environ.get("FACESHOT_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("FACESHOT_PORT", "8000")))
    p.add_argument("--workers", type=int, default=int(os.environ.get("FACESHOT_WORKERS", "1")))
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)

    p = common(sub.add_parser("import", help="enroll a folder of people (one sub-folder each)"))
    p.add_argument("dir")
    p.add_argument("--max-photos", type=int, default=2, help="photos per person to enroll")
    p.add_argument("--skip-existing", action="store_true", help="skip folders whose name is already enrolled")
    p.set_defaults(func=cmd_import)

    p = common(sub.add_parser("reembed", help="after an encoder change: re-make every embedding from the kept photos"))
    p.add_argument("--delete-unrecoverable", action="store_true",
                   help="remove faces that cannot be re-made (photo not kept) instead of changing nothing")
    p.set_defaults(func=cmd_reembed)
