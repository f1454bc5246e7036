"""``faceshot photos migrate --to database|folder``: move a gallery's photos between the two stores, resumably.

One photo is never in neither place: it is copied (committed, then read back and its sha256 compared with the
original's) before the source copy is removed, batch by batch. Killed at any point, a photo is in the source, in the
target, or in both (the next run verifies and finishes it); and every store reads what it lacks from the other
(:func:`app.gallery.photo_store.photo_store`), so a service serves every photo meanwhile. Photos whose bytes do not
match their recorded sha256, and faces whose photo is in neither store, are reported and left as they are.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from app.core.faults import crash_point
from app.core.tables import Face, StoredPhoto
from app.gallery.photo_folder import FolderPhotoStore

log = logging.getLogger(__name__)
BATCH = 100


@dataclass
class MigrationSummary:
    to: str
    moved: int = 0  # copied into the target, verified, removed from the source
    already: int = 0  # in the target before this run (a resumed run): verified, the source copy removed
    missing: list[str] = field(default_factory=list)  # a face's photo in neither store
    corrupt: list[str] = field(default_factory=list)  # bytes that do not match their recorded sha256


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _face_photos(sessions: sessionmaker) -> list[str]:
    with sessions() as session:
        return sorted(set(session.execute(select(Face.image_file).where(Face.image_file.is_not(None))).scalars()))


def migrate_photos(sessions: sessionmaker, images_dir: Path, to: str, *, crash_at: str | None = None,
                   progress: Callable[[int], None] | None = None, batch: int = BATCH) -> MigrationSummary:
    """Move every face's photo into store ``to`` ("database" or "folder")."""
    if to not in ("database", "folder"):
        raise ValueError(f"photos go to the database or the folder, not {to!r}")
    folder, summary = FolderPhotoStore(images_dir, sessions), MigrationSummary(to)
    names = _face_photos(sessions)
    for start in range(0, len(names), batch):
        some = names[start:start + batch]
        (_to_database if to == "database" else _to_folder)(sessions, folder, some, summary, crash_at)
        if progress is not None:
            progress(len(some))
    log.info("photos migrated to the %s: %d moved, %d there already, %d missing, %d corrupt", to, summary.moved,
             summary.already, len(summary.missing), len(summary.corrupt))
    return summary


def _stored(sessions: sessionmaker, names: list[str]) -> dict[str, tuple[bytes, str]]:
    with sessions() as session:
        return {n: (d, s) for n, d, s in session.execute(
            select(StoredPhoto.name, StoredPhoto.data, StoredPhoto.sha256).where(StoredPhoto.name.in_(names)))}


def _to_database(sessions: sessionmaker, folder: FolderPhotoStore, batch: list[str], summary: MigrationSummary,
                 crash_at: str | None):
    there = _stored(sessions, batch)
    copied = {}
    for name in batch:
        if name in there:
            continue
        data = folder.read(name)  # a folder store without a fallback: the file, or None
        if data is None:
            summary.missing.append(name)
            continue
        copied[name] = data
    if copied:
        with sessions.begin() as session:
            session.add_all(StoredPhoto(name=n, data=d, sha256=_sha(d), size=len(d)) for n, d in copied.items())
    done = []
    for name, (data, sha) in _stored(sessions, batch).items():  # read back: what the database now holds
        source = copied.get(name) if name in copied else folder.read(name)
        if _sha(data) != sha or (source is not None and _sha(source) != sha):
            summary.corrupt.append(name)
            continue
        done.append(name)
        summary.moved += name in copied
        summary.already += name not in copied
    crash_point("photos_copied", crash_at)  # tests: killed with the batch in both stores
    if done:  # the folder's copies go as a deletion does: journalled first, so a kill leaves them for the sweep
        with sessions.begin() as session:
            folder.doom(session, done)
        folder.remove(done)


def _to_folder(sessions: sessionmaker, folder: FolderPhotoStore, batch: list[str], summary: MigrationSummary,
               crash_at: str | None):
    there = _stored(sessions, batch)
    for name in batch:
        if name not in there:
            if folder.read(name) is not None:
                summary.already += 1
            else:
                summary.missing.append(name)
            continue
        data, sha = there[name]
        if _sha(data) != sha:
            summary.corrupt.append(name)
            continue
        with sessions.begin() as session:  # a row a killed run left (its face refers to the name: the sweep's no-op)
            FolderPhotoStore.settle(session, [name])
        folder.reserve([name])  # a write's journal row: a kill before the row below goes leaves it to the sweep
        try:
            folder.write(name, data)
            if _sha(folder.read(name) or b"") != sha:
                raise OSError(f"{name}: the written file does not read back as its sha256")
            crash_point("photos_copied", crash_at)  # tests: killed with this photo in both stores
        except BaseException:
            folder.discard(name)  # the database keeps the one good copy
            raise
        with sessions.begin() as session:
            FolderPhotoStore.settle(session, [name])
            session.execute(delete(StoredPhoto).where(StoredPhoto.name == name))
        summary.moved += 1

