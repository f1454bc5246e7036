"""The ``faceshot`` command line: the service's commands, the face pipeline's and the training ones, one parser.

``faceshot = "app.cli:main"``. The groups come from ``models/cli.py`` (embed, compare,
eval-openset, calibrate, fetch-weights), ``models/fewshot/cli.py`` (train, evaluate,
export-encoder, prepare-faces) and this module (serve, import, export, watch, reembed, admin-key, admin-account). Every
error is printed as ``faceshot: <code>: <message>`` with exit status 1 (2: bad usage; 130: Ctrl-C).
Heavy modules (torch) are imported by the commands, not here, so ``--help`` is quick; the commands that
need no face model (admin-key, admin-account, watch --server) never import it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from models.cli import add_pipeline_commands
from models.errors import FaceshotError
from models.fewshot.cli import add_training_commands

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PIPELINE_COMMANDS = ("embed", "compare", "eval-openset", "calibrate")
# they read the service's Settings (or none at all), never the pipeline commands' model defaults
SERVICE_COMMANDS = ("serve", "import", "export", "watch", "reembed", "admin-key", "admin-account", "photos")
INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)
FOLDER_LAYOUT = ("one sub-folder of photos per person (people/Ada_Lovelace/1.jpg, people/Ada_Lovelace/2.jpg), or, "
                 "as face_recognition takes them, one photo per person named after them (people/Ada_Lovelace.jpg; "
                 "a trailing _<number> marks more photos of the same person: people/Ada_Lovelace_2.jpg). "
                 "In names '_' becomes a space")


class StartRefused(SystemExit):
    """A start the configuration does not allow: the message is printed as ``faceshot: <code>: ...``, status 1."""

    def __init__(self, message: str, code: str = "validation_error"):
        print(f"faceshot: {code}: {message}", file=sys.stderr)
        super().__init__(1)


def _settings():
    """The settings from the environment, or a refusal that names the bad ones."""
    from pydantic import ValidationError

    from app.core.config import Settings, unknown_settings

    unknown = unknown_settings(os.environ)
    if unknown:  # a misspelled setting would otherwise be ignored in silence
        raise StartRefused("unknown settings: " + "; ".join(
            f"{name}" + (f" (did you mean {near}?)" if near else "") for name, near in unknown)
            + ". The settings are listed in docs/configuration.md.")
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"FACESHOT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise StartRefused(f"invalid settings: {problems}") from None


@contextmanager
def _opening_storage(settings):
    """The data directory and database as the settings name them, or one line that says which cannot be used."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from app.core.errors import ServiceUnavailable, StorageUnavailable, ValidationFailed
    from app.core.instance import StorageMismatch

    try:
        yield
    except StorageMismatch as exc:  # the data directory and the database belong to different deployments
        raise StartRefused(str(exc), "conflict") from None
    except ArgumentError as exc:  # a database URL SQLAlchemy cannot read (unknown driver, malformed)
        raise ValidationFailed(f"FACESHOT_DATABASE_URL (--database-url) {settings.database_url!r} is not a "
                               f"database URL SQLAlchemy can use: {exc}") from None
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # drivers' messages span lines
        raise ServiceUnavailable(f"cannot open the database {settings.database_label}: {reason}") from None
    except OSError as exc:
        if not _within(exc.filename, settings.data_dir):  # a model file, a photo: main() names it as it is
            raise
        raise StorageUnavailable(f"cannot use the data directory {settings.data_dir} (FACESHOT_DATA_DIR, "
                                 f"--data-dir): {exc.strerror or exc}"
                                 + (f": {exc.filename}" if exc.filename else "")) from None


def _within(filename, folder: Path) -> bool:
    if not filename:
        return False
    path, folder = Path(os.fsdecode(filename)).absolute(), Path(folder).absolute()
    return path == folder or folder in path.parents


def _prepared(settings):
    """Data directory, schema, binding and admin key, or a refusal that says what to check."""
    from app.startup import prepare_deployment

    with _opening_storage(settings):
        return prepare_deployment(settings)


def _service(settings, **kwargs):
    from app.startup import build_service

    with _opening_storage(settings):
        return build_service(settings, **kwargs)


def _weights_present(settings, spec: str | None = None) -> None:
    """The encoder's weights (every member's) are on this machine, or a refusal naming the fetch command.
    ``spec``: the gallery's stored encoder (app/gallery/encoder_choice.py) instead of FACESHOT_ENCODER."""
    from models.encoders.spec import check_weights
    from models.errors import CheckpointError, WeightsUnavailable

    try:
        check_weights(spec or settings.encoder, settings.weight_sources())
    except (CheckpointError, WeightsUnavailable) as exc:
        where = f"this gallery's encoder {spec} (stored with it)" if spec else f"FACESHOT_ENCODER={settings.encoder}"
        raise StartRefused(f"{where}: {exc.message}", exc.code) from None


