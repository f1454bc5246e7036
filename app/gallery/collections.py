"""Collections: galleries of their own in one deployment; created, listed, checked, deleted with exactly what is in
them (people, faces, photos, keys, admin rights, index, and what the event sinks keep of them)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from app.access import audit
from app.access.audit import Actor
from app.core.db import get_collection
from app.core.errors import Conflict, ValidationFailed
from app.core.tables import COLLECTION_PATTERN, DEFAULT_COLLECTION, AdminGrant, ApiKey, Collection, Person
from app.gallery import queries
from app.gallery.index import Galleries
from app.gallery.photo_store import PhotoStore
from app.gallery.sync import GallerySync
from app.gallery.thresholds import Thresholds

# what else a deleted collection takes with it, in the deletion's own transaction (the event log registers its own)
Cleanup = Callable[[Session, str], None]


class Collections:
    def __init__(self, gallery_sync: GallerySync, galleries: Galleries, photos: PhotoStore, thresholds: Thresholds):
        self.gallery_sync, self.galleries, self.photos, self.thresholds = gallery_sync, galleries, photos, thresholds
        self.cleanups: list[Cleanup] = []

    @property
    def sessions(self):
        return self.gallery_sync.sessions

    def create_collection(self, name: str, actor: Actor | None = None):
        """A new, empty gallery (names: lowercase letters, digits, - and _; 1-64)."""
        if not re.fullmatch(COLLECTION_PATTERN, name or ""):
            raise ValidationFailed("A collection's name is 1-64 lowercase letters, digits, '-' or '_', starting with a "
                                   "letter or digit.", {"field": "name"})

        def work(session):
            if session.get(Collection, name) is not None:
                raise Conflict(f"A collection named {name!r} exists.", {"collection": name})
            collection = Collection(name=name)
            session.add(collection)
            session.flush()
            audit.record(session, actor, "collection.create", collection=name, target=name)
            session.expunge(collection)
            return collection

        return self.gallery_sync.write(work)

    def ensure_collection(self, name: str, actor: Actor | None = None) -> None:
        """The collection, made if it is not there yet (an import into a new one)."""
        with self.sessions() as session:
            if session.get(Collection, name) is not None:
                return
        try:
            self.create_collection(name, actor)
        except Conflict:
            pass  # made meanwhile by another process

    def list_collections(self) -> list[tuple[Collection, int]]:
        with self.sessions() as session:
            return queries.collections_with_counts(session)

    def check_collection(self, name: str) -> None:
        with self.sessions() as session:
            get_collection(session, name)

    def delete_collection(self, name: str, actor: Actor | None = None) -> dict:
        """The collection with exactly its people, faces, embeddings, photos, keys, events, webhooks, admin rights
        and index; not `default`."""
        if name == DEFAULT_COLLECTION:
            raise Conflict("The default collection cannot be deleted (today's routes are its own).",
                           {"collection": name})
        doomed: list[str] = []
        touched: set[str] = set()
        counts = {}

        def work(session):
            # waits for what is being created in it, then bars it
            get_collection(session, name, lock="exclusive")
            people = session.scalars(select(Person).where(Person.collection == name)
                                     .options(selectinload(Person.faces))).all()
            touched.update(p.id for p in people)
            doomed[:] = [f.image_file for p in people for f in p.faces if f.image_file]  # (a retry starts over)
            counts.update(people=len(people), faces=sum(len(p.faces) for p in people), photos=len(doomed))
            self.photos.doom(session, doomed)
            for person in people:
                session.delete(person)
            session.execute(delete(ApiKey).where(ApiKey.collection == name))
            for cleanup in self.cleanups:  # its events, and what each event sink keeps of it
                cleanup(session, name)
            session.execute(delete(AdminGrant).where(AdminGrant.collection == name))
            audit.record(session, actor, "collection.delete", collection=name, target=name, details=dict(counts))
            session.flush()
            session.execute(delete(Collection).where(Collection.name == name))

        self.gallery_sync.write(work, touched=touched)
        self.photos.remove(doomed)
        self.galleries.drop(name)
        self.thresholds.forget(name)
        return counts
