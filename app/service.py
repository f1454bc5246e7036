"""What the routes call: enroll, identify, verify, detect and manage people, one typed result each.

Every write goes through one database transaction that also bumps the gallery
version; the in-process FAISS gallery is changed only after that commit
succeeds, so database and index agree or the write never happened. Other
processes (uvicorn workers, replicas) see the version move on their next
check and reload. Stored photos follow the journal protocol of :mod:`app.photos`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from models.errors import Conflict, DecodeTimeout, FaceshotError, NoFace, NotFound, ServiceUnavailable, ValidationFailed
from models.imageio import load_image
from models.pipeline import FacePipeline, Timings, select_enrollment_face

from .admission import InferenceQueue
from .core.config import Settings
from .core.db import Database
from .errors import InsufficientStorage, Overloaded, StorageUnavailable
from .faults import crash_point
from .gallery import Gallery, Match, prototype
from .inputs import clean_name, like_pattern
from .models import Face, GalleryChange, GalleryState, Person, new_id
from .observability import observe_stages
from .photos import PhotoStore

log = logging.getLogger(__name__)

MAX_FACES_PER_ENROLL = 10


@dataclass
class PreparedFace:
    """One enrollment photo, decoded, its face chosen and embedded; nothing stored yet."""

    embedding: np.ndarray
    box: list[float]
    det_score: float
    quality: dict
    image_bytes: bytes
    image_type: str


@dataclass
class EnrollResult:
    person: Person
    faces: list[Face]
    warnings: list[dict] = field(default_factory=list)


def _image_type(data: bytes) -> str:
    try:
        import io

        fmt = Image.open(io.BytesIO(data)).format or "octet-stream"
    except Exception:
        fmt = "octet-stream"
    return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
            "BMP": "image/bmp", "TIFF": "image/tiff"}.get(fmt, "application/octet-stream")


def _database_error(exc: DBAPIError) -> FaceshotError:
    """A failed write's database error as the caller should hear it: full disk, read-only file, or unreachable."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return InsufficientStorage("The database's disk is full; nothing was stored.", {"reason": "enospc"})
    if "readonly database" in text or "read-only" in text:
        return StorageUnavailable("The database file cannot be written; nothing was stored.", {"reason": "erofs"})
    return ServiceUnavailable("The database is unreachable; nothing was stored.")