def _apply_overrides(args) -> None:
    """Command-line flags become the same FACESHOT_* variables the workers read."""
    for flag, env in (("data_dir", "FACESHOT_DATA_DIR"), ("database_url", "FACESHOT_DATABASE_URL"),
                      ("encoder", "FACESHOT_ENCODER"), ("device", "FACESHOT_DEVICE")):
        value = getattr(args, flag, None)
        if value:
            os.environ[env] = str(value)


def prepare_multiprocess_dir(workers: int) -> str | None:
    """Before the workers start: an empty prometheus-client multiprocess directory when there are several.

    A directory named by the environment is emptied (files of a previous run would be summed in);
    otherwise a new temporary one is made. One worker keeps the plain in-process registry. The
    workers (fresh interpreters: uvicorn spawns them) inherit it through the environment.
    """
    if workers <= 1:
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        Path(path).mkdir(parents=True, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="faceshot-prometheus-")
        os.environ[MULTIPROC_ENV] = path
    return path


def cmd_serve(args) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from app.api.edge import GuardedHttpProtocol, PortRefused, listening_socket
    from app.core.observability import log_config

    _apply_overrides(args)
    os.environ["FACESHOT_WORKERS"] = str(args.workers)
    settings = _settings()
    try:  # first: a busy port is one plain line, before anything loads
        sock = listening_socket(args.host, args.port)
    except PortRefused as exc:
        raise StartRefused(str(exc), code="unavailable") from None
    from app.gallery.encoder_choice import explicit_encoder

    explicit = explicit_encoder(settings) is not None
    if explicit:
        _weights_present(settings)
    # Schema, binding and first admin key once, before the workers start, so they never race for them.
    db, where = _prepared(settings)
    try:
        if not explicit:  # the gallery's recorded encoder; a new gallery's is decided by the first worker
            from app.gallery.encoder_choice import stored_encoder

            stored = stored_encoder(db.sessions)
            if stored is not None:
                _weights_present(settings, stored)
    finally:
        db.close()
    if where and where != "FACESHOT_ADMIN_KEY":
        print(f"faceshot: the admin API key is in {where}", file=sys.stderr)
    base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    print(f"faceshot: serving {base} (admin page {base}/admin, API docs {base}/docs)", file=sys.stderr)
    made_metrics_dir = args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = prepare_multiprocess_dir(args.workers)
    config = uvicorn.Config(
        "app.main:app", workers=args.workers, log_level=args.log_level, log_config=log_config(args.log_level),
        access_log=False,
        # headers timed, connections per address capped (app/api/edge.py); idle keep-alive connections closed after
        # 5 s; bounded connections per worker
        http=GuardedHttpProtocol, timeout_keep_alive=5, limit_concurrency=settings.limit_concurrency,
        # X-Forwarded-For only from the proxies named in FORWARDED_ALLOW_IPS (read by uvicorn):
        # otherwise any caller could pick the address its rate limits are counted under.
        proxy_headers=bool(os.environ.get("FORWARDED_ALLOW_IPS")))
    try:
        if args.workers > 1:  # as uvicorn.run does, on the socket bound above
            Multiprocess(config, sockets=[sock]).run()
        else:
            server = uvicorn.Server(config)
            server.run(sockets=[sock])
            if not server.started:
                return 3  # uvicorn's own status for a start that failed (its log line says why)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if made_metrics_dir and metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _person_name(stem: str) -> str:
    """A flat folder's file stem as a person's name: a trailing _<number> (their 2nd, 3rd... photo) dropped."""
    return (re.sub(r"[_\- ]+\(?\d{1,4}\)?$", "", stem) or stem).replace("_", " ").strip()


