"""People and their faces: enroll (all or nothing, with its checks and warnings), add and delete photos, rename,
move or copy between collections, restore from an export, re-make embeddings; each write one gallery transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from app.access import audit
from app.access.audit import Actor
from app.core.config import Settings
from app.core.db import get_collection
from app.core.errors import Conflict, NotFound, PersonExists, ValidationFailed
from app.core.inputs import check_metadata, check_text, clean_name
from app.core.tables import DEFAULT_COLLECTION, Face, Person, new_id
from app.gallery import queries
from app.gallery.embeddings import embedding_from_client
from app.gallery.enrollment_checks import enrollment_warnings
from app.gallery.index import Galleries
from app.gallery.photo_store import PhotoStore
from app.gallery.reembed import reembed
from app.gallery.sync import GallerySync
from app.gallery.thresholds import Thresholds
from app.inference.runner import MAX_FACES_PER_ENROLL, Inference, PreparedFace
from models.encoders.encoder import Encoder
from models.prototypes import prototype


@dataclass
class EnrollResult:
    person: Person
    faces: list[Face]
    warnings: list[dict] = field(default_factory=list)


class People:
    def __init__(self, settings: Settings, encoder: Encoder, inference: Inference, photos: PhotoStore,
                 galleries: Galleries, gallery_sync: GallerySync, thresholds: Thresholds):
        self.settings, self.encoder, self.inference, self.photos = settings, encoder, inference, photos
        self.galleries, self.gallery_sync, self.thresholds = galleries, gallery_sync, thresholds

    @property
    def sessions(self):
        return self.gallery_sync.sessions

    # -- photos and embeddings to enroll ------------------------------------------------------------
    def prepare(self, data: bytes, box: list[float] | None = None) -> PreparedFace:
        """An enrollment photo's one face, embedded, with the bytes it will be stored as."""
        return self.inference.prepare(data, box)

    def prepare_many(self, images: list[bytes], box: list[float] | None = None) -> list[PreparedFace]:
        return self.inference.prepare_many(images, box)

    def embedding_from_client(self, value, encoder_hash: str | None, field: str = "embedding") -> np.ndarray:
        return embedding_from_client(self.encoder, value, encoder_hash, field)

    def prepared_from_embeddings(self, values: list, encoder_hash: str | None) -> list[PreparedFace]:
        """Enrollment faces from embeddings alone (an edge device that never uploads photos): no photo is kept,
        so ``reembed`` cannot re-make them and says so."""
        if not values:
            raise ValidationFailed("At least one embedding is needed.", {"field": "embeddings"})
        if len(values) > MAX_FACES_PER_ENROLL:
            raise ValidationFailed(f"At most {MAX_FACES_PER_ENROLL} embeddings per request.", {"field": "embeddings"})
        return [PreparedFace(embedding=self.embedding_from_client(v, encoder_hash, "embeddings"), box=[], det_score=0.0,
                             quality={}, image_bytes=None, image_type=None) for v in values]

    def reembed(self, *, delete_unrecoverable: bool = False, progress=None) -> dict[str, Any]:
        """Every stored embedding re-made with this encoder from the kept photos (after an encoder change)."""
        return reembed(self.gallery_sync, self.inference, self.photos, delete_unrecoverable=delete_unrecoverable,
                       progress=progress)

    # -- enrollment ---------------------------------------------------------------------------------
    def _existing(self, person_id: str | None, collection: str) -> list[np.ndarray]:
        if person_id is None:
            return []
        with self.sessions() as session:
            return [f.vector for f in queries.get_person(session, person_id=person_id, collection=collection).faces]

    def enrollment_warnings(self, prepared: list[PreparedFace], person_id: str | None = None,
                            collection: str = DEFAULT_COLLECTION) -> list[dict]:
        """The warnings ``enroll`` (or ``add_faces`` to ``person_id``) would give, storing nothing."""
        self.gallery_sync.sync(force=True)
        return self._warnings(person_id, self._existing(person_id, collection), prepared, collection)

    def _warnings(self, person_id, existing, prepared, collection: str) -> list[dict]:
        """Look-alikes and repeats within the collection (another collection's people are not this one's)."""
        return enrollment_warnings(self.galleries.get(collection), person_id, existing, prepared,
                                   threshold_for=lambda n, capture=None: self.thresholds.threshold_for(
                                       n, None, collection, capture=capture),
                                   near_duplicate_distance=self.settings.near_duplicate_distance,
                                   support_of=lambda other: self._existing(other, collection))

    def _photo_names(self, prepared: list[PreparedFace]) -> list[tuple[str, str | None]]:
        """A new face id for each prepared photo, with the name its photo will be stored under (if kept)."""
        ids = [new_id() for _ in prepared]
        return [(i, self.photos.file_name(i) if self.settings.store_images and p.image_bytes is not None else None)
                for i, p in zip(ids, prepared)]

    def _store_faces(self, session, person: Person, prepared: list[PreparedFace],
                     names: list[tuple[str, str | None]]) -> list[Face]:
        faces = []
        for p, (face_id, file_name) in zip(prepared, names):
            face = Face(id=face_id, person_id=person.id, embedding=np.asarray(p.embedding, dtype="<f4").tobytes(),
                        encoder_hash=self.encoder.content_hash, box=p.box, det_score=p.det_score, origin=p.origin)
            if file_name is not None:
                self.photos.write(file_name, p.image_bytes, session=session)
                face.image_file, face.image_type = file_name, p.image_type
            session.add(face)
            session.flush()
            faces.append(face)
        return faces

    def enroll(self, name: str, prepared: list[PreparedFace], external_id: str | None = None,
               metadata: dict | None = None, collection: str = DEFAULT_COLLECTION,
               actor: Actor | None = None, *, new_person: bool = False, origin: dict | None = None) -> EnrollResult:
        """A new person with their photos, all or nothing; someone already enrolled under this name, whose face
        a photo matches, is refused (:class:`PersonExists`) unless ``new_person`` says it is another person.
        ``origin``: where the photos came from (an event's id), in the audit entry."""
        name = clean_name(name)
        self.gallery_sync.sync(force=True)
        if not new_person:
            self._refuse_enrolled_again(name, prepared, collection)
        warnings = self._warnings(None, [], prepared, collection)
        person_id, names = new_id(), self._photo_names(prepared)

        def work(session):
            get_collection(session, collection, lock="share")
            person = Person(id=person_id, name=name, external_id=external_id, meta=metadata or {},
                            collection=collection)
            session.add(person)
            session.flush()
            audit.record(session, actor, "person.enroll", collection=collection, target=person_id,
                         details={"name": name, "faces": len(prepared), **(origin or {})})
            return EnrollResult(person, self._store_faces(session, person, prepared, names), warnings)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def _refuse_enrolled_again(self, name: str, prepared: list[PreparedFace], collection: str) -> None:
        """A second enrollment of one person (a script run twice, the README's examples after its curl steps)
        would split their matches between two entries: refused with the existing id, to add photos to."""
        with self.sessions() as session:
            named = queries.support_of_people_named(session, name=name, collection=collection,
                                                 encoder_hash=self.encoder.content_hash)
        for person_id, support in named.items():
            threshold = self.thresholds.threshold_for(len(support), None, collection)
            distances = [float(np.linalg.norm(p.embedding - prototype(support))) for p in prepared]
            closest = int(np.argmin(distances))
            if distances[closest] <= threshold:
                raise PersonExists(
                    f"{name} is already enrolled (person {person_id}), and photo {closest + 1} is their face "
                    f"(distance {distances[closest]:.3f}, within {threshold:.3f}). Add the photos to that person "
                    f"instead (POST people/{person_id}/faces), or send new_person=true if this is another person of "
                    "the same name.", {"person_id": person_id, "name": name, "image_index": closest,
                              "distance": round(distances[closest], 4), "threshold": round(threshold, 4)})

    def restore_person(self, person_id: str, name: str, external_id: str | None, metadata: dict | None,
                       created_at, faces: list[tuple[str, PreparedFace, Any]],
                       collection: str = DEFAULT_COLLECTION) -> EnrollResult:
        """A person from an export (:mod:`app.gallery.transfer`) with their own ids and dates, all or nothing.

        No enrollment warnings: the person was enrolled (and warned about) where the export was made. The face ids
        come from the file: one another face has (or a photo file already at its name) is refused before anything
        is written, photos go only where no file is, and a refused write removes only what it wrote.
        """
        name = clean_name(name)
        if external_id is not None:
            check_text(external_id, "external_id")
        check_metadata(metadata)
        face_ids = [face_id for face_id, _, _ in faces]
        if len(set(face_ids)) < len(face_ids):
            raise ValidationFailed("A face id appears twice among this person's faces; nothing was stored.",
                                   {"field": "faces"})
        names = [(face_id, self.photos.file_name(face_id) if self.settings.store_images and p.image_bytes else None)
                 for face_id, p, _ in faces]

        def refuse_taken(session) -> None:
            taken = session.execute(select(Face.id, Face.person_id).where(Face.id.in_(face_ids))).first()
            if taken is not None:
                raise Conflict(f"Face {taken.id} is already stored, as a face of person {taken.person_id}; nothing "
                               "was stored.", {"reason": "face_exists", "face_id": taken.id})

        with self.sessions() as session:
            refuse_taken(session)
        for _, file_name in names:
            if file_name is not None and self.photos.exists(file_name):  # a file no face row names: not ours either
                raise Conflict(f"A photo file named {file_name} is already stored; it was left as it is and nothing "
                               "was stored.", {"reason": "photo_exists", "file": file_name})

        def work(session):
            get_collection(session, collection, lock="share")
            refuse_taken(session)  # stored meanwhile by another process
            person = Person(id=person_id, name=name, external_id=external_id, meta=metadata or {},
                            collection=collection)
            if created_at is not None:
                person.created_at = created_at
            session.add(person)
            session.flush()
            audit.record(session, audit.CLI, "person.import", collection=collection, target=person_id,
                         details={"name": name, "faces": len(faces)})
            stored = []
            for (face_id, p, when), (_, file_name) in zip(faces, names):
                face = Face(id=face_id, person_id=person_id, embedding=np.asarray(p.embedding, dtype="<f4").tobytes(),
                            encoder_hash=self.encoder.content_hash, box=p.box, det_score=p.det_score,
                            image_file=file_name, image_type=p.image_type if file_name else None, origin=p.origin)
                if when is not None:
                    face.created_at = when
                session.add(face)
                stored.append(face)
            session.flush()  # a face id taken since the check fails here, before any photo is written
            for (_, p, _), (_, file_name) in zip(faces, names):
                if file_name is not None:
                    self.photos.write(file_name, p.image_bytes, replace=False, session=session)
            return EnrollResult(person, stored)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def add_faces(self, person_id: str, prepared: list[PreparedFace],
                  collection: str = DEFAULT_COLLECTION, actor: Actor | None = None,
                  origin: dict | None = None) -> EnrollResult:
        """More photos for a person, all or nothing (``origin``: where they came from, in the audit entry)."""
        self.gallery_sync.sync(force=True)
        warnings = self._warnings(person_id, self._existing(person_id, collection), prepared, collection)
        names = self._photo_names(prepared)

        def work(session):
            get_collection(session, collection, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            audit.record(session, actor, "face.add", collection=collection, target=person_id,
                         details={"name": person.name, "faces": len(prepared), **(origin or {})})
            return EnrollResult(person, self._store_faces(session, person, prepared, names), warnings)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    # -- people -----------------------------------------------------------------------------------------
    def create_person(self, name: str, external_id: str | None = None, metadata: dict | None = None,
                      collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> Person:
        name = clean_name(name)

        def work(session):
            get_collection(session, collection, lock="share")
            person = Person(name=name, external_id=external_id, meta=metadata or {}, collection=collection)
            session.add(person)
            session.flush()
            audit.record(session, actor, "person.create", collection=collection, target=person.id,
                         details={"name": name})
            return person

        return self.gallery_sync.write(work)

    def update_person(self, person_id: str, name: str | None, external_id: str | None, metadata: dict | None,
                      fields: set[str], collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> Person:
        """Change the ``fields`` named (a field sent as null is cleared; one not sent is kept)."""
        def work(session):
            get_collection(session, collection, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            if "name" in fields:
                person.name = clean_name(name)
            if "external_id" in fields:
                person.external_id = external_id
            if "metadata" in fields:
                person.meta = metadata or {}
            session.flush()
            audit.record(session, actor, "person.update", collection=collection, target=person_id,
                         details={"name": person.name, "fields": sorted(fields)})
            return person

        return self.gallery_sync.write(work, touched={person_id})

    def delete_person(self, person_id: str, collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> None:
        """The person with their faces, embeddings and stored photos."""
        doomed: list[str] = []

        def work(session):
            get_collection(session, collection, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            doomed.extend(f.image_file for f in person.faces if f.image_file)
            self.photos.doom(session, doomed)
            audit.record(session, actor, "person.delete", collection=collection, target=person_id,
                         details={"name": person.name, "faces": len(person.faces)})
            session.delete(person)

        self.gallery_sync.write(work, touched={person_id})
        self.photos.remove(doomed)

    def delete_face(self, person_id: str, face_id: str, collection: str = DEFAULT_COLLECTION,
                    actor: Actor | None = None) -> None:
        doomed: list[str] = []

        def work(session):
            owner = queries.get_person(session, person_id=person_id, collection=collection)
            face = session.get(Face, face_id)
            if face is None or face.person_id != person_id:
                raise NotFound(f"Person {person_id} has no face {face_id}.", {"face_id": face_id})
            if face.image_file:
                doomed.append(face.image_file)
            self.photos.doom(session, doomed)
            audit.record(session, actor, "face.delete", collection=collection, target=person_id,
                         details={"name": owner.name, "face_id": face_id})
            session.delete(face)
            session.flush()
            session.expire_all()

        self.gallery_sync.write(work, touched={person_id})
        self.photos.remove(doomed)

    def get_person(self, person_id: str, collection: str | None = DEFAULT_COLLECTION) -> Person:
        """The person (None for ``collection``: in whichever collection they are)."""
        with self.sessions() as session:
            return queries.get_person(session, person_id=person_id, collection=collection)

    def list_people(self, search: str | None, limit: int, offset: int,
                    collection: str | None = DEFAULT_COLLECTION) -> tuple[list[Person], int]:
        with self.sessions() as session:
            return queries.list_people(session, search=search, limit=limit, offset=offset, collection=collection)

    def face_image(self, person_id: str, face_id: str, collection: str = DEFAULT_COLLECTION) -> tuple[bytes, str]:
        """A face's stored photo and its media type."""
        with self.sessions() as session:
            queries.get_person(session, person_id=person_id, collection=collection)
            name, media_type = queries.face_photo(session, person_id=person_id, face_id=face_id)
        data = self.photos.read(name)
        if data is None:
            raise NotFound("This face's photo is missing from the data directory.", {"face_id": face_id})
        return data, media_type


    def move_person(self, person_id: str, collection: str, to: str, *, copy: bool = False,
                    actor: Actor | None = None) -> Person:
        """Into collection ``to``: moved (the same id), or copied (a new person with copies of the faces and
        photos; the external id stays with the original, as it is unique)."""
        if copy:
            with self.sessions() as session:
                source = queries.get_person(session, person_id=person_id, collection=collection)
                prepared = [PreparedFace(embedding=f.vector, box=f.box, det_score=f.det_score, quality={},
                                         image_bytes=self.photos.read(f.image_file) if f.image_file else None,
                                         image_type=f.image_type, origin=f.origin) for f in source.faces]
                name, meta = source.name, dict(source.meta or {})
            return self.enroll(name, prepared, metadata=meta, collection=to,
                               actor=actor).person  # its entry is the new person's enroll, in `to`

        def work(session):
            for each in sorted({collection, to}):
                get_collection(session, each, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            person.collection = to
            session.flush()
            audit.record(session, actor, "person.move", collection=collection, target=person_id,
                         details={"name": person.name, "to": to})
            return person

        return self.gallery_sync.write(work, touched={person_id})
