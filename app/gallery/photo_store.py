"""Where enrollment photos live: one interface, two stores (FACESHOT_PHOTO_STORE).

``folder`` (the default): files in the data directory, journalled around the face's transaction
(:mod:`app.gallery.photo_folder`). ``database``: rows of the ``photos`` table, written in the face's own transaction,
so replicas on several hosts need no shared disk and no journal or sweep (:mod:`app.gallery.photo_db`). Each store
reads a photo it does not hold from the other, so a gallery half-way through ``faceshot photos migrate`` serves every
photo. Everything that reads or writes photos (enrollment, deletes, collection deletes, copies, re-embedding,
export and import, the admin page) holds a :class:`PhotoStore` and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

PhotoStoreKind = Literal["folder", "database"]


class PhotoStore(Protocol):
    kind: str
    fallback: PhotoStore | None

    @staticmethod
    def file_name(face_id: str) -> str: ...

    def reserve(self, names: list[str]) -> None:
        """Before a write's transaction: claim the names it will store (a journal row, for the folder)."""

    def write(self, name: str, data: bytes, *, replace: bool = True, session: Session | None = None) -> None:
        """Store one photo, in ``session``'s transaction where the store is the database; ``replace=False`` refuses a
        name already stored (Conflict ``photo_exists``)."""

    @staticmethod
    def settle(session: Session, names: list[str]) -> None:
        """In the transaction that commits the faces: the photos are theirs now."""

    def abandon(self, names: list[str]) -> None:
        """After a write that failed: remove what it stored outside the transaction."""

    def doom(self, session: Session, names: list[str]) -> None:
        """In a deletion's transaction: these photos go with it."""

    def remove(self, names: list[str]) -> None:
        """After a deletion committed: remove what it left outside the transaction."""

    def read(self, name: str) -> bytes | None: ...

    def exists(self, name: str) -> bool: ...

    def sweep(self, data_dir: Path, min_age_s: float = 3600.0): ...

    def problem(self, min_free_bytes: int) -> str | None:
        """Why a photo could not be stored now, or None."""


def photo_store(kind: PhotoStoreKind, images_dir: Path, sessions: sessionmaker | None) -> PhotoStore:
    """The configured store, reading what it lacks from the other one (a process without a database: the folder)."""
    from app.gallery.photo_db import DatabasePhotoStore
    from app.gallery.photo_folder import FolderPhotoStore

    folder = FolderPhotoStore(images_dir, sessions)
    if sessions is None:
        return folder
    database = DatabasePhotoStore(sessions)
    store, other = (database, folder) if kind == "database" else (folder, database)
    store.fallback = other
    return store
