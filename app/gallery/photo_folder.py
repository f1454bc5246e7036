"""Stored enrollment photos in the data folder (FACESHOT_PHOTO_STORE=folder, the default): written whole or not at
all, journalled, and swept only where the journal says.

The protocol that makes the start-up sweep safe (it can never delete a photo because a
database looks empty, since it only ever looks at files the journal names):

- before a write, :meth:`PhotoStore.reserve` commits a ``write`` row per file it will create;
- the file is written to a hidden partial name, synced, then renamed into place (or, for a name
  that came from outside, such as an export's face id, linked into place only where no file is);
- the transaction that commits the face also deletes its ``write`` row (:meth:`settle`);
- a deletion commits ``delete`` rows with it (:meth:`doom`) and removes them with the files.

A row left over therefore names a file of an interrupted write. A failed write removes its files,
never one a stored face refers to (:meth:`PhotoStore.abandon`). The sweep moves an
uncommitted upload into ``quarantine/`` (kept :data:`QUARANTINE_DAYS` days) and removes the
file of a committed deletion, and refuses to run at all unless the data directory and the
database carry the same instance id (:mod:`app.core.instance`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import Conflict, InsufficientStorage, StorageUnavailable
from app.core.tables import Face, PhotoJournal, as_utc

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
QUARANTINE_DAYS = 7
# Only names the service makes itself (a face id) are ever joined to the folder: never a path from outside.
PHOTO_NAME = re.compile(r"^[0-9a-f]{32}\.img$")
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK)


def photo_file_name(face_id: str) -> str:
    """A stored photo's name, the same in either store (app/gallery/photo_store.py)."""
    return f"{face_id}.img"


def checked_name(name: str) -> str:
    """``name`` if the service could have made it (a face id's), else ValueError: never a path from outside."""
    if not PHOTO_NAME.match(name):
        raise ValueError(f"not a stored photo's name: {name!r}")
    return name


def storage_error(exc: OSError, what: str) -> StorageUnavailable:
    """The typed refusal for a failed write: 507 when the disk is full, 503 otherwise."""
    details = {"reason": errno.errorcode.get(exc.errno or 0, "EIO").lower()}
    if exc.errno in _FULL:
        return InsufficientStorage(f"The disk is full: {what} could not be stored; nothing was stored.", details)
    return StorageUnavailable(f"{what.capitalize()} could not be stored ({os.strerror(exc.errno or errno.EIO)}); "
                              "nothing was stored.", details)


def _forget(path: Path) -> bool:
    """Remove a file if it is there; False when the folder refuses (read-only): the journal keeps it for the sweep."""
    if not os.path.lexists(path):
        return True  # a read-only folder refuses even to unlink what is not there
    try:
        path.unlink(missing_ok=True)
        return True
    except OSError:
        return False


@dataclass
class SweepResult:
    quarantined: int = 0  # uploads whose write never committed
    removed: int = 0  # files of deletions that committed
    purged: int = 0  # quarantined files past QUARANTINE_DAYS
    refused: str | None = None  # why the sweep did not run


