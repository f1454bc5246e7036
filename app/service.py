"""What the routes call: enroll, identify, verify, detect and manage people, one typed result each.

The jobs behind the verbs live in modules of their own: the face pipeline as a request
runs it (:mod:`app.inference.runner`), the gallery consistency protocol (:mod:`app.gallery.sync`),
stored photos (:mod:`app.gallery.photos`), re-embedding (:mod:`app.gallery.reembed`), the read-only queries
(:mod:`app.gallery.queries`) and enrollment warnings (:mod:`app.gallery.enrollment_checks`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from app.access import audit
from app.access.accounts import Accounts
from app.access.audit import Actor
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import Conflict, NotFound, PersonExists, ValidationFailed
from app.core.inputs import clean_name
from app.core.observability import observe_stages
from app.core.tables import COLLECTION_PATTERN, DEFAULT_COLLECTION, AdminGrant, ApiKey, Collection, Face, Person, new_id
from app.gallery import queries
from app.gallery.embeddings import check_embedding
from app.gallery.enrollment_checks import enrollment_warnings
from app.gallery.index import Galleries, Gallery, Match
from app.gallery.photos import PhotoStore
from app.gallery.reembed import reembed
from app.gallery.sync import GallerySync
from app.inference.admission import InferenceQueue
from app.inference.runner import MAX_FACES_PER_ENROLL, Inference, PreparedFace
from app.live.events import EventLog, NewEvent
from app.live.webhooks import Webhooks
from app.recognition.results import (
    Candidate,
    CompareResult,
    DetectResult,
    EmbeddedFaceResult,
    EmbedResult,
    FaceBox,
    GalleryInfo,
    IdentifiedFace,
    IdentifyResult,
    ImageSize,
    ModelInfo,
    OperatingPointInfo,
    PersonRef,
    VerifyResult,
)
from models.calibration import SHOT_CLASSES
from models.errors import NoFace
from models.operating_point import OperatingPoint, fixed_operating_point, one_to_one_rate, operating_point
from models.pipeline import FacePipeline
from models.prototypes import prototype

__all__ = ["MAX_FACES_PER_ENROLL", "EnrollResult", "FaceService", "PreparedFace"]
log = logging.getLogger(__name__)


@dataclass
class EnrollResult:
    person: Person
    faces: list[Face]
    warnings: list[dict] = field(default_factory=list)


class FaceService:
    def __init__(self, settings: Settings, pipeline: FacePipeline, db: Database | None):
        self.settings = settings
        self.pipeline = pipeline
        self.db = db
        self.sessions = db.sessions if db is not None else None
        self.photos = PhotoStore(settings.images_dir, self.sessions)
        self.galleries = Galleries(pipeline.encoder.metadata.embedding_size)
        self.gallery_sync = GallerySync(self.galleries, db, self.photos, pipeline.encoder.content_hash,
                                        settings.gallery_sync_interval_s, settings.crash_at)
        self.inference = Inference(settings, pipeline)
        self.queue = InferenceQueue(settings.inference_queue)
        self.events = EventLog(settings, db) if db is not None else None
        self.webhooks = Webhooks(settings, self.sessions) if db is not None else None
        self.audit = audit.AuditLog(self.sessions) if db is not None else None
        self.accounts = Accounts(self.sessions) if db is not None else None
        # per collection: (its gallery's composition, the operating point it gives)
        self._operating: dict[str, tuple[tuple, OperatingPoint]] = {}

    @property
    def gallery(self) -> Gallery:
        """The default collection's index."""
        return self.galleries.get(DEFAULT_COLLECTION)

    def close(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()
        self.inference.close()
        if self.db is not None:
            self.db.close()

    # -- the jobs behind the verbs, as the CLI and start-up use them ------------------------------
    def prepare(self, data: bytes, box: list[float] | None = None) -> PreparedFace:
        return self.inference.prepare(data, box)

    def prepare_many(self, images: list[bytes], box: list[float] | None = None) -> list[PreparedFace]:
        return self.inference.prepare_many(images, box)

    def reload(self) -> None:
        self.gallery_sync.reload()

    def sync(self, force: bool = False) -> None:
        self.gallery_sync.sync(force)

    def check_encoder_matches_stored(self) -> None:
        self.gallery_sync.check_encoder_matches_stored()

    def reembed(self, *, delete_unrecoverable: bool = False, progress=None) -> dict[str, Any]:
        return reembed(self.gallery_sync, self.inference, self.photos, delete_unrecoverable=delete_unrecoverable,
                       progress=progress)

    # -- thresholds and the model ------------------------------------------------------------------
    def operating_point(self, override: float | None = None, collection: str = DEFAULT_COLLECTION, *,
                        loosen: bool = True) -> OperatingPoint:
        """The thresholds that apply now and the stranger-accept rate they stand for at this gallery's size.

        A per-request ``override`` or FACESHOT_THRESHOLD fixes one distance for everyone (and says what rate
        it stands for); otherwise the gallery-aware operating point holds the gallery to FACESHOT_TARGET_FAR,
        recomputed whenever the gallery's composition (people per shot class) changes; an encoder without
        distance distributions falls back to its checkpoint's fixed thresholds. ``loosen=False`` (a recognition
        key's request) lets the override only tighten them: threshold=2 would name everyone, non-matches too.
        """
        counts = self.galleries.get(collection).composition()
        cal = self.pipeline.encoder.calibration
        if override is not None:
            if not loosen:
                usual = self.operating_point(None, collection)
                return fixed_operating_point(cal, {s: min(override, usual.threshold_for(s)) for s in SHOT_CLASSES},
                                             counts, "request")
            return fixed_operating_point(cal, dict.fromkeys(SHOT_CLASSES, override), counts, "request")
        if self.settings.threshold is not None:
            return fixed_operating_point(cal, dict.fromkeys(SHOT_CLASSES, self.settings.threshold), counts,
                                         "FACESHOT_THRESHOLD")
        if cal is None:
            fixed = {s: self.pipeline.encoder.threshold_for(s) for s in SHOT_CLASSES}
            return fixed_operating_point(None, fixed, counts, "encoder checkpoint")
        key = tuple(counts[s] for s in SHOT_CLASSES)
        cached = self._operating.get(collection)
        if cached is None or cached[0] != key:
            cached = self._operating[collection] = (key, operating_point(cal, self.settings.target_far, counts))
        return cached[1]

    def threshold_for(self, n_support: int, override: float | None = None,
                      collection: str = DEFAULT_COLLECTION, *, loosen: bool = True) -> float:
        """The threshold a person with ``n_support`` photos is held to now (in their collection's gallery)."""
        return self.operating_point(override, collection, loosen=loosen).threshold_for(n_support)

    @staticmethod
    def _operating_info(op: OperatingPoint) -> OperatingPointInfo:
        rate = op.stranger_accept_rate
        return OperatingPointInfo(
            source="FACESHOT_TARGET_FAR" if op.source == "target" else op.source, target_far=op.target_far,
            gallery_size=op.gallery_size, thresholds={str(s): round(t, 4) for s, t in op.thresholds.items()},
            stranger_accept_rate=None if rate != rate else round(rate, 6),  # NaN: no distributions to say it
            per_person_rate=op.per_person_rate,
            expected_recognition={str(s): r for s, r in op.expected_recognition.items()}, warnings=op.warnings)

    def model_info(self, collection: str = DEFAULT_COLLECTION) -> ModelInfo:
        """The encoder, the thresholds that win, and the collection's gallery as of now (other workers' writes
        included)."""
        self.sync()
        op = self.operating_point(None, collection)
        info = self._operating_info(op)
        gallery = self.galleries.get(collection)
        with self.sessions() as session:
            people, faces = queries.counts(session, collection)
        return ModelInfo(
            encoder=self.pipeline.encoder.describe(), threshold=round(op.threshold_for(1), 4),
            threshold_by_support=info.thresholds, threshold_source=info.source,
            gallery=GalleryInfo(people=people, faces=faces, indexed_people=len(gallery),
                                index_device=gallery.device),
            store_images=self.settings.store_images, operating_point=info)

    def counts(self) -> dict:
        with self.sessions() as session:
            people, faces = queries.counts(session)
        return {"people": people, "faces": faces, "indexed_people": len(self.galleries)}

    def readiness(self) -> dict[str, Any]:
        """What /ready reports: the database reachable (and still its file); whether photos can be stored now."""
        file_problem = self.db.file_problem()
        problems = {"database": file_problem} if file_problem else {}
        checks = {"model_loaded": True, "database": file_problem is None and self.db.reachable()}
        storage = (self.photos.problem(min_free_bytes=self.settings.max_upload_bytes)
                   if self.settings.store_images else None)
        if storage:
            problems["storage"] = storage
        return {"checks": checks, "storage": {"writable": storage is None, "problem": storage}, "problems": problems}

    # -- enrollment and people ---------------------------------------------------------------------
    def _existing(self, person_id: str | None, collection: str) -> list[np.ndarray]:
        if person_id is None:
            return []
        with self.sessions() as session:
            return [f.vector for f in queries.get_person(session, person_id=person_id, collection=collection).faces]

    def enrollment_warnings(self, prepared: list[PreparedFace], person_id: str | None = None,
                            collection: str = DEFAULT_COLLECTION) -> list[dict]:
        """The warnings ``enroll`` (or ``add_faces`` to ``person_id``) would give, storing nothing."""
        self.sync(force=True)
        return self._warnings(person_id, self._existing(person_id, collection), prepared, collection)

    def _warnings(self, person_id, existing, prepared, collection: str) -> list[dict]:
        """Look-alikes and repeats within the collection (another collection's people are not this one's)."""
        return enrollment_warnings(self.galleries.get(collection), person_id, existing, prepared,
                                   threshold_for=lambda n: self.threshold_for(n, None, collection),
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
                        encoder_hash=self.pipeline.encoder.content_hash, box=p.box, det_score=p.det_score)
            if file_name is not None:
                self.photos.write(file_name, p.image_bytes)
                face.image_file, face.image_type = file_name, p.image_type
            session.add(face)
            session.flush()
            faces.append(face)
        return faces

    def enroll(self, name: str, prepared: list[PreparedFace], external_id: str | None = None,
               metadata: dict | None = None, collection: str = DEFAULT_COLLECTION,
               actor: Actor | None = None, *, new_person: bool = False) -> EnrollResult:
        """A new person with their photos, all or nothing; someone already enrolled under this name, whose face
        a photo matches, is refused (:class:`PersonExists`) unless ``new_person`` says it is another person."""
        name = clean_name(name)
        self.sync(force=True)
        if not new_person:
            self._refuse_enrolled_again(name, prepared, collection)
        warnings = self._warnings(None, [], prepared, collection)
        person_id, names = new_id(), self._photo_names(prepared)

        def work(session):
            queries.get_collection(session, collection, lock="share")
            person = Person(id=person_id, name=name, external_id=external_id, meta=metadata or {},
                            collection=collection)
            session.add(person)
            session.flush()
            audit.record(session, actor, "person.enroll", collection=collection, target=person_id,
                         details={"name": name, "faces": len(prepared)})
            return EnrollResult(person, self._store_faces(session, person, prepared, names), warnings)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def _refuse_enrolled_again(self, name: str, prepared: list[PreparedFace], collection: str) -> None:
        """A second enrollment of one person (a script run twice, the README's examples after its curl steps)
        would split their matches between two entries: refused with the existing id, to add photos to."""
        with self.sessions() as session:
            named = queries.support_of_people_named(session, name=name, collection=collection,
                                                 encoder_hash=self.pipeline.encoder.content_hash)
        for person_id, support in named.items():
            threshold = self.threshold_for(len(support), None, collection)
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
        from app.core.inputs import check_metadata, check_text  # the API's rules for text, which an export never met

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
            queries.get_collection(session, collection, lock="share")
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
                            encoder_hash=self.pipeline.encoder.content_hash, box=p.box, det_score=p.det_score,
                            image_file=file_name, image_type=p.image_type if file_name else None)
                if when is not None:
                    face.created_at = when
                session.add(face)
                stored.append(face)
            session.flush()  # a face id taken since the check fails here, before any photo is written
            for (_, p, _), (_, file_name) in zip(faces, names):
                if file_name is not None:
                    self.photos.write(file_name, p.image_bytes, replace=False)
            return EnrollResult(person, stored)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def add_faces(self, person_id: str, prepared: list[PreparedFace],
                  collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> EnrollResult:
        """More photos for a person, all or nothing."""
        self.sync(force=True)
        warnings = self._warnings(person_id, self._existing(person_id, collection), prepared, collection)
        names = self._photo_names(prepared)

        def work(session):
            queries.get_collection(session, collection, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            audit.record(session, actor, "face.add", collection=collection, target=person_id,
                         details={"name": person.name, "faces": len(prepared)})
            return EnrollResult(person, self._store_faces(session, person, prepared, names), warnings)

        return self.gallery_sync.write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def create_person(self, name: str, external_id: str | None = None, metadata: dict | None = None,
                      collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> Person:
        name = clean_name(name)

        def work(session):
            queries.get_collection(session, collection, lock="share")
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
            queries.get_collection(session, collection, lock="share")
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
            queries.get_collection(session, collection, lock="share")
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

    # -- collections -------------------------------------------------------------------------------
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
            queries.get_collection(session, name)

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
            queries.get_collection(session, name, lock="exclusive")
            people = session.scalars(select(Person).where(Person.collection == name)
                                     .options(selectinload(Person.faces))).all()
            touched.update(p.id for p in people)
            doomed[:] = [f.image_file for p in people for f in p.faces if f.image_file]  # (a retry starts over)
            counts.update(people=len(people), faces=sum(len(p.faces) for p in people), photos=len(doomed))
            self.photos.doom(session, doomed)
            for person in people:
                session.delete(person)
            session.execute(delete(ApiKey).where(ApiKey.collection == name))
            self.events.delete_collection(session, name)  # its events, webhooks and their deliveries
            session.execute(delete(AdminGrant).where(AdminGrant.collection == name))
            audit.record(session, actor, "collection.delete", collection=name, target=name, details=dict(counts))
            session.flush()
            session.execute(delete(Collection).where(Collection.name == name))

        self.gallery_sync.write(work, touched=touched)
        self.photos.remove(doomed)
        self.galleries.drop(name)
        self._operating.pop(name, None)
        return counts

    def move_person(self, person_id: str, collection: str, to: str, *, copy: bool = False,
                    actor: Actor | None = None) -> Person:
        """Into collection ``to``: moved (the same id), or copied (a new person with copies of the faces and
        photos; the external id stays with the original, as it is unique)."""
        if copy:
            with self.sessions() as session:
                source = queries.get_person(session, person_id=person_id, collection=collection)
                prepared = [PreparedFace(embedding=f.vector, box=f.box, det_score=f.det_score, quality={},
                                         image_bytes=self.photos.read(f.image_file) if f.image_file else None,
                                         image_type=f.image_type) for f in source.faces]
                name, meta = source.name, dict(source.meta or {})
            return self.enroll(name, prepared, metadata=meta, collection=to,
                               actor=actor).person  # its entry is the new person's enroll, in `to`

        def work(session):
            for each in sorted({collection, to}):
                queries.get_collection(session, each, lock="share")
            person = queries.get_person(session, person_id=person_id, collection=collection)
            person.collection = to
            session.flush()
            audit.record(session, actor, "person.move", collection=collection, target=person_id,
                         details={"name": person.name, "to": to})
            return person

        return self.gallery_sync.write(work, touched={person_id})

    # -- recognition -------------------------------------------------------------------------------
    @staticmethod
    def _decide(matches: list[Match], op: OperatingPoint) -> tuple[Match | None, float | None]:
        if not matches:
            return None, None
        best = matches[0]
        threshold = op.threshold_for(best.n_support)
        return (best if best.distance <= threshold else None), threshold

    def identify(self, data: bytes | None, top_k: int = 3, threshold: float | None = None,
                 reveal_candidates: bool = True, embedding: np.ndarray | None = None,
                 collection: str = DEFAULT_COLLECTION, *, loosen: bool = True) -> IdentifyResult:
        """Every face named or unknown, largest first (or the one ``embedding`` a client sent instead of a photo).
        ``reveal_candidates=False`` (a recognition key, by default) keeps the distances of the nearest people but
        not who they are, unless the candidate is the face's match; ``loosen=False`` lets ``threshold`` only
        tighten the usual thresholds."""
        t0 = time.perf_counter()
        self.sync()
        if embedding is not None:
            faces, vectors = [None], [embedding]
        else:
            _, faces = self.inference.analyze(data)
            vectors = [f.embedding for f in faces]
        t_search = time.perf_counter()
        results = self.galleries.get(collection).forward(np.stack(vectors), k=top_k) if faces else []
        observe_stages(search_s=time.perf_counter() - t_search)
        op = self.operating_point(threshold, collection, loosen=loosen)
        info = self._operating_info(op)
        out = []
        for f, matches in zip(faces, results):
            person, used = self._decide(matches, op)
            best = matches[0] if matches else None
            shown = [PersonRef(m.person_id, m.name) if reveal_candidates or (person and m.person_id == person.person_id)
                     else None for m in matches]
            where = vars(FaceBox.of(f.face)) if f is not None else {"box": None, "landmarks": None,
                                                                    "det_score": None, "quality": {}}
            out.append(IdentifiedFace(
                **where,
                person=PersonRef(person.person_id, person.name) if person else None,
                distance=round(best.distance, 4) if best else None,
                similarity=round(best.similarity, 4) if best else None,
                threshold=round(used, 4) if used is not None else None,
                stranger_accept_rate=info.stranger_accept_rate if used is not None else None,
                candidates=[Candidate(p, round(m.distance, 4), round(m.similarity, 4),
                                      match=person is not None and i == 0)  # only the nearest is ever named
                            for i, (p, m) in enumerate(zip(shown, matches))],
            ))
        return IdentifyResult(faces=out, took_ms=round((time.perf_counter() - t0) * 1000, 1),
                              encoder=self.pipeline.encoder.describe(), operating_point=info)

    def verify(self, data: bytes, person_id: str, threshold: float | None = None,
               box: list[float] | None = None, collection: str = DEFAULT_COLLECTION, *,
               loosen: bool = True) -> VerifyResult:
        """Is the photo's one face (the only or dominant one, or the one in ``box``) this person?"""
        self.sync(force=True)
        with self.sessions() as session:
            person = queries.get_person(session, person_id=person_id, collection=collection)
            embs = [f.vector for f in person.faces if f.encoder_hash == self.pipeline.encoder.content_hash]
            name = person.name
        if not embs:
            raise NoFace("This person has no enrolled face to verify against.", {"person_id": person_id})
        _, face = self.inference.one_face(data, box)
        distance = float(np.linalg.norm(face.embedding - prototype(np.stack(embs))))
        used = self.threshold_for(len(embs), threshold, collection, loosen=loosen)  # as identify holds them now
        rate = one_to_one_rate(self.pipeline.encoder.calibration, len(embs), used)
        return VerifyResult(match=distance <= used, distance=round(distance, 4),
                            similarity=round(1 - distance**2 / 2, 4), threshold=round(used, 4),
                            person=PersonRef(person_id, name), face=FaceBox.of(face.face),
                            stranger_accept_rate=None if rate is None else round(rate, 8))

    def client_embedding(self, value, encoder_hash: str | None, field: str = "embedding") -> np.ndarray:
        """A vector a client sent, accepted only from this service's encoder (:mod:`app.gallery.embeddings`)."""
        encoder = self.pipeline.encoder
        return check_embedding(value, encoder_hash, expected_hash=encoder.content_hash,
                               size=encoder.metadata.embedding_size, field=field)

    def prepared_from_embeddings(self, values: list, encoder_hash: str | None) -> list[PreparedFace]:
        """Enrollment faces from embeddings alone (an edge device that never uploads photos): no photo is kept,
        so ``reembed`` cannot re-make them and says so."""
        if not values:
            raise ValidationFailed("At least one embedding is needed.", {"field": "embeddings"})
        if len(values) > MAX_FACES_PER_ENROLL:
            raise ValidationFailed(f"At most {MAX_FACES_PER_ENROLL} embeddings per request.", {"field": "embeddings"})
        return [PreparedFace(embedding=self.client_embedding(v, encoder_hash, "embeddings"), box=[], det_score=0.0,
                             quality={}, image_bytes=None, image_type=None) for v in values]

    def compare(self, data_a: bytes, data_b: bytes | None = None, embedding_b: np.ndarray | None = None,
                box_a: list[float] | None = None, box_b: list[float] | None = None,
                threshold: float | None = None) -> CompareResult:
        """Are the faces of two photos (or a photo and an embedding) one person, held to one comparison's FAR?

        The threshold is the request's, FACESHOT_THRESHOLD, or the distance at which the encoder's one-photo
        stranger distribution reaches FACESHOT_TARGET_FAR: a pair is one comparison, not a gallery search.
        """
        _, face_a = self.inference.one_face(data_a, box_a)
        face_b = None
        if embedding_b is None:
            _, face_b = self.inference.one_face(data_b, box_b)
            embedding_b = face_b.embedding
        distance = float(np.linalg.norm(face_a.embedding - embedding_b))
        from models.operating_point import one_to_one_threshold  # the rule `faceshot compare` decides by too

        cal = self.pipeline.encoder.calibration
        fixed = ((threshold, "request") if threshold is not None
                 else (self.settings.threshold, "FACESHOT_THRESHOLD") if self.settings.threshold is not None else None)
        used, source = one_to_one_threshold(cal, self.settings.target_far, fixed,
                                            checkpoint=self.pipeline.encoder.threshold_for(1))
        rate = one_to_one_rate(cal, 1, used)
        return CompareResult(match=distance <= used, distance=round(distance, 4),
                             similarity=round(1 - distance**2 / 2, 4), threshold=round(float(used), 4),
                             threshold_source=source, stranger_accept_rate=None if rate is None else round(rate, 8),
                             face_a=FaceBox.of(face_a.face), face_b=FaceBox.of(face_b.face) if face_b else None,
                             encoder=self.pipeline.encoder.describe())

    def embed(self, data: bytes) -> EmbedResult:
        """Every face's embedding, with the encoder that made them (its hash comes back with each use)."""
        t0 = time.perf_counter()
        _, faces = self.inference.analyze(data)
        return EmbedResult(faces=[EmbeddedFaceResult(**vars(FaceBox.of(f.face)),
                                                     embedding=[round(float(v), 7) for v in f.embedding])
                                  for f in faces],
                           encoder=self.pipeline.encoder.describe(),
                           took_ms=round((time.perf_counter() - t0) * 1000, 1))

    def record_event(self, new: NewEvent):
        """One recognition event into the log, queued for every webhook (sent by the webhook thread)."""
        event = self.events.record(new)
        self.webhooks.wake()
        return event

    def detect(self, data: bytes) -> DetectResult:
        """Faces, landmarks and quality hints; no identification."""
        t0 = time.perf_counter()
        (width, height), faces = self.inference.detect(data)
        return DetectResult(faces=[FaceBox.of(f) for f in faces], image=ImageSize(width=int(width), height=int(height)),
                            took_ms=round((time.perf_counter() - t0) * 1000, 1))
