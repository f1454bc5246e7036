"""Enrollment photos in the database (FACESHOT_PHOTO_STORE=database): one more row in the face's own transaction.

What the folder store needs a journal and a start-up sweep for (a file written before its face commits, removed
after its deletion commits) the database does by itself: the photo commits or rolls back with its face. So replicas
on several hosts serve every photo from the one PostgreSQL they share, with no shared disk (issue 30). SQLite works
too (tests, a single host). A photo is at most FACESHOT_MAX_UPLOAD_BYTES, as uploaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import Conflict
from app.core.tables import StoredPhoto
from app.gallery.photo_folder import SweepResult, checked_name, photo_file_name


class DatabasePhotoStore:
    """:class:`app.gallery.photo_store.PhotoStore` in the ``photos`` table."""

    kind = "database"

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self.fallback = None  # where a photo not here may still be (the folder, during a migration)

    file_name = staticmethod(photo_file_name)

    # -- writing: in the caller's transaction ----------------------------------------------------
    def reserve(self, names: list[str]) -> None:
        """Nothing to claim: the primary key refuses a name taken by a concurrent write when it commits."""

    def write(self, name: str, data: bytes, *, replace: bool = True, session: Session | None = None) -> None:
        if session is None:
            raise ValueError("the database store writes a photo in its face's transaction: pass its session")
        name, data = checked_name(name), bytes(data)
        existing = session.get(StoredPhoto, name)
        if existing is not None and not replace:
            raise Conflict(f"A photo named {name} is already stored (another face's); it was left as it is and "
                           "nothing was stored.", {"reason": "photo_exists", "file": name})
        if existing is None and not replace and self.fallback is not None and self.fallback.exists(name):
            raise Conflict(f"A photo named {name} is already stored (another face's, in the folder); it was left as "
                           "it is and nothing was stored.", {"reason": "photo_exists", "file": name})
        row = existing or StoredPhoto(name=name)
        row.data, row.sha256, row.size = data, hashlib.sha256(data).hexdigest(), len(data)
        session.add(row)
        session.flush()  # a name another transaction took fails here, inside the face's write

    @staticmethod
    def settle(session: Session, names: list[str]) -> None:
        """Nothing to settle: the rows commit with the faces."""

    def abandon(self, names: list[str]) -> None:
        """Nothing to remove: the rows rolled back with the faces."""

    def doom(self, session: Session, names: list[str]) -> None:
        """The rows go in the deletion's own transaction (a file left in the folder by a migration goes later)."""
        if names:
            session.execute(delete(StoredPhoto).where(StoredPhoto.name.in_(names)))
            if self.fallback is not None:
                self.fallback.doom(session, names)

    def remove(self, names: list[str]) -> None:
        if self.fallback is not None:
            self.fallback.remove(names)

    # -- reading ---------------------------------------------------------------------------------
    def read(self, name: str) -> bytes | None:
        with self.sessions() as session:
            data = session.execute(select(StoredPhoto.data).where(StoredPhoto.name == checked_name(name))).scalar()
        if data is None and self.fallback is not None:
            return self.fallback.read(name)
        return data

    def exists(self, name: str) -> bool:
        with self.sessions() as session:
            found = session.execute(select(StoredPhoto.name).where(StoredPhoto.name == checked_name(name))).first()
        return found is not None or (self.fallback is not None and self.fallback.exists(name))

    # -- housekeeping ----------------------------------------------------------------------------
    def sweep(self, data_dir: Path, min_age_s: float = 3600.0) -> SweepResult:
        """The folder's leftovers, if a migration left any; the database has none of its own."""
        return self.fallback.sweep(data_dir, min_age_s) if self.fallback is not None else SweepResult()

    def problem(self, min_free_bytes: int) -> str | None:
        """The database's own health is /ready's database check."""
        return None