class FolderPhotoStore:
    """:class:`app.gallery.photo_store.PhotoStore` in a folder of the data directory."""

    kind = "folder"

    def __init__(self, folder: Path, sessions: sessionmaker):
        self.folder = folder
        self.sessions = sessions
        self.fallback = None  # where a photo not here may still be (the other store, during a migration)

    file_name = staticmethod(photo_file_name)

    def _path(self, name: str) -> Path:
        return self.folder / checked_name(name)

    def _partial(self, name: str) -> Path:
        return self.folder / f".{name}.partial"

    # -- writing -------------------------------------------------------------------------------
    def reserve(self, names: list[str]) -> None:
        """Commit a ``write`` journal row per file about to be written (its own transaction, first)."""
        if names:
            with self.sessions.begin() as session:
                session.add_all(PhotoJournal(file_name=self._path(n).name, kind="write") for n in names)

    def write(self, name: str, data: bytes, *, replace: bool = True, session: Session | None = None) -> None:
        """Write one photo whole (owner-only), or raise a storage error and leave no file behind.

        ``replace=False`` (a name from outside, e.g. an export's face id): a file already at that name is another
        face's photo, kept as it is, and the write refused (:class:`Conflict`, reason ``photo_exists``).
        """
        path, partial = self._path(name), self._partial(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if replace:
                os.replace(partial, path)
            else:
                self._place_new(partial, path)
            self._sync_folder()
        except FileExistsError:
            _forget(partial)
            raise Conflict(f"A photo file named {name} is already stored (another face's); it was left as it is and "
                           "nothing was stored.", {"reason": "photo_exists", "file": name}) from None
        except OSError as exc:
            _forget(partial)
            raise storage_error(exc, "the photo") from exc

    @staticmethod
    def _place_new(partial: Path, path: Path) -> None:
        """Put ``partial`` at ``path`` unless a file is there (FileExistsError): a rename would replace it."""
        try:
            os.link(partial, path)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # A folder without hard links: the journal row this write holds keeps every other writer off the name.
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "a photo is already stored under this name", str(path)) from None
            os.replace(partial, path)
            return
        os.unlink(partial)

    def _sync_folder(self) -> None:
        """Make the rename durable before the database commit that refers to it."""
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def settle(session: Session, names: list[str]) -> None:
        """In the transaction that commits the faces: their files are theirs now, not the sweep's."""
        if names:
            session.execute(delete(PhotoJournal).where(PhotoJournal.file_name.in_(names)))

    def abandon(self, names: list[str]) -> None:
        """A write that failed: remove what it wrote and its journal rows (what fails here, the sweep finishes).

        A file a stored face refers to is not this write's, whatever its name says (an export's face id that
        another face already has): it stays. Without the database to ask, the files stay for the sweep.
        """
        if not names:
            return
        try:
            theirs = self._referenced(names)
        except Exception:
            log.warning("could not check %d photo(s) of a failed write; the next start-up sweep will", len(names))
            for n in names:
                _forget(self._partial(n))
            return
        self._release([n for n in names if (n in theirs or _forget(self._path(n))) & _forget(self._partial(n))])

    def _referenced(self, names: list[str]) -> set[str]:
        """Those of ``names`` a stored face refers to."""
        found: set[str] = set()
        with self.sessions() as session:
            for start in range(0, len(names), 500):
                found |= set(session.execute(
                    select(Face.image_file).where(Face.image_file.in_(names[start:start + 500]))).scalars())
        return found

    def discard(self, name: str) -> None:
        """A copy a migration wrote that must not stay (the database keeps the photo): the file and its row go."""
        _forget(self._partial(name))
        if _forget(self._path(name)):
            self._release([name])

    # -- deleting ------------------------------------------------------------------------------
    def doom(self, session: Session, names: list[str]) -> None:
        """In a deletion's transaction: these files go once it commits (or at the next sweep); a copy in the database
        (a migration's) goes with the transaction."""
        session.add_all(PhotoJournal(file_name=n, kind="delete") for n in names)
        if self.fallback is not None and names:
            self.fallback.doom(session, names)

    def remove(self, names: list[str]) -> None:
        """After a deletion committed: remove its files, then their journal rows."""
        self._release([n for n in names if _forget(self._path(n))])

    def _release(self, names: list[str]) -> None:
        if not names:
            return
        try:
            with self.sessions.begin() as session:
                session.execute(delete(PhotoJournal).where(PhotoJournal.file_name.in_(names)))
        except Exception:  # the rows stay; the next sweep settles them
            log.warning("could not clear %d photo journal rows; the next start-up sweep will", len(names))

    # -- reading -------------------------------------------------------------------------------
    def read(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return self.fallback.read(name) if self.fallback is not None else None

    def exists(self, name: str) -> bool:
        return self._path(name).is_file() or (self.fallback is not None and self.fallback.exists(name))

    # -- the sweep -----------------------------------------------------------------------------
    def sweep(self, data_dir: Path, min_age_s: float = 3600.0) -> SweepResult:
        """Settle what interrupted writes left: only files a journal row names, only on the database
        this data directory belongs to, and uploads younger than ``min_age_s`` are left alone (they
        may belong to a write in flight in another worker)."""
        from app.core.instance import binding_problem

        problem = binding_problem(data_dir, self.sessions)
        if problem:
            log.error("photo sweep refused: %s", problem)
            return SweepResult(refused=problem)
        result = SweepResult()
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=min_age_s)
        with self.sessions() as session:
            rows = list(session.execute(select(PhotoJournal)).scalars())
        referenced = self._referenced([r.file_name for r in rows])
        settled = []
        for row in rows:
            name = row.file_name
            if not PHOTO_NAME.match(name):
                settled.append(name)
                continue
            if name not in referenced:
                if row.kind == "write" and as_utc(row.created_at) > cutoff:
                    continue
                _forget(self._partial(name))
                if row.kind == "write":
                    result.quarantined += self._quarantine(name)
                else:
                    result.removed += self._unlink(name)
            settled.append(name)
        self._release(settled)
        result.purged = self._purge_quarantine()
        if result.quarantined or result.removed:
            log.warning("photo sweep: %d upload(s) of writes that never committed moved to %s, %d photo(s) of "
                        "committed deletions removed", result.quarantined, self.folder / QUARANTINE, result.removed)
        return result

    def _unlink(self, name: str) -> int:
        try:
            self._path(name).unlink()
            return 1
        except FileNotFoundError:
            return 0

    def _quarantine(self, name: str) -> int:
        source = self._path(name)
        if not source.exists():
            return 0
        target = self.folder / QUARANTINE
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.move(str(source), str(target / name))
        os.utime(target / name)  # its days in quarantine count from now
        return 1

    def _purge_quarantine(self) -> int:
        folder = self.folder / QUARANTINE
        if not folder.is_dir():
            return 0
        cutoff, purged = time.time() - QUARANTINE_DAYS * 86400, 0
        for path in folder.glob("*.img"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    purged += 1
            except FileNotFoundError:
                continue
        return purged

    # -- health --------------------------------------------------------------------------------
    def problem(self, min_free_bytes: int) -> str | None:
        """Why a photo could not be stored now (``read_only``, ``low_space``), or None."""
        folder = self.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            return "read_only"
        try:
            st = os.statvfs(folder)
        except OSError:
            return "unreadable"
        if st.f_bavail * st.f_frsize < min_free_bytes:
            return "low_space"
        return None
