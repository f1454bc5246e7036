"""Which database a data directory belongs to: both carry one instance id, and a stranger pairing stops the start.

A data directory holds the photos a database's faces refer to. Started once with a wrong
``FACESHOT_DATABASE_URL`` (or on a fresh PostgreSQL volume), a service used to see a
gallery that referred to none of them. Now the first start writes one id into both
(``<data dir>/instance_id`` and the ``deployment_identity`` row), and every later start
checks them: a mismatch, or photos on one side that the other cannot account for, is a
:class:`StorageMismatch` that names both and says what to check.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.core.tables import DeploymentIdentity, Face, StoredPhoto

log = logging.getLogger(__name__)
IDENTITY_FILE = "instance_id"


class StorageMismatch(RuntimeError):
    """The data directory and the database do not belong together; nothing was touched."""


def _read_file(data_dir: Path) -> str | None:
    try:
        return (data_dir / IDENTITY_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_file(data_dir: Path, instance_id: str) -> str:
    """Write the id once (another process may be doing the same): the id now on disk."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = data_dir / f".{IDENTITY_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(instance_id + "\n")
    try:
        os.link(tmp, data_dir / IDENTITY_FILE)  # fails if it exists: never overwritten
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_file(data_dir) or instance_id


def _read_db(sessions: sessionmaker) -> str | None:
    with sessions() as session:
        return session.execute(select(DeploymentIdentity.instance_id).where(DeploymentIdentity.id == 1)).scalar()


def _write_db(sessions: sessionmaker, instance_id: str) -> str:
    try:
        with sessions.begin() as session:
            session.add(DeploymentIdentity(id=1, instance_id=instance_id))
    except IntegrityError:
        pass  # another process bound it first
    return _read_db(sessions) or instance_id


def _photos_on_disk(images_dir: Path, limit: int = 500) -> list[str]:
    names = []
    if images_dir.is_dir():
        for path in images_dir.glob("*.img"):
            names.append(path.name)
            if len(names) >= limit:
                break
    return names


def _known_to_db(sessions: sessionmaker, names: list[str]) -> bool:
    with sessions() as session:
        if names:
            return session.execute(select(Face.id).where(Face.image_file.in_(names)).limit(1)).first() is not None
        return False


def _db_has_photos(sessions: sessionmaker) -> bool:
    """Whether a face's photo should be in a data folder (one kept in the database needs none)."""
    in_db = select(StoredPhoto.name).where(StoredPhoto.name == Face.image_file).exists()
    with sessions() as session:
        return session.execute(select(Face.id).where(Face.image_file.is_not(None), ~in_db).limit(1)).first() is not None


def bind_data_dir(data_dir: Path, images_dir: Path, sessions: sessionmaker, database: str) -> str:
    """Check that ``data_dir`` and the database belong together, binding them on first use; the shared id.

    ``database`` names the database in messages (a URL without its password).
    """
    dir_id, db_id = _read_file(data_dir), _read_db(sessions)
    where = f"the data directory {data_dir.resolve()}"
    if dir_id and db_id:
        if dir_id != db_id:
            raise StorageMismatch(
                f"{where} belongs to the faceshot database with instance id {dir_id}, but {database} has instance "
                f"id {db_id}: they are two different deployments. Point FACESHOT_DATABASE_URL at the database "
                "of this data directory, or FACESHOT_DATA_DIR at the data directory of this database.")
        return dir_id
    on_disk = _photos_on_disk(images_dir)
    if dir_id:  # the database is new to this data directory
        if on_disk:
            raise StorageMismatch(
                f"{where} belongs to the faceshot database with instance id {dir_id} and holds its photos, but "
                f"{database} is another database (a new one, or one from before instance ids). Check "
                "FACESHOT_DATABASE_URL; to start a new gallery, use a new FACESHOT_DATA_DIR.")
        return _write_db(sessions, dir_id)
    if db_id:  # the data directory is new to this database
        if on_disk:
            raise StorageMismatch(
                f"{where} holds photos but no instance id, and {database} (instance id {db_id}) was bound to "
                f"another data directory. Check FACESHOT_DATA_DIR; if these are this database's photos, write "
                f"{db_id} into {data_dir / IDENTITY_FILE}.")
        if _db_has_photos(sessions):
            raise StorageMismatch(
                f"{database} (instance id {db_id}) refers to stored photos, but {where} is empty: is the data "
                f"volume mounted? If the photos are gone for good, write {db_id} into {data_dir / IDENTITY_FILE} "
                "to go on without them (`faceshot reembed` will then list the faces it cannot re-make).")
        return _write_file(data_dir, db_id)
    # neither is bound: a new deployment, or one from before instance ids
    if on_disk and not _known_to_db(sessions, on_disk):
        raise StorageMismatch(
            f"{where} holds photos that {database} does not know: check FACESHOT_DATABASE_URL. To start a new "
            "gallery, use a new FACESHOT_DATA_DIR.")
    if not on_disk and _db_has_photos(sessions):
        raise StorageMismatch(
            f"{database} refers to stored photos, but {where} is empty: is the data volume mounted?")
    instance_id = _write_db(sessions, uuid.uuid4().hex)
    bound = _write_file(data_dir, instance_id)
    if bound != instance_id:  # another process wrote the file with an id of its own in between
        raise StorageMismatch(f"{where} and {database} were bound by two processes at once; start again.")
    log.info("bound %s to database instance %s", data_dir, instance_id)
    return instance_id


def binding_problem(data_dir: Path, sessions: sessionmaker) -> str | None:
    """Why this data directory and database may not be treated as one (None: they carry the same id)."""
    dir_id, db_id = _read_file(data_dir), _read_db(sessions)
    if not dir_id or not db_id:
        return "the data directory and the database are not bound to each other yet"
    if dir_id != db_id:
        return f"the data directory belongs to instance {dir_id}, the database is instance {db_id}"
    return None