class FaceService:
    def __init__(self, settings: Settings, pipeline: FacePipeline, db: Database | None):
        self.settings = settings
        self.pipeline = pipeline
        self.db = db
        self.sessions = db.sessions if db is not None else None
        self.photos = PhotoStore(settings.images_dir, self.sessions)
        self.gallery = Gallery(pipeline.encoder.metadata.embedding_size)
        self.queue = InferenceQueue(settings.inference_queue)
        self._infer_lock = threading.Lock()  # one forward pass at a time: the cores are shared
        self._sync_lock = threading.Lock()
        self._last_check = 0.0
        # Decoding runs here so a request can give up on a pathological file after decode_timeout_s.
        # Byte and pixel limits bound how long an abandoned decode keeps its thread.
        self._decoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")

    # -- images and faces ------------------------------------------------------------------
    def decode(self, data: bytes):
        """Decode within ``decode_timeout_s`` of decoding *starting*: a wait for a free decoder is not the photo's fault."""
        started = threading.Event()

        def run():
            started.set()
            return load_image(data, max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_image_pixels)

        future = self._decoder.submit(run)
        if not started.wait(timeout=60):  # every decoder busy for a minute: pathological files in all of them
            future.cancel()
            raise Overloaded("Every image decoder is busy; try again shortly.", retry_after=5)
        try:
            return future.result(timeout=self.settings.decode_timeout_s)
        except FutureTimeout:
            future.cancel()
            raise DecodeTimeout(f"Decoding the image took longer than {self.settings.decode_timeout_s:g} s.",
                                {"timeout_s": self.settings.decode_timeout_s}) from None

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)
        if self.db is not None:
            self.db.close()

    def analyze(self, data: bytes, timings=None):
        image = self.decode(data)
        timings = timings if timings is not None else Timings()
        with self._infer_lock:
            faces = self.pipeline.analyze(image, timings)
        observe_stages(timings.detect_ms, timings.align_ms, timings.embed_ms)
        return image, faces

    def prepare(self, data: bytes, box: list[float] | None = None) -> PreparedFace:
        image = self.decode(data)
        timings = Timings()
        with self._infer_lock:
            t0 = time.perf_counter()
            faces = self.pipeline.detect(image)
            timings.detect_ms = (time.perf_counter() - t0) * 1000
            face = select_enrollment_face(faces, tuple(box) if box else None)
            embedded = self.pipeline.embed_faces(image, [face], timings)[0]
        observe_stages(timings.detect_ms, timings.align_ms, timings.embed_ms)
        return PreparedFace(
            embedding=embedded.embedding,
            box=[round(float(v), 1) for v in face.box],
            det_score=float(face.score),
            quality=face.quality,
            image_bytes=data,
            image_type=_image_type(data),
        )

    def prepare_many(self, images: list[bytes], box: list[float] | None = None) -> list[PreparedFace]:
        if not images:
            raise ValidationFailed("At least one image is needed.", {"field": "images"})
        if len(images) > MAX_FACES_PER_ENROLL:
            raise ValidationFailed(f"At most {MAX_FACES_PER_ENROLL} images per request.", {"field": "images"})
        if box is not None and len(images) != 1:
            raise ValidationFailed("`box` applies to a single image.", {"field": "box"})
        prepared = []
        for i, data in enumerate(images):
            try:
                prepared.append(self.prepare(data, box))
            except Exception as exc:
                if hasattr(exc, "details"):
                    exc.details = {**exc.details, "image_index": i}
                raise
        return prepared

    # -- thresholds ------------------------------------------------------------------------
    def threshold_for(self, n_support: int, override: float | None = None) -> float:
        if override is not None:
            return float(override)
        if self.settings.threshold is not None:
            return float(self.settings.threshold)
        return self.pipeline.encoder.threshold_for(n_support)

    # -- gallery consistency ---------------------------------------------------------------
    def _db_version(self, session: Session) -> int:
        return session.execute(select(GalleryState.version).where(GalleryState.id == 1)).scalar_one()

    def reload(self) -> None:
        """Rebuild the index from the database (start-up, or another process wrote)."""
        with self.sessions() as session:
            version = self._db_version(session)
            rows = session.execute(
                select(Face.person_id, Face.embedding, Person.name).join(Person).where(
                    Face.encoder_hash == self.pipeline.encoder.content_hash
                )
            ).all()
        if rows:
            embeddings = np.stack([np.frombuffer(r.embedding, dtype="<f4") for r in rows])
        else:
            embeddings = np.zeros((0, self.gallery.dim), np.float32)
        self.gallery.process_support_set(embeddings, [r.person_id for r in rows], {r.person_id: r.name for r in rows})
        self.gallery.version = version

    def _support_sets(self, session: Session, person_ids) -> dict[str, tuple[str, np.ndarray] | None]:
        """Each person's name and support embeddings under the running encoder (None: deleted)."""
        person_ids = list(person_ids)
        out: dict[str, tuple[str, np.ndarray] | None] = dict.fromkeys(person_ids)
        for start in range(0, len(person_ids), 500):
            chunk = person_ids[start : start + 500]
            for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(chunk))):
                out[pid] = (name, [])
            for pid, emb in session.execute(
                select(Face.person_id, Face.embedding).where(
                    Face.person_id.in_(chunk), Face.encoder_hash == self.pipeline.encoder.content_hash
                ).order_by(Face.created_at)
            ):
                if out.get(pid) is not None:
                    out[pid][1].append(np.frombuffer(emb, dtype="<f4"))
        return {pid: None if v is None else (v[0], np.stack(v[1]) if v[1] else np.zeros((0, self.gallery.dim)))
                for pid, v in out.items()}

    def _apply(self, refreshed: dict[str, tuple[str, np.ndarray] | None]) -> None:
        for person_id, value in refreshed.items():
            if value is None:
                self.gallery.remove(person_id)
            else:
                self.gallery.upsert(person_id, value[0], value[1])

    def sync(self, force: bool = False) -> None:
        """Catch up with other processes' writes: refresh just the people they touched."""
        now = time.monotonic()
        if not force and now - self._last_check < self.settings.gallery_sync_interval_s:
            return
        with self._sync_lock:
            self._last_check = now
            try:
                with self.sessions() as session:
                    version = self._db_version(session)
                    local = self.gallery.version
                    if version == local:
                        return
                    if local < 0 or version < local:  # never loaded, or the database was replaced
                        refreshed = None
                    else:
                        # Version first, then the rows: what is read is at least as new as `version`.
                        touched = session.execute(
                            select(GalleryChange.person_id).where(
                                GalleryChange.version > local, GalleryChange.version <= version
                            ).distinct()
                        ).scalars().all()
                        refreshed = self._support_sets(session, touched)
            except OperationalError as exc:
                raise ServiceUnavailable("The database is unreachable.") from exc
            if refreshed is None:
                self.reload()
            else:
                self._apply(refreshed)
                self.gallery.version = version

    def check_encoder_matches_stored(self) -> None:
        """Refuse to serve embeddings made by another encoder (they would be silently wrong)."""
        with self.sessions() as session:
            other = session.execute(
                select(Face.encoder_hash, func.count()).where(Face.encoder_hash != self.pipeline.encoder.content_hash)
                .group_by(Face.encoder_hash)
            ).all()
        if other:
            raise RuntimeError(
                f"The database holds {sum(n for _, n in other)} face embeddings made by another encoder "
                f"({', '.join(h for h, _ in other)}); this service runs {self.pipeline.encoder.content_hash}. "
                "Stop the service and run `faceshot reembed` with the new encoder configured, "
                "or start with the encoder that made them."
            )

    # -- writes ------------------------------------------------------------------------------
    def _write(self, work, touched: set[str] | None = None, new_photos: list[str] = ()):
        """Run ``work(session)`` in one transaction that bumps the gallery version, then update the index.

        ``new_photos`` are the stored-photo names ``work`` writes: journalled before the
        transaction, settled in it, removed if it fails (:mod:`app.photos`).
        """
        new_photos = list(new_photos)
        problem = self.db.file_problem() if self.db is not None else None
        if problem:
            raise StorageUnavailable("The database file was removed or replaced while the service ran; "
                                     "nothing was stored. Restart the service.", {"reason": problem})
        try:
            self.photos.reserve(new_photos)
        except DBAPIError as exc:
            raise _database_error(exc) from exc
        try:
            with self.sessions.begin() as session:
                result = work(session)
                self.photos.settle(session, new_photos)
                session.execute(update(GalleryState).where(GalleryState.id == 1).values(version=GalleryState.version + 1))
                new_version = self._db_version(session)
                session.add_all(GalleryChange(version=new_version, person_id=p) for p in touched or ())
                session.flush()
                refreshed = self._support_sets(session, touched or ())
                crash_point("before_commit")
            crash_point("after_commit")
        except IntegrityError as exc:
            self.photos.abandon(new_photos)
            raise Conflict("That conflicts with an existing record (is the external_id taken?).") from exc
        except (OperationalError, DBAPIError) as exc:
            self.photos.abandon(new_photos)
            raise _database_error(exc) from exc
        except BaseException:
            self.photos.abandon(new_photos)
            raise
        with self._sync_lock:
            # A sync that already read this version (or a later one) knows better than `refreshed`.
            if self.gallery.version < new_version:
                self._apply(refreshed)
                # Versions written in between by other processes come with the next sync.
                if self.gallery.version == new_version - 1:
                    self.gallery.version = new_version
        return result

    def _photo_names(self, prepared: list[PreparedFace]) -> list[tuple[str, str | None]]:
        """A new face id for each prepared photo, with the name its photo will be stored under (if kept)."""
        ids = [new_id() for _ in prepared]
        return [(i, self.photos.file_name(i) if self.settings.store_images else None) for i in ids]

    def _store_faces(self, session: Session, person: Person, prepared: list[PreparedFace],
                     names: list[tuple[str, str | None]]) -> list[Face]:
        faces = []
        for p, (face_id, file_name) in zip(prepared, names):
            face = Face(
                id=face_id,
                person_id=person.id,
                embedding=np.asarray(p.embedding, dtype="<f4").tobytes(),
                encoder_hash=self.pipeline.encoder.content_hash,
                box=p.box,
                det_score=p.det_score,
            )
            if file_name is not None:
                self.photos.write(file_name, p.image_bytes)
                face.image_file, face.image_type = file_name, p.image_type
            session.add(face)
            session.flush()
            faces.append(face)
        return faces

    def _warnings(self, person_id: str | None, existing: list[np.ndarray], prepared: list[PreparedFace]) -> list[dict]:
        """Photos that look like someone else, or that repeat a photo already enrolled."""
        warnings = []
        new = [p.embedding for p in prepared]
        own = prototype(np.stack(existing + new))
        for i, emb in enumerate(new):
            d_own = float(np.linalg.norm(emb - own))
            others = [m for m in self.gallery.forward(emb, k=2)[0] if m.person_id != person_id]
            if others and others[0].distance < max(d_own, self.threshold_for(others[0].n_support)):
                warnings.append({
                    "code": "looks_like_other_person", "image_index": i,
                    "message": f"This photo is closer to {others[0].name} than a different person should be.",
                    "person": {"id": others[0].person_id, "name": others[0].name},
                    "distance": round(others[0].distance, 4), "distance_to_own": round(d_own, 4),
                })
            for j, other in enumerate(existing + new[:i]):
                d = float(np.linalg.norm(emb - other))
                if d < self.settings.near_duplicate_distance:
                    warnings.append({
                        "code": "near_duplicate", "image_index": i,
                        "message": "This photo is almost identical to one already enrolled; a different photo adds more.",
                        "distance": round(d, 4),
                    })
                    break
        return warnings

    def enrollment_warnings(self, prepared: list[PreparedFace], person_id: str | None = None) -> list[dict]:
        """The warnings ``enroll`` (or ``add_faces`` to ``person_id``) would give, storing nothing."""
        self.sync(force=True)
        existing = []
        if person_id is not None:
            with self.sessions() as session:
                existing = [f.vector for f in self._get_person(session, person_id).faces]
        return self._warnings(person_id, existing, prepared)

    def enroll(self, name: str, prepared: list[PreparedFace], external_id: str | None = None,
               metadata: dict | None = None) -> EnrollResult:
        name = clean_name(name)
        self.sync(force=True)
        warnings = self._warnings(None, [], prepared)

        person_id = new_id()
        names = self._photo_names(prepared)

        def work(session):
            person = Person(id=person_id, name=name, external_id=external_id, meta=metadata or {})
            session.add(person)
            session.flush()
            faces = self._store_faces(session, person, prepared, names)
            return EnrollResult(person, faces, warnings)

        return self._write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def add_faces(self, person_id: str, prepared: list[PreparedFace]) -> EnrollResult:
        self.sync(force=True)
        with self.sessions() as session:
            person = self._get_person(session, person_id)
            existing = [f.vector for f in person.faces]
        warnings = self._warnings(person_id, existing, prepared)
        names = self._photo_names(prepared)

        def work(session):
            person = self._get_person(session, person_id)
            faces = self._store_faces(session, person, prepared, names)
            return EnrollResult(person, faces, warnings)

        return self._write(work, touched={person_id}, new_photos=[n for _, n in names if n])

    def create_person(self, name: str, external_id: str | None = None, metadata: dict | None = None) -> Person:
        name = clean_name(name)

        def work(session):
            person = Person(name=name, external_id=external_id, meta=metadata or {})
            session.add(person)
            session.flush()
            return person

        return self._write(work)

    def update_person(self, person_id: str, name: str | None, external_id: str | None, metadata: dict | None,
                      fields: set[str]) -> Person:
        def work(session):
            person = self._get_person(session, person_id)
            if "name" in fields:
                person.name = clean_name(name)
            if "external_id" in fields:
                person.external_id = external_id
            if "metadata" in fields:
                person.meta = metadata or {}
            session.flush()
            return person

        return self._write(work, touched={person_id})

    def delete_person(self, person_id: str) -> None:
        doomed: list[str] = []

        def work(session):
            person = self._get_person(session, person_id)
            doomed.extend(f.image_file for f in person.faces if f.image_file)
            self.photos.doom(session, doomed)
            session.delete(person)

        self._write(work, touched={person_id})
        self.photos.remove(doomed)

    def delete_face(self, person_id: str, face_id: str) -> None:
        doomed: list[str] = []

        def work(session):
            face = session.get(Face, face_id)
            if face is None or face.person_id != person_id:
                raise NotFound(f"Person {person_id} has no face {face_id}.", {"face_id": face_id})
            if face.image_file:
                doomed.append(face.image_file)
            self.photos.doom(session, doomed)
            session.delete(face)
            session.flush()
            session.expire_all()

        self._write(work, touched={person_id})
        self.photos.remove(doomed)

    # -- encoder change -------------------------------------------------------------------------
    def reembed(self, *, delete_unrecoverable: bool = False, progress=None) -> dict[str, Any]:
        """Make again, with the current encoder, every embedding another encoder made.

        After an encoder change the service refuses to start on the old embeddings
        (they would be silently wrong). Each face is re-made from its stored photo,
        choosing the same face by its stored box; all of them are written in one
        transaction. A face that cannot be re-made (its photo was not kept, or the
        face is no longer found in it) stops the whole change unless
        ``delete_unrecoverable``, which removes those faces instead (their people
        stay, to be enrolled again).
        """
        current = self.pipeline.encoder.content_hash
        with self.sessions() as session:
            stale = session.execute(
                select(Face.id, Face.person_id, Face.box, Face.image_file).where(Face.encoder_hash != current)
            ).all()
        remade: dict[str, PreparedFace] = {}
        unrecoverable: list[dict[str, Any]] = []
        for face_id, person_id, box, image_file in progress(stale) if progress else stale:
            data = self.photos.read(image_file) if image_file else None
            if data is None:
                unrecoverable.append({"face_id": face_id, "person_id": person_id, "code": "photo_not_kept"})
                continue
            try:
                remade[face_id] = self.prepare(data, box)
            except FaceshotError as exc:
                unrecoverable.append({"face_id": face_id, "person_id": person_id, "code": exc.code})
        summary: dict[str, Any] = {"encoder": current, "stale": len(stale), "reembedded": 0, "deleted": 0,
                                   "unrecoverable": unrecoverable}
        if not stale or (unrecoverable and not delete_unrecoverable):
            return summary
        doomed: list[str] = []

        def work(session):
            for face_id, prepared in remade.items():
                face = session.get(Face, face_id)
                if face is not None:
                    face.embedding = np.asarray(prepared.embedding, dtype="<f4").tobytes()
                    face.encoder_hash, face.box, face.det_score = current, prepared.box, prepared.det_score
                    summary["reembedded"] += 1
            for item in unrecoverable:
                face = session.get(Face, item["face_id"])
                if face is not None:
                    if face.image_file:
                        doomed.append(face.image_file)
                    session.delete(face)
                    summary["deleted"] += 1
            self.photos.doom(session, doomed)

        self._write(work, touched={person_id for _, person_id, _, _ in stale})
        self.photos.remove(doomed)
        return summary

    # -- reads ---------------------------------------------------------------------------------
    @staticmethod
    def _get_person(session: Session, person_id: str) -> Person:
        person = session.get(Person, person_id, options=[selectinload(Person.faces)])
        if person is None:
            raise NotFound(f"No person with id {person_id}.", {"person_id": person_id})
        return person

    def get_person(self, person_id: str) -> Person:
        with self.sessions() as session:
            return self._get_person(session, person_id)

    def list_people(self, search: str | None, limit: int, offset: int) -> tuple[list[Person], int]:
        with self.sessions() as session:
            q = select(Person)
            if search:
                like = like_pattern(search)
                q = q.where(or_(func.lower(Person.name).like(like, escape="\\"),
                                func.lower(Person.external_id).like(like, escape="\\")))
            total = session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            people = session.execute(
                q.options(selectinload(Person.faces)).order_by(Person.name, Person.id).limit(limit).offset(offset)
            ).scalars().all()
            return list(people), int(total)

    def face_image(self, person_id: str, face_id: str) -> tuple[bytes, str]:
        with self.sessions() as session:
            face = session.get(Face, face_id)
            if face is None or face.person_id != person_id:
                raise NotFound(f"Person {person_id} has no face {face_id}.", {"face_id": face_id})
            if not face.image_file:
                raise NotFound("This face's photo was not kept (store_images is off).", {"face_id": face_id})
            name, media_type = face.image_file, face.image_type or "application/octet-stream"
        data = self.photos.read(name)
        if data is None:
            raise NotFound("This face's photo is missing from the data directory.", {"face_id": face_id})
        return data, media_type

    def counts(self) -> dict:
        with self.sessions() as session:
            people = session.execute(select(func.count()).select_from(Person)).scalar_one()
            faces = session.execute(select(func.count()).select_from(Face)).scalar_one()
        return {"people": int(people), "faces": int(faces), "indexed_people": len(self.gallery)}

    def readiness(self) -> dict[str, Any]:
        """What /ready reports: the database reachable (and still its file); whether photos can be stored now."""
        file_problem = self.db.file_problem()
        problems = {"database": file_problem} if file_problem else {}
        checks = {"model_loaded": True, "database": file_problem is None and self.db.reachable()}
        storage = self.photos.problem(min_free_bytes=self.settings.max_upload_bytes) if self.settings.store_images else None
        if storage:
            problems["storage"] = storage
        return {"checks": checks, "storage": {"writable": storage is None, "problem": storage}, "problems": problems}

    # -- recognition ---------------------------------------------------------------------------
    def _decide(self, matches: list[Match], override: float | None) -> tuple[Match | None, float | None]:
        if not matches:
            return None, None
        best = matches[0]
        threshold = self.threshold_for(best.n_support, override)
        return (best if best.distance <= threshold else None), threshold

    def identify(self, data: bytes, top_k: int = 3, threshold: float | None = None,
                 reveal_candidates: bool = True) -> dict[str, Any]:
        """Every face named or unknown. ``reveal_candidates=False`` (a recognition key, by default) keeps the
        distances of the nearest people but not who they are, unless the candidate is the face's match."""
        t0 = time.perf_counter()
        self.sync()
        image, faces = self.analyze(data)
        t_search = time.perf_counter()
        results = self.gallery.forward(np.stack([f.embedding for f in faces]), k=top_k) if faces else []
        observe_stages(search_s=time.perf_counter() - t_search)
        out = []
        for f, matches in zip(faces, results):
            person, used = self._decide(matches, threshold)
            best = matches[0] if matches else None
            out.append({
                **f.face.to_dict(),
                "quality": f.face.quality,
                "person": {"id": person.person_id, "name": person.name} if person else None,
                "distance": round(best.distance, 4) if best else None,
                "similarity": round(best.similarity, 4) if best else None,
                "threshold": round(used, 4) if used is not None else None,
                "candidates": [
                    {"person": {"id": m.person_id, "name": m.name}
                     if reveal_candidates or (person and m.person_id == person.person_id) else None,
                     "distance": round(m.distance, 4), "similarity": round(m.similarity, 4)}
                    for m in matches
                ],
            })
        return {"faces": out, "took_ms": round((time.perf_counter() - t0) * 1000, 1)}

    def verify(self, data: bytes, person_id: str, threshold: float | None = None) -> dict[str, Any]:
        self.sync(force=True)
        with self.sessions() as session:
            person = self._get_person(session, person_id)
            embs = [f.vector for f in person.faces if f.encoder_hash == self.pipeline.encoder.content_hash]
            name = person.name
        if not embs:
            raise NoFace("This person has no enrolled face to verify against.", {"person_id": person_id})
        _, faces = self.analyze(data)
        if not faces:
            raise NoFace("No face was found in the image.")
        face = faces[0]  # largest
        distance = float(np.linalg.norm(face.embedding - prototype(np.stack(embs))))
        used = self.threshold_for(len(embs), threshold)
        return {
            "match": distance <= used,
            "distance": round(distance, 4),
            "similarity": round(1 - distance**2 / 2, 4),
            "threshold": round(used, 4),
            "person": {"id": person_id, "name": name},
            "face": {**face.face.to_dict(), "quality": face.face.quality},
        }

    def detect(self, data: bytes) -> dict[str, Any]:
        t0 = time.perf_counter()
        image = self.decode(data)
        with self._infer_lock:
            faces = self.pipeline.detect(image)
        return {
            "faces": [{**f.to_dict(), "quality": f.quality} for f in faces],
            "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
            "took_ms": round((time.perf_counter() - t0) * 1000, 1),
        }