def people_in_folder(root: Path) -> tuple[dict[str, list[Path]], str]:
    """person's name -> their photos, and the layout found ("folders" or "flat"), or a refusal saying how to
    lay the folder out: one sub-folder per person, or face_recognition's one photo per person (FOLDER_LAYOUT)."""
    from app.core.errors import NotFound, ValidationFailed
    from models.evaluation.dataset_embeddings import IMAGE_SUFFIXES

    export = f" A file from faceshot export is read with --from-export {root}." if root.suffix == ".tar" else ""
    if not root.exists():
        raise NotFound(f"No folder {root}. Import takes a folder holding {FOLDER_LAYOUT}.{export}",
                       {"path": str(root)})
    if not root.is_dir():
        raise ValidationFailed(f"{root} is a file; import takes a folder holding {FOLDER_LAYOUT}.{export}",
                               {"path": str(root)})

    def photos(folder: Path) -> list[Path]:
        return sorted(f for f in folder.iterdir()  # not ._x.jpg: macOS's resource forks beside the photos
                      if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))

    loose = photos(root)
    folders = {d.name: photos(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    folders = {name: files for name, files in folders.items() if files}
    if loose and folders:  # which photos belong to whom would be a guess
        raise ValidationFailed(
            f"{root} holds both photos ({', '.join(f.name for f in loose[:3])}{', ...' if len(loose) > 3 else ''}) "
            f"and folders of photos ({', '.join(list(folders)[:3])}{', ...' if len(folders) > 3 else ''}): use one "
            f"layout, {FOLDER_LAYOUT}.", {"path": str(root)})
    if folders:
        return {name.replace("_", " ").strip(): files for name, files in folders.items()}, "folders"
    if not loose:
        raise ValidationFailed(f"{root} holds no photos ({', '.join(sorted(IMAGE_SUFFIXES))}). Import takes a "
                               f"folder holding {FOLDER_LAYOUT}.", {"path": str(root)})
    people: dict[str, list[Path]] = {}
    for f in loose:
        people.setdefault(_person_name(f.stem), []).append(f)
    return people, "flat"


class _StopBetweenPeople:
    """Ctrl-C asks the import to stop before the next person (each is stored all or nothing); a second stops now."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _ask(self, _signum, _frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("faceshot: stopping after this person (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _warning_text(warning: dict) -> str:
    if warning["code"] == "looks_like_other_person":
        own = warning.get("distance_to_own")
        return (f"looks like {warning['person']['name']} (distance {warning['distance']:.2f}"
                + (f"; to this person's other photos {own:.2f}" if own is not None else "") + ")")
    if warning["code"] == "near_duplicate":
        return f"almost the same as another photo of this person (distance {warning['distance']:.2f})"
    return warning.get("message", warning["code"])


def cmd_import(args) -> int:
    """Enroll a folder of people, each through the same code path as POST /enroll (or read an export)."""
    if (args.dir is None) == (args.from_export is None):
        print("faceshot: usage: import takes a folder of people or --from-export FILE, one of them", file=sys.stderr)
        return 2
    if args.from_export is not None:
        return _import_export(args)

    from app.access.audit import CLI
    from models.errors import FaceshotError

    root = Path(args.dir)
    people, layout = people_in_folder(root)  # before the model loads: a wrong folder is told at once
    _apply_overrides(args)
    service = _service(_settings())
    enrolled, refused, skipped, warnings = [], [], [], []
    collection = args.collection or "default"
    service.collections.ensure_collection(collection, CLI)
    existing = ({p.name for p in service.people.list_people(None, 1_000_000, 0, collection)[0]} if args.skip_existing
                else set())
    how = "one sub-folder each" if layout == "folders" else "photos named after them"
    print(f"faceshot: {len(people)} people in {root} ({how})", file=sys.stderr, flush=True)
    with _StopBetweenPeople() as stop:
        for n, (name, files) in enumerate(people.items(), 1):
            if stop.requested:
                break
            step = f"[{n}/{len(people)}] {name}:"
            if name in existing:
                skipped.append(name)
                print(f"{step} already enrolled, skipped", file=sys.stderr, flush=True)
                continue
            prepared, kept = [], []
            for path in files[: args.max_photos]:
                rel = str(path.relative_to(root))
                try:
                    prepared.append(service.people.prepare(path.read_bytes()))
                    kept.append(rel)
                except FaceshotError as exc:
                    refused.append({"photo": rel, "code": exc.code, "reason": exc.message})
                    print(f"{step} {rel} refused ({exc.code}: {exc.message})", file=sys.stderr, flush=True)
            if stop.requested:  # nothing of this person is stored yet: the next run enrolls them
                break
            if not prepared:
                continue
            try:
                result = service.people.enroll(name, prepared, collection=collection, actor=CLI)
            except FaceshotError as exc:
                refused += [{"photo": rel, "code": exc.code, "reason": exc.message} for rel in kept]
                print(f"{step} refused ({exc.code}: {exc.message})", file=sys.stderr, flush=True)
                continue
            enrolled.append({"name": name, "id": result.person.id, "photos": len(prepared)})
            told = []
            for w in result.warnings:
                photo = kept[w["image_index"]] if "image_index" in w else None
                warnings.append({"name": name, "photo": photo, "code": w["code"], "message": _warning_text(w),
                                 **({"looks_like": w["person"]["name"]} if "person" in w else {}),
                                 **({"distance": w["distance"]} if "distance" in w else {})})
                told.append(f"warning: {photo}: {_warning_text(w)}")
            print("; ".join([f"{step} enrolled ({len(prepared)} photo{'s' if len(prepared) > 1 else ''})", *told]),
                  file=sys.stderr, flush=True)
    summary = {"enrolled_people": len(enrolled), "enrolled_photos": sum(e["photos"] for e in enrolled),
               "skipped_existing": len(skipped), "refused_photos": refused, "warnings": warnings,
               "layout": layout}
    if stop.requested:
        summary["interrupted"] = True
    print(json.dumps(summary, indent=2))
    if stop.requested:
        again = "again" if args.skip_existing else "again without --no-skip-existing"
        print(f"faceshot: interrupted after {len(enrolled)} people; run it {again} to continue", file=sys.stderr)
        return INTERRUPTED
    return 0 if enrolled or skipped else 1


def _import_export(args) -> int:
    from dataclasses import asdict

    from app.core.errors import NotFound

    if not Path(args.from_export).is_file():  # before the model loads
        raise NotFound(f"No file {args.from_export}: --from-export takes a file written by faceshot export.",
                       {"path": args.from_export})
    from app.gallery.transfer import check_export, import_export

    _apply_overrides(args)
    settings = _settings()
    check_export(Path(args.from_export), settings.max_upload_bytes)  # a file refused whole: told before the model loads
    service = _service(settings)
    summary = import_export(service, Path(args.from_export), collection=args.collection)
    print(json.dumps(asdict(summary), indent=2))
    if summary.refused:  # status 1: a script must not take a partial import for a whole one
        print(f"faceshot: {len(summary.refused)} refused (see `refused`, with their lines), "
              f"{summary.imported_people} imported; fix those lines and run it again (the imported are skipped).",
              file=sys.stderr)
    return 1 if summary.refused else 0


def cmd_export(args) -> int:
    """The whole gallery into one file another faceshot can import."""
    from app.core.errors import Conflict, NotFound

    out = Path(args.out)  # checked before the data directory and the model are opened
    if not out.parent.is_dir():
        raise NotFound(f"No folder {out.parent} to write {out.name} into.", {"path": str(out)})
    if out.exists() and not args.force:
        raise Conflict(f"{out} exists; choose another name or pass --force.", {"path": str(out)})
    from app.gallery.transfer import export_gallery

    _apply_overrides(args)
    service = _service(_settings(), check_encoder=False)
    manifest = export_gallery(service, out, photos=args.photos, collection=args.collection)
    print(json.dumps({"file": str(out), "bytes": out.stat().st_size, **manifest["counts"],
                      "encoder": manifest["encoder"]["name"]}, indent=2))
    return 0


def cmd_watch(args) -> int:
    """Recognition events from a stream, webcam or file, or from Frigate's person events (``--frigate``): printed as
    JSON lines and stored (here or on a server)."""
    from app.live.watch import check_source, watch

    if (args.video is None) == (args.frigate is None):
        print("faceshot: watch needs a camera, stream or video file (VIDEO), or --frigate URL"
              + (", not both" if args.video else ""), file=sys.stderr)
        return 2
    if args.frigate is not None:
        from app.live.frigate import check_frigate_url, check_mqtt_url, events_topic

        check_frigate_url(args.frigate)  # each told before a server is called or the model loads
        events_topic(args.frigate_topic_prefix)
        args.mqtt = args.mqtt or _settings_mqtt_url()
        if not args.mqtt:
            print("faceshot: --frigate needs --mqtt mqtt://user:password@host:1883 (or FACESHOT_MQTT_URL): the broker "
                  "Frigate publishes its events to", file=sys.stderr)
            return 2
        check_mqtt_url(args.mqtt)
    else:
        check_source(args.video)  # a missing file is told before a server is called or the model loads
    if args.server:
        key = args.key or os.environ.get("FACESHOT_WATCH_KEY")
        if not key:
            print("faceshot: --server needs --key (or FACESHOT_WATCH_KEY): a recognition key", file=sys.stderr)
            return 2
        return _watch_through(args, key)
    from app.live.watch_local import LocalRecognizer

    _apply_overrides(args)
    service = _service(_settings())
    try:
        service.start()  # the event outputs (webhooks, MQTT) run here too; what is left queued, a server sends
        return _watch_with(args, watch, LocalRecognizer(service, args.collection))
    finally:
        service.close()


def _watch_through(args, key: str) -> int:
    """watch --server: the server's refusals and an unreachable server as one line each (no torch loaded here)."""
    import httpx

    from app.client import FaceshotAPIError
    from app.core.errors import ServiceUnavailable
    from app.live.watch import RemoteRecognizer, watch

    try:
        return _watch_with(args, watch, RemoteRecognizer(args.server, key, send_faces=args.send_faces,
                                                         collection=args.collection))
    except FaceshotAPIError as exc:
        refusal = FaceshotError(f"the server {args.server} answered {exc.status}: {exc.message}", exc.details)
        refusal.code = exc.code  # the server's own code, as the API gave it
        raise refusal from None
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"cannot reach the faceshot server {args.server}: {exc}") from None


def _settings_mqtt_url() -> str | None:
    url = _settings().mqtt_url
    return url.get_secret_value() if url is not None else None


def _watch_with(args, watch, recognizer) -> int:
    if args.frigate is not None:
        return _bridge_frigate(args, recognizer)
    try:
        count = watch(args.video, recognizer, name=args.source, fps=args.fps, start=args.start,
                      reconnect=not args.no_reconnect, playlists=args.allow_playlists,
                      on_event=lambda e: print(json.dumps(e, default=str), flush=True))
    except KeyboardInterrupt:  # how a watch of a camera is ended: not an error
        return 0
    print(f"faceshot: {count} event(s) from {args.video}", file=sys.stderr)
    return 0


def _bridge_frigate(args, recognizer) -> int:
    """watch --frigate: until Ctrl-C; its sub labels and skipped messages are logged to stderr, events printed."""
    import logging

    from app.live.frigate import watch_frigate

    log = logging.getLogger("app.live.frigate")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("faceshot: frigate: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    def stopping(_signum, _frame):  # `docker stop`: as Ctrl-C, so the events in hand are recorded first
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stopping) if threading.current_thread() is threading.main_thread() \
        else None
    count = 0
    try:
        count = watch_frigate(args.frigate, recognizer, mqtt_url=args.mqtt, topic_prefix=args.frigate_topic_prefix,
                              on_event=lambda e: print(json.dumps(e, default=str), flush=True))
    except KeyboardInterrupt:  # a second Ctrl-C while the events in hand were being recorded
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"faceshot: {count} event(s) from Frigate", file=sys.stderr)
    return 0


