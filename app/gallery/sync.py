"""The gallery consistency protocol: every write bumps a version in its transaction; each process catches up.

Every write runs in one database transaction that also bumps the gallery version and
records the people it touched; this process's FAISS gallery is changed only after that
commit succeeds, so database and index agree or the write never happened. Other
processes (uvicorn workers, replicas) see the version move on their next check and
refresh just the people it names, or reload everything when they cannot tell.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app.core.db import Database, begin_write
from app.core.errors import Conflict, NotFound, ServiceUnavailable, database_error
from app.core.faults import crash_point
from app.core.tables import DEFAULT_COLLECTION, GalleryChange, GalleryState
from app.gallery import queries
from app.gallery.index import Galleries, Gallery
from app.gallery.notify import GalleryNotifications
from app.gallery.photo_store import PhotoStore
from models.errors import FaceshotError

DEADLOCK_RETRIES = 3


def is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL broke a deadlock (or a serialization conflict) by failing this transaction: worth another try."""
    return isinstance(exc, DBAPIError) and getattr(getattr(exc, "orig", None), "sqlstate", None) in ("40P01", "40001")


def write_conflict(exc: IntegrityError | StaleDataError) -> FaceshotError:
    """A write that met another one: what it conflicted with, in the caller's words (not a 500, not a guess)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if isinstance(exc, StaleDataError) or "foreign key" in text:
        return NotFound("What this change refers to was deleted meanwhile (its collection or person); nothing was "
                        "stored.", {"reason": "deleted_meanwhile"})
    if "external_id" in text:
        return Conflict("That external_id is taken by another person.", {"field": "external_id"})
    return Conflict("That conflicts with an existing record; nothing was stored.", {})


class GallerySync:
    """This process's gallery, kept in step with the database (writes here, catch-up with everyone else's)."""

    def __init__(self, galleries: Galleries, db: Database | None, photos: PhotoStore, encoder_hash: str,
                 sync_interval_s: float = 0.0, crash_at: str | None = None,
                 notifications: GalleryNotifications | None = None):
        self.galleries, self.db, self.photos = galleries, db, photos
        self.encoder_hash, self.sync_interval_s, self.crash_at = encoder_hash, sync_interval_s, crash_at
        self.notifications = notifications  # PostgreSQL's word that a version moved (app/gallery/notify.py)
        self._lock = threading.Lock()
        self._last_check = 0.0

    @property
    def sessions(self):
        return self.db.sessions

    @property
    def version(self) -> int:
        return self.galleries.version

    @property
    def gallery(self) -> Gallery:
        """The default collection's index (what a deployment without collections searches)."""
        return self.galleries.get(DEFAULT_COLLECTION)

    def reload(self) -> None:
        """Rebuild the index from the database (start-up, or the version went where it cannot be followed)."""
        with self.sessions() as session:
            version = queries.gallery_version(session)
            rows = queries.all_support(session, encoder_hash=self.encoder_hash)
        # one buffer, one view: 10^6 rows without 10^6 small arrays
        embeddings = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(-1, self.galleries.dim)
        # each face row carries its person's collection (a person without faces is in no index)
        self.galleries.load(embeddings, [r.person_id for r in rows], {r.person_id: r.name for r in rows},
                            {r.person_id: r.collection for r in rows},
                            collections.Counter(r.person_id for r in rows if r.origin == "camera"))
        self.galleries.version = version

    def _support_sets(self, session, person_ids):
        return queries.support_sets(session, person_ids=person_ids, encoder_hash=self.encoder_hash,
                                 dim=self.galleries.dim)

    def _apply(self, refreshed: dict[str, tuple[str, np.ndarray, str] | None]) -> None:
        for person_id, value in refreshed.items():
            if value is None:
                self.galleries.remove(person_id)
            else:
                self.galleries.upsert(person_id, value[2], value[0], value[1], value[3])

    def sync(self, force: bool = False) -> None:
        """Catch up with other processes' writes: refresh just the people they touched."""
        now = time.monotonic()
        if not force:
            if self.notifications is not None and self.notifications.listening:
                if not self.notifications.changed():
                    return  # no write committed since the last check: no round trip
            elif now - self._last_check < self.sync_interval_s:
                return
        with self._lock:
            self._last_check = now
            try:
                with self.sessions() as session:
                    version = queries.gallery_version(session)
                    local = self.galleries.version
                    if version == local:
                        return
                    if local < 0 or version < local:  # never loaded, or the database was replaced
                        refreshed = None
                    else:
                        # Version first, then the rows: what is read is at least as new as `version`.
                        touched = queries.touched_since(session, after=local, up_to=version)
                        refreshed = self._support_sets(session, touched)
            except OperationalError as exc:
                if self.notifications is not None:
                    self.notifications.mark()
                raise ServiceUnavailable("The database is unreachable.") from exc
            if refreshed is None:
                self.reload()
            else:
                self._apply(refreshed)
                self.galleries.version = version

    def write(self, work, touched: set[str] | None = None, new_photos: list[str] = ()):
        """Run ``work(session)`` in one transaction that bumps the gallery version, then update the index.

        ``new_photos`` are the stored-photo names ``work`` writes: claimed before the transaction, settled in it,
        removed if it fails (:mod:`app.gallery.photo_store`; the folder journals them, the database writes them in
        it). A deadlock (PostgreSQL chose this transaction to break one) is tried again, a few times, from the start.
        """
        new_photos = list(new_photos)
        self.db.check_writable()
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                self.photos.reserve(new_photos)
            except IntegrityError as exc:  # another write holds one of these photo names in the journal
                raise Conflict("Another change is storing a photo under the same name; nothing was stored.",
                               {"reason": "photo_name_taken"}) from exc
            except DBAPIError as exc:
                raise database_error(exc) from exc
            try:
                with begin_write(self.sessions) as session:
                    result = work(session)
                    self.photos.settle(session, new_photos)
                    session.execute(update(GalleryState).where(GalleryState.id == 1)
                                    .values(version=GalleryState.version + 1))
                    new_version = queries.gallery_version(session)
                    session.add_all(GalleryChange(version=new_version, person_id=p) for p in touched or ())
                    if self.notifications is not None:  # delivered to every listener when this commits
                        self.notifications.announce(session, new_version)
                    session.flush()
                    refreshed = self._support_sets(session, touched or ())
                    crash_point("before_commit", self.crash_at)
                crash_point("after_commit", self.crash_at)
                break
            except BaseException as exc:
                self.photos.abandon(new_photos)
                if is_deadlock(exc) and attempt < DEADLOCK_RETRIES:
                    continue
                if isinstance(exc, (IntegrityError, StaleDataError)):
                    raise write_conflict(exc) from exc
                if isinstance(exc, DBAPIError):
                    raise database_error(exc) from exc
                raise
        with self._lock:
            # A sync that already read this version (or a later one) knows better than `refreshed`.
            if self.galleries.version < new_version:
                self._apply(refreshed)
                # Versions written in between by other processes come with the next sync.
                if self.galleries.version == new_version - 1:
                    self.galleries.version = new_version
        return result

    def check_encoder_matches_stored(self) -> None:
        """Refuse to serve embeddings made by another encoder (they would be silently wrong)."""
        with self.sessions() as session:
            other = queries.other_encoders(session, encoder_hash=self.encoder_hash)
        if other:
            raise RuntimeError(
                f"The database holds {sum(n for _, n in other)} face embeddings made by another encoder "
                f"({', '.join(h for h, _ in other)}); this service runs {self.encoder_hash}. "
                "Stop the service and run `faceshot reembed` with the new encoder configured, "
                "or start with the encoder that made them.")
