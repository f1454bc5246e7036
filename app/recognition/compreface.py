"""CompreFace's recognition, detection and verification services, answered by faceshot's people and recognition.

A CompreFace "recognition service" is a faceshot collection (the one the API key works in); a subject is a name
(case aside, as CompreFace compares them), its people are faceshot's people of that name; an example is one of
their faces, and its ``image_id`` is the face's id. Adding an example runs enrollment's checks: one face a photo
(or 400 with CompreFace's code 31), a new subject is enrolled (a person of the same name whose face the photo shows
gets the photo instead, never a second entry), an existing one gets the face; enrollment's warnings come back as
``warnings``. Every similarity is faceshot's decision as CompreFace's clients read it
(:mod:`app.recognition.compreface_similarity`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.access.audit import Actor
from app.core.errors import Conflict, NotFound, PersonExists
from app.core.inputs import clean_name
from app.gallery import queries
from app.gallery.people import People
from app.recognition.compreface_similarity import REFUSE_CEILING, similarity
from app.recognition.results import FaceBox
from app.recognition.service import Recognition
from models.errors import NoFace
from models.prototypes import prototype


class SubjectNotFound(NotFound):
    code = "subject_not_found"


class ExampleNotFound(NotFound):
    code = "example_not_found"


class SubjectExists(Conflict):
    code = "subject_exists"


# -- CompreFace's JSON shapes (fields that are None are left out, as CompreFace leaves them out) -----------------
@dataclass
class CompreFaceBox:
    probability: float
    x_max: int
    y_max: int
    x_min: int
    y_min: int


@dataclass
class CompreFaceSubjectSimilarity:
    subject: str
    similarity: float


@dataclass
class CompreFaceDetectedFace:
    box: CompreFaceBox
    landmarks: list[list[int]]
    execution_time: dict[str, float] | None = None


@dataclass
class CompreFaceRecognizedFace(CompreFaceDetectedFace):
    subjects: list[CompreFaceSubjectSimilarity] = field(default_factory=list)


@dataclass
class CompreFaceVerifiedFace(CompreFaceDetectedFace):
    subject: str | None = None
    similarity: float = 0.0


@dataclass
class CompreFaceFaceMatch(CompreFaceDetectedFace):
    similarity: float = 0.0


@dataclass
class CompreFaceDetectOut:
    result: list[CompreFaceDetectedFace]
    plugins_versions: dict[str, str] | None = None


@dataclass
class CompreFaceRecognizeOut:
    result: list[CompreFaceRecognizedFace]
    plugins_versions: dict[str, str] | None = None


@dataclass
class CompreFaceVerifyExampleOut:
    result: list[CompreFaceVerifiedFace]
    plugins_versions: dict[str, str] | None = None


@dataclass
class CompreFaceVerification:
    source_image_face: CompreFaceDetectedFace
    face_matches: list[CompreFaceFaceMatch]
    plugins_versions: dict[str, str] | None = None


@dataclass
class CompreFaceVerificationOut:
    result: list[CompreFaceVerification]


@dataclass
class CompreFaceExample:
    image_id: str
    subject: str
    warnings: list[dict[str, Any]] | None = None  # enrollment's warnings (faceshot's), when there are any


@dataclass
class CompreFaceExamplesPage:
    faces: list[CompreFaceExample]
    page_number: int
    page_size: int
    total_pages: int
    total_elements: int


@dataclass
class Options:
    """A request's CompreFace parameters: faces at most (0: all, largest first), the detector's least
    probability, and whether to add timings and versions (``status``)."""

    limit: int = 0
    det_prob_threshold: float | None = None
    status: bool = False


def _box(face: FaceBox) -> CompreFaceBox:
    x1, y1, x2, y2 = face.box
    return CompreFaceBox(probability=round(float(face.det_score), 5), x_max=round(x2), y_max=round(y2),
               x_min=max(0, round(x1)), y_min=max(0, round(y1)))


def _landmarks(face: FaceBox) -> list[list[int]]:
    return [[round(x), round(y)] for x, y in face.landmarks]


def _kept(faces: list, options: Options, box_of=lambda f: f) -> list:
    """The faces a request asked for: the detector sure enough (``det_prob_threshold``), at most ``limit``; none
    left is CompreFace's 400 (code 28), as a photo without a face is there."""
    if options.det_prob_threshold is not None:
        faces = [f for f in faces if box_of(f).det_score >= options.det_prob_threshold]
    if options.limit:
        faces = faces[:options.limit]
    if not faces:
        raise NoFace("No face is found in the given image", {})
    return faces