def cmd_reembed(args) -> int:
    """Re-make every stored embedding with the configured encoder, from the kept photos."""
    from tqdm import tqdm

    _apply_overrides(args)
    service = _service(_settings(), check_encoder=False)
    summary = service.people.reembed(delete_unrecoverable=args.delete_unrecoverable,
                              progress=lambda rows: tqdm(rows, desc="re-embedding", unit="face"))
    print(json.dumps(summary, indent=2))
    if summary["unrecoverable"] and not args.delete_unrecoverable:
        print(f"faceshot: {len(summary['unrecoverable'])} face(s) cannot be re-made (see above); nothing was changed. "
              "Re-enroll them, or run again with --delete-unrecoverable to remove them.", file=sys.stderr)
        return 1
    choice = service.recognition.encoder_choice
    if choice is not None:  # every embedding is now this encoder's: it is the gallery's from here on
        from app.gallery.encoder_choice import adopt

        adopt(service.sessions, choice)
    return 0


def cmd_photos_migrate(args) -> int:
    """Move the gallery's photos between the folder and database stores; the summary as JSON."""
    from dataclasses import asdict

    from tqdm import tqdm

    from app.gallery.photo_migration import migrate_photos

    _apply_overrides(args)
    settings = _settings()
    db, _ = _prepared(settings)
    try:
        with tqdm(desc=f"photos to the {args.to}", unit="photo") as bar:
            summary = migrate_photos(db.sessions, settings.images_dir, args.to, crash_at=settings.crash_at,
                                     progress=bar.update, batch=max(1, args.batch))
    finally:
        db.close()
    print(json.dumps(asdict(summary), indent=2))
    if summary.missing or summary.corrupt:
        print(f"faceshot: {len(summary.missing)} photo(s) in neither store and {len(summary.corrupt)} that do not "
              "match their sha256 were left as they are (listed above).", file=sys.stderr)
        return 1
    if settings.photo_store != args.to:
        print(f"faceshot: the photos are in the {args.to} now; set FACESHOT_PHOTO_STORE={args.to} so new ones go "
              "there too.", file=sys.stderr)
    return 0


def cmd_admin_key(args) -> int:
    """Mint a new admin key and print it once: the operator's way back in without a restart."""
    from app.access.audit import CLI
    from app.access.keys import create_key

    _apply_overrides(args)
    db, _ = _prepared(_settings())
    try:
        key, secret = create_key(db.sessions, args.name, "admin", actor=CLI)
    finally:
        db.close()
    print(secret)
    print(f"faceshot: new admin key {key.prefix}… ({key.name}); it is shown only this once", file=sys.stderr)
    return 0


def _read_password(args) -> str:
    """From standard input with --password-stdin (scripts), else asked twice without echo (a person)."""
    import getpass

    from app.core.errors import ValidationFailed

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the admin page: ")
    if getpass.getpass("The same again: ") != first:
        raise ValidationFailed("The two passwords differ; nothing was changed.")
    return first


def _parse_rights(pairs: list[str]) -> dict[str, str]:
    from app.core.errors import ValidationFailed

    rights = {}
    for pair in pairs:
        collection, sep, role = pair.partition("=")
        if not sep or not collection:
            raise ValidationFailed(f"--right takes COLLECTION=admin|viewer, not {pair!r}.")
        rights[collection] = role
    return rights


def cmd_admin_account(args) -> int:
    """Create a named admin-page account, or with --reset give one a new password and enable it again.

    The operator's way in (and back in) from the host, like admin-key: the API's /admin-accounts needs a
    deployment admin key, and a forgotten password or a disabled last account would otherwise need one too.
    """
    from app.access.accounts import Accounts
    from app.access.audit import CLI
    from app.core.errors import Conflict, NotFound, ValidationFailed

    _apply_overrides(args)
    rights = _parse_rights(args.right)
    if args.reset and (args.deployment_admin or rights):
        raise ValidationFailed("--reset changes the password only; rights are changed on the admin page or with "
                               "PATCH /api/v1/admin-accounts.")
    db, _ = _prepared(_settings())
    try:
        accounts = Accounts(db.sessions)
        if args.reset:
            existing = accounts.find(args.name)
            if existing is None:
                raise NotFound(f"No admin account named {args.name!r}; leave out --reset to make it.")
            view = accounts.update(existing.id, password=_read_password(args), disabled=False, actor=CLI)
            done = "has a new password and may sign in"
        else:
            try:
                name = accounts.check_new(args.name, deployment_admin=args.deployment_admin, rights=rights)
            except Conflict as exc:
                raise Conflict(f"{exc.message} --reset gives it a new password.", exc.details) from None
            view = accounts.create(name, _read_password(args), deployment_admin=args.deployment_admin,
                                   rights=rights, actor=CLI)
            done = "was created"
    finally:
        db.close()
    reach = "every collection" if view.deployment_admin else ", ".join(f"{c} ({r})" for c, r in view.rights.items())
    print(f"faceshot: admin account {view.name!r} {done}: {reach}", file=sys.stderr)
    return 0


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"more than 0, not {text}")
    return value