class CompreFace:
    def __init__(self, people: People, recognition: Recognition):
        self.people, self.recognition = people, recognition

    def _sessions(self):
        return self.people.sessions()

    def _status(self, options: Options, t0: float) -> dict[str, float] | None:
        return {"total": round((time.perf_counter() - t0) * 1000, 1)} if options.status else None

    def _versions(self, options: Options) -> dict[str, str] | None:
        if not options.status:
            return None
        return {"detector": "faceshot.MTCNN", "calculator": f"faceshot.{self.recognition.encoder.metadata.name}"}

    def _named(self, subject: str, collection: str) -> list:
        with self._sessions() as session:
            named = queries.people_named(session, name=subject, collection=collection)
        if not named:
            raise SubjectNotFound(f"Subject {subject} not found", {"subject": subject})
        return named

    # -- subjects ---------------------------------------------------------------------------------------------
    def subjects(self, collection: str) -> list[str]:
        with self._sessions() as session:
            return queries.person_names(session, collection=collection)

    def add_subject(self, subject: str, collection: str, actor: Actor) -> str:
        """A subject without examples yet: a person without faces."""
        subject = clean_name(subject, "subject")
        with self._sessions() as session:
            if queries.people_named(session, name=subject, collection=collection):
                raise SubjectExists("Subject already exists", {"subject": subject})
        return self.people.create_person(subject, collection=collection, actor=actor).name

    def rename_subject(self, subject: str, new_name: str, collection: str, actor: Actor) -> bool:
        """Every person of the subject renamed. Onto a subject that exists, the two become one subject (answered
        by its one name), as CompreFace merges them; faceshot keeps each person's own prototype."""
        named = self._named(subject, collection)
        new_name = clean_name(new_name, "subject")
        if new_name == subject:
            return False
        for person in named:
            self.people.update_person(person.id, new_name, None, None, {"name"}, collection, actor)
        return True

    def delete_subject(self, subject: str, collection: str, actor: Actor) -> str:
        for person in self._named(subject, collection):
            self.people.delete_person(person.id, collection, actor)
        return subject

    def delete_all_subjects(self, collection: str, actor: Actor) -> int:
        """Every person of the collection, with their faces; how many subjects (names) that was."""
        names, _ = self._delete_everyone(collection, actor)
        return names

    def _delete_everyone(self, collection: str, actor: Actor) -> tuple[int, int]:
        names, faces = set(), 0
        while True:
            people, _ = self.people.list_people(None, 500, 0, collection)
            if not people:
                return len(names), faces
            for person in people:
                names.add(person.name.casefold())
                faces += len(person.faces)
                self.people.delete_person(person.id, collection, actor)

    # -- examples ---------------------------------------------------------------------------------------------
    def add_example(self, subject: str, data: bytes, det_prob_threshold: float | None, collection: str,
                    actor: Actor) -> CompreFaceExample:
        """The photo's one face as an example of ``subject``: a new person for a new subject, else a face of the
        subject's person (of the nearest, when the subject has several)."""
        subject = clean_name(subject, "subject")
        prepared = self.people.prepare(data)
        if det_prob_threshold is not None and prepared.det_score < det_prob_threshold:
            raise NoFace("No face is found in the given image", {"det_score": round(prepared.det_score, 5)})
        with self._sessions() as session:
            named = queries.people_named(session, name=subject, collection=collection)
            support = {p.id: [f.vector for f in p.faces] for p in named}
        if not named:
            try:
                result = self.people.enroll(subject, [prepared], collection=collection, actor=actor)
            except PersonExists as exc:  # enrolled meanwhile, with this face: the photo is theirs
                result = self.people.add_faces(exc.details["person_id"], [prepared], collection, actor)
        else:
            nearest = min(named, key=lambda p: float(np.linalg.norm(prepared.embedding - prototype(
                np.stack(support[p.id])))) if support[p.id] else math.inf)
            result = self.people.add_faces(nearest.id, [prepared], collection, actor)
        return CompreFaceExample(image_id=result.faces[0].id, subject=subject, warnings=result.warnings or None)

    def examples(self, subject: str | None, page: int, size: int, collection: str) -> CompreFaceExamplesPage:
        with self._sessions() as session:
            ids = None
            if subject is not None:
                ids = [p.id for p in queries.people_named(session, name=subject, collection=collection)]
            faces, total = ([], 0) if ids == [] else queries.faces_page(
                session, collection=collection, person_ids=ids, limit=size, offset=page * size)
            items = [CompreFaceExample(image_id=f.id, subject=f.person.name) for f in faces]
        return CompreFaceExamplesPage(faces=items, page_number=page, page_size=size,
                                      total_pages=math.ceil(total / size), total_elements=total)

    def delete_examples(self, subject: str | None, collection: str, actor: Actor) -> int:
        """The subject with all its examples (CompreFace removes the subject too), or every subject of the
        collection when none is named; how many examples went."""
        if subject is None:
            return self._delete_everyone(collection, actor)[1]
        with self._sessions() as session:
            named = queries.people_named(session, name=subject, collection=collection)
            counted = [(p.id, len(p.faces)) for p in named]
        for person_id, _ in counted:
            self.people.delete_person(person_id, collection, actor)
        return sum(n for _, n in counted)

    def _example(self, image_id: str, collection: str):
        try:
            with self._sessions() as session:
                face = queries.face_in_collection(session, face_id=image_id, collection=collection)
                return face.person_id, face.person.name, face.vector
        except NotFound:
            raise ExampleNotFound(f"Image {image_id} not found", {"image_id": image_id}) from None

    def delete_example(self, image_id: str, collection: str, actor: Actor) -> CompreFaceExample:
        person_id, name, _ = self._example(image_id, collection)
        self.people.delete_face(person_id, image_id, collection, actor)
        return CompreFaceExample(image_id=image_id, subject=name)

    def delete_examples_by_id(self, image_ids: list[str], collection: str, actor: Actor) -> list[CompreFaceExample]:
        """Each example that exists (the others are passed over, as CompreFace passes them over)."""
        deleted = []
        for image_id in image_ids:
            try:
                deleted.append(self.delete_example(image_id, collection, actor))
            except NotFound:
                continue
        return deleted

    def example_image(self, image_id: str, collection: str) -> tuple[bytes, str]:
        """The example's stored photo; empty bytes when there is none (CompreFace answers so, not 404)."""
        try:
            person_id, _, _ = self._example(image_id, collection)
            return self.people.face_image(person_id, image_id, collection)
        except NotFound:
            return b"", "application/octet-stream"

    # -- recognition, detection, verification ---------------------------------------------------------------------
    def recognize(self, data: bytes, options: Options, prediction_count: int, collection: str, *,
                  reveal_candidates: bool, admin: bool) -> CompreFaceRecognizeOut:
        """Every face (largest first) with up to ``prediction_count`` subjects, nearest first; only the face's
        match (faceshot's decision) is similar enough to pass CompreFace's and Double Take's default thresholds."""
        t0 = time.perf_counter()
        found = self.recognition.identify(data, top_k=prediction_count, reveal_candidates=reveal_candidates,
                                          collection=collection, loosen=admin)
        out = []
        for face in _kept(found.faces, options):
            subjects, ceiling = [], 1.0
            for i, c in enumerate(face.candidates):
                if c.person is None:  # not shown to this key
                    continue
                value = similarity(c.distance, face.threshold, accepted=i == 0 and face.person is not None)
                ceiling = min(ceiling, value, 1.0 if i == 0 else REFUSE_CEILING)
                subjects.append(CompreFaceSubjectSimilarity(subject=c.person.name, similarity=ceiling))
            out.append(CompreFaceRecognizedFace(box=_box(face), landmarks=_landmarks(face), subjects=subjects,
                                      execution_time=self._status(options, t0)))
        return CompreFaceRecognizeOut(result=out, plugins_versions=self._versions(options))

    def detect(self, data: bytes, options: Options) -> CompreFaceDetectOut:
        t0 = time.perf_counter()
        faces = _kept(self.recognition.detect(data).faces, options)
        return CompreFaceDetectOut(result=[CompreFaceDetectedFace(box=_box(f), landmarks=_landmarks(f),
                                              execution_time=self._status(options, t0)) for f in faces],
                         plugins_versions=self._versions(options))

    def verify_example(self, image_id: str, data: bytes, options: Options,
                       collection: str) -> CompreFaceVerifyExampleOut:
        """Every face of the photo against one example: each pair one comparison, held to faceshot's one-to-one
        threshold."""
        t0 = time.perf_counter()
        _, name, vector = self._example(image_id, collection)
        compared = _kept(self.recognition.compare_each(data, vector), options, lambda c: c.face_a)
        return CompreFaceVerifyExampleOut(
            result=[CompreFaceVerifiedFace(box=_box(c.face_a), landmarks=_landmarks(c.face_a), subject=name,
                                 similarity=similarity(c.distance, c.threshold, accepted=c.match),
                                 execution_time=self._status(options, t0)) for c in compared],
            plugins_versions=self._versions(options))

    def verify(self, source: bytes, target: bytes, options: Options) -> CompreFaceVerificationOut:
        """The source photo's one face against every face of the target photo (largest first)."""
        t0 = time.perf_counter()
        face, embedding = self.recognition.one_face(source)
        if options.det_prob_threshold is not None and face.det_score < options.det_prob_threshold:
            raise NoFace("No face is found in the given image", {"image": "source_image"})
        compared = _kept(self.recognition.compare_each(target, embedding), options, lambda c: c.face_a)
        matches = [CompreFaceFaceMatch(box=_box(c.face_a), landmarks=_landmarks(c.face_a),
                             similarity=similarity(c.distance, c.threshold, accepted=c.match),
                             execution_time=self._status(options, t0)) for c in compared]
        return CompreFaceVerificationOut(result=[CompreFaceVerification(
            source_image_face=CompreFaceDetectedFace(box=_box(face), landmarks=_landmarks(face),
                                           execution_time=self._status(options, t0)),
            face_matches=matches, plugins_versions=self._versions(options))])