def _iso_time(text: str) -> datetime:
    """An ISO 8601 time (a trailing Z allowed); without a zone, UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"an ISO 8601 time such as 2026-03-02T08:00:00+01:00, not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``serve``, ``import``, ``export``, ``watch``, ``reembed``, ``admin-key`` and ``admin-account``."""
    def storage(p):
        p.add_argument("--data-dir", default=None, help="default: $FACESHOT_DATA_DIR or ./data")
        p.add_argument("--database-url", default=None, help="default: $FACESHOT_DATABASE_URL or SQLite under "
                                                           "the data directory")
        return p

    def common(p):  # the commands that run the face model
        storage(p)
        p.add_argument("--encoder", default=None, help="default: $FACESHOT_ENCODER or dlib")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: $FACESHOT_DEVICE or auto)")
        return p

    p = common(sub.add_parser("serve", help="run the HTTP service (migrations first)",
                              description="Example: faceshot serve --port 8000 --workers 2"))
    p.add_argument("--host", default=os.environ.get("FACESHOT_HOST", "127.0.0.1"),
                   help="address to listen on (default: $FACESHOT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("FACESHOT_PORT", "8000")),
                   help="default: $FACESHOT_PORT or 8000")
    p.add_argument("--workers", type=int, default=int(os.environ.get("FACESHOT_WORKERS", "1")),
                   help="uvicorn worker processes (default: $FACESHOT_WORKERS or 1)")
    p.add_argument("--log-level", default="info", help="default: info")
    p.set_defaults(func=cmd_serve)

    p = common(sub.add_parser("import", help="enroll a folder of people (a sub-folder or a photo each)",
                              description=f"Enrolls a folder holding {FOLDER_LAYOUT}. One line per person "
                              "(with who a photo looks like, if it looks like someone already enrolled), then a "
                              "JSON summary. Ctrl-C stops before the next person; run it again to continue. "
                              "Example: faceshot import path/to/people --max-photos 2 "
                              "(or: faceshot import --from-export gallery.tar)"))
    p.add_argument("dir", nargs="?", default=None, help="a folder with one sub-folder of photos per person, or one "
                   "photo per person named after them (default: none; give it or --from-export)")
    p.add_argument("--from-export", metavar="FILE", default=None,
                   help="instead of a folder: a file from faceshot export; people already here (same id or "
                        "external id) are skipped (default: none)")
    p.add_argument("--collection", default=None, help="the collection to enroll into, made if missing (default: "
                                                      "default; with --from-export: each person's own)")
    p.add_argument("--max-photos", type=_at_least_one, default=2, help="photos per person to enroll (default: 2)")
    p.add_argument("--skip-existing", action=argparse.BooleanOptionalAction, default=True,
                   help="skip folders whose name is already enrolled, so a second run adds only the new ones "
                        "(default: on; --no-skip-existing enrolls them again as further people)")
    p.set_defaults(func=cmd_import)

    p = common(sub.add_parser("export", help="write the gallery (people, external ids, metadata, photos, "
                              "embeddings) to one file, for faceshot import --from-export on another host",
                              description="Example: faceshot export gallery.tar"))
    p.add_argument("out", help="the file to write (a tar)")
    p.add_argument("--photos", action=argparse.BooleanOptionalAction, default=True,
                   help="include the kept photos (default: on; without them the gallery cannot be re-embedded "
                        "for another encoder)")
    p.add_argument("--force", action="store_true", help="replace an existing file (default: refuse)")
    p.add_argument("--collection", default=None, help="export this collection only (default: every collection)")
    p.set_defaults(func=cmd_export)

    p = common(sub.add_parser("watch", help="recognise people passing a camera: one event per person, as JSON lines",
                              description="Reads an RTSP/HTTP stream, a webcam (0, /dev/video0) or a video file, "
                              "follows faces across frames and records one event per person passing, decided on "
                              "their best frames. Example: faceshot watch rtsp://cam.local/stream --source door-1. "
                              "Or, with --frigate, names the people of Frigate's person events as their sub labels "
                              "(README, Frigate). Example: faceshot watch --frigate http://frigate:5000 "
                              "--mqtt mqtt://frigate:secret@192.168.1.10:1883"))
    p.add_argument("video", nargs="?", default=None,
                   help="rtsp://..., http://..., a webcam index or device, or a video file (not with --frigate)")
    p.add_argument("--source", default="camera", help="the camera's name in the events (default: camera)")
    p.add_argument("--fps", type=_positive, default=5.0, help="frames analysed per second (default: 5)")
    p.add_argument("--server", default=None, help="a faceshot server's URL: it does the work and stores the events "
                                                  "(default: none, in-process on the data directory)")
    p.add_argument("--key", default=None, help="with --server: a recognition key (default: $FACESHOT_WATCH_KEY)")
    p.add_argument("--send-faces", action="store_true", help="with --server: send a face crop with each event (kept "
                                                             "only if the server keeps them; default: off)")
    p.add_argument("--start", type=_iso_time, default=None,
                   help="a video file's start time, ISO 8601 (default: now)")
    p.add_argument("--allow-playlists", action="store_true",
                   help="let FFmpeg follow HLS/DASH playlists, which name further URLs for the watcher to fetch "
                        "(default: off: camera streams and video files only)")
    p.add_argument("--no-reconnect", action="store_true", help="exit with status 1 when a stream cannot be opened "
                                                               "or drops (default: reopen it, with backoff)")
    p.add_argument("--collection", default=None, help="name the people of this collection, and record the events "
                                                      "there (default: the default collection)")
    p.add_argument("--frigate", metavar="URL", default=None,
                   help="instead of VIDEO: Frigate's URL, http://frigate:5000 (its internal port) or "
                        "https://user:password@frigate:8971 (an admin user); each person event's snapshot is "
                        "recognised, named as the event's sub label, and recorded with the Frigate camera as its "
                        "source (default: none)")
    p.add_argument("--mqtt", metavar="URL", default=None,
                   help="with --frigate: the broker Frigate publishes to, mqtt://user:password@host:1883 or "
                        "mqtts://host:8883 (default: $FACESHOT_MQTT_URL)")
    p.add_argument("--frigate-topic-prefix", default="frigate",
                   help="with --frigate: Frigate's mqtt.topic_prefix; its events are read from PREFIX/events "
                        "(default: frigate)")
    p.set_defaults(func=cmd_watch)

    p = common(sub.add_parser("reembed", help="after an encoder change: re-make every embedding from the kept photos",
                              description="Example: FACESHOT_ENCODER=new.pt faceshot reembed (service stopped)"))
    p.add_argument("--delete-unrecoverable", action="store_true",
                   help="remove faces that cannot be re-made (photo not kept) instead of changing nothing")
    p.set_defaults(func=cmd_reembed)

    p = storage(sub.add_parser("admin-key", help="create a new admin API key and print it (shown once)",
                              description="Example: faceshot admin-key --name 'second admin'"))
    p.add_argument("--name", default="admin (faceshot admin-key)",
                   help="a name to tell the key apart (default: %(default)s)")
    p.set_defaults(func=cmd_admin_key)

    p = storage(sub.add_parser("admin-account", help="create a named account for the admin page, or --reset its "
                              "password", description="Example: faceshot admin-account ann --right warehouse=admin "
                              "(the password is asked for; scripts: --password-stdin)"))
    p.add_argument("name", help="the account's name: lowercase letters, digits, '.', '_', '@', '-'")
    p.add_argument("--deployment-admin", action="store_true",
                   help="every collection and the deployment's settings (default: off)")
    p.add_argument("--right", action="append", default=[], metavar="COLLECTION=ROLE",
                   help="admin or viewer in one collection; repeat for more (default: none)")
    p.add_argument("--reset", action="store_true", help="an existing account: a new password, enabled again, its "
                                                        "sign-ins ended (default: off, create)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of standard "
                                                                 "input (default: off, ask twice without echo)")
    p.set_defaults(func=cmd_admin_account)

    photos = sub.add_parser("photos", help="where enrollment photos are kept: `photos migrate --to database|folder`",
                            description="Example: faceshot photos migrate --to database")
    actions = photos.add_subparsers(dest="photos_command", required=True, metavar="ACTION",
                                    help="migrate: move every photo into the database or the data folder")
    p = storage(actions.add_parser(
        "migrate", help="move every photo into the database or the data folder (resumable, sha256-verified)",
        description="Example: faceshot photos migrate --to database (then set FACESHOT_PHOTO_STORE=database). "
                    "Safe to stop and run again; a service keeps serving every photo meanwhile."))
    p.add_argument("--to", required=True, choices=["database", "folder"], help="where the photos go")
    p.add_argument("--batch", type=int, default=100, help="photos moved per transaction (default: %(default)s)")
    p.set_defaults(func=cmd_photos_migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceshot", description="Face enrollment and identification from one or two "
                                     "photos per person, with honest 'unknown' decisions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_service_commands(sub)
    add_pipeline_commands(sub)
    add_training_commands(sub)
    return parser


def _model_defaults(args) -> None:
    """What no flag said about the encoder comes from the settings (FACESHOT_ENCODER, _DEVICE, _MODEL_CACHE...)."""
    if args.command in SERVICE_COMMANDS:  # they read Settings themselves; weight sources would import torch
        return
    from app.core.config import ModelSettings, Settings

    if args.command == "compare":  # POST /compare's own settings, validated as the server validates them
        from pydantic import create_model

        fields = {n: (f.annotation, f) for n, f in Settings.model_fields.items() if n in ("threshold", "target_far")}
        model = create_model("CompareSettings", __base__=ModelSettings, **fields)()
        args.settings_threshold, args.target_far = model.threshold, model.target_far
    else:
        model = ModelSettings()
    # training commands tell --encoder from --checkpoint
    if args.command in PIPELINE_COMMANDS and hasattr(args, "encoder"):
        args.encoder = args.encoder or model.encoder
        if getattr(args, "device", None) is None:
            args.device = None if model.device == "auto" else model.device
    args.sources = model.weight_sources()


def _os_error(exc: OSError) -> FaceshotError:
    """A file or folder the command was pointed at that cannot be used, as one line (the code says which kind)."""
    from app.core.errors import NotFound, StorageUnavailable

    where = f"{os.fsdecode(exc.filename)}: " if exc.filename else ""
    kind = NotFound if isinstance(exc, (FileNotFoundError, NotADirectoryError)) else StorageUnavailable
    return kind(f"{where}{exc.strerror or exc}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _model_defaults(args)
        return int(args.func(args) or 0)
    except FaceshotError as exc:
        print(f"faceshot: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path the user gave that is missing or unreadable: one line, not a traceback
        error = _os_error(exc)
        print(f"faceshot: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("faceshot: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
