"""Recognition: identify, verify, compare, embed and detect, a photo (or an embedding) in, a typed result out.

Every decision is the gallery's threshold policy (:mod:`app.gallery.thresholds`) applied to the index's nearest
prototypes; the face pipeline runs as a request runs it (:mod:`app.inference.runner`).
"""

from __future__ import annotations

import time

import numpy as np

from app.core.config import Settings
from app.core.observability import observe_stages
from app.core.tables import DEFAULT_COLLECTION
from app.gallery import queries
from app.gallery.embeddings import embedding_from_client
from app.gallery.encoder_choice import EncoderChoice
from app.gallery.index import Galleries, Match
from app.gallery.sync import GallerySync
from app.gallery.thresholds import Thresholds
from app.inference.runner import Inference
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
from models.encoders.encoder import Encoder
from models.errors import NoFace
from models.operating_point import OperatingPoint, one_to_one_rate
from models.prototypes import prototype


class Recognition:
    def __init__(self, settings: Settings, encoder: Encoder, inference: Inference, galleries: Galleries,
                 gallery_sync: GallerySync, thresholds: Thresholds, *, encoder_choice: EncoderChoice | None = None):
        self.settings, self.encoder, self.inference = settings, encoder, inference
        self.galleries, self.gallery_sync, self.thresholds = galleries, gallery_sync, thresholds
        self.encoder_choice = encoder_choice  # which encoder the gallery uses and why (None: a caller's pipeline)

    @property
    def sessions(self):
        return self.gallery_sync.sessions

    def embedding_from_client(self, value, encoder_hash: str | None, field: str = "embedding") -> np.ndarray:
        """A vector a client sent instead of a photo, accepted only from this encoder."""
        return embedding_from_client(self.encoder, value, encoder_hash, field)

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
        self.gallery_sync.sync()
        op = self.thresholds.operating_point(None, collection)
        info = self._operating_info(op)
        gallery = self.galleries.get(collection)
        with self.sessions() as session:
            people, faces = queries.counts(session, collection)
        return ModelInfo(
            encoder=self.encoder.describe(), threshold=round(op.threshold_for(1), 4),
            threshold_by_support=info.thresholds, threshold_source=info.source,
            gallery=GalleryInfo(people=people, faces=faces, indexed_people=len(gallery),
                                index_device=gallery.device),
            store_images=self.settings.store_images, operating_point=info,
            encoder_choice=self.encoder_choice.describe() if self.encoder_choice else None)

    @staticmethod
    def _decide(matches: list[Match], op: OperatingPoint) -> tuple[Match | None, float | None]:
        if not matches:
            return None, None
        best = matches[0]
        threshold = op.threshold_for(best.n_support, best.capture)
        return (best if best.distance <= threshold else None), threshold

    def identify(self, data: bytes | None, top_k: int = 3, threshold: float | None = None,
                 reveal_candidates: bool = True, embedding: np.ndarray | None = None,
                 collection: str = DEFAULT_COLLECTION, *, loosen: bool = True) -> IdentifyResult:
        """Every face named or unknown, largest first (or the one ``embedding`` a client sent instead of a photo).
        ``reveal_candidates=False`` (a recognition key, by default) keeps the distances of the nearest people but
        not who they are, unless the candidate is the face's match; ``loosen=False`` lets ``threshold`` only
        tighten the usual thresholds."""
        t0 = time.perf_counter()
        self.gallery_sync.sync()
        if embedding is not None:
            faces, vectors = [None], [embedding]
        else:
            _, faces = self.inference.analyze(data)
            vectors = [f.embedding for f in faces]
        t_search = time.perf_counter()
        results = self.galleries.get(collection).forward(np.stack(vectors), k=top_k) if faces else []
        observe_stages(search_s=time.perf_counter() - t_search)
        op = self.thresholds.operating_point(threshold, collection, loosen=loosen)
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
                              encoder=self.encoder.describe(), operating_point=info)

    def verify(self, data: bytes, person_id: str, threshold: float | None = None,
               box: list[float] | None = None, collection: str = DEFAULT_COLLECTION, *,
               loosen: bool = True) -> VerifyResult:
        """Is the photo's one face (the only or dominant one, or the one in ``box``) this person?"""
        self.gallery_sync.sync(force=True)
        with self.sessions() as session:
            person = queries.get_person(session, person_id=person_id, collection=collection)
            embs = [f.vector for f in person.faces if f.encoder_hash == self.encoder.content_hash]
            name = person.name
        if not embs:
            raise NoFace("This person has no enrolled face to verify against.", {"person_id": person_id})
        _, face = self.inference.one_face(data, box)
        distance = float(np.linalg.norm(face.embedding - prototype(np.stack(embs))))
        # as identify holds this person now
        entry = self.galleries.get(collection).entry(person_id)
        capture = entry.capture if entry is not None else None
        used = self.thresholds.threshold_for(len(embs), threshold, collection, loosen=loosen, capture=capture)
        rate = one_to_one_rate(self.encoder.calibration, len(embs), used, capture)
        return VerifyResult(match=distance <= used, distance=round(distance, 4),
                            similarity=round(1 - distance**2 / 2, 4), threshold=round(used, 4),
                            person=PersonRef(person_id, name), face=FaceBox.of(face.face),
                            stranger_accept_rate=None if rate is None else round(rate, 8))

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
        used, source = self.thresholds.one_to_one(threshold)  # the rule `faceshot compare` decides by too
        rate = one_to_one_rate(self.encoder.calibration, 1, used)
        return CompareResult(match=distance <= used, distance=round(distance, 4),
                             similarity=round(1 - distance**2 / 2, 4), threshold=round(float(used), 4),
                             threshold_source=source, stranger_accept_rate=None if rate is None else round(rate, 8),
                             face_a=FaceBox.of(face_a.face), face_b=FaceBox.of(face_b.face) if face_b else None,
                             encoder=self.encoder.describe())

    def one_face(self, data: bytes, box: list[float] | None = None) -> tuple[FaceBox, np.ndarray]:
        """The photo's one face (the rule of every operation about one face) and its embedding."""
        _, face = self.inference.one_face(data, box)
        return FaceBox.of(face.face), face.embedding

    def compare_each(self, data: bytes, reference: np.ndarray) -> list[CompareResult]:
        """Every face of a photo (largest first) against one reference embedding: each pair one comparison, held to
        the threshold :meth:`compare` holds a pair to (``face_b`` is None: the reference is an embedding)."""
        _, faces = self.inference.analyze(data)
        used, source = self.thresholds.one_to_one()
        rate = one_to_one_rate(self.encoder.calibration, 1, used)
        out = []
        for f in faces:
            distance = float(np.linalg.norm(f.embedding - reference))
            out.append(CompareResult(match=distance <= used, distance=round(distance, 4),
                                     similarity=round(1 - distance**2 / 2, 4), threshold=round(float(used), 4),
                                     threshold_source=source,
                                     stranger_accept_rate=None if rate is None else round(rate, 8),
                                     face_a=FaceBox.of(f.face), face_b=None, encoder=self.encoder.describe()))
        return out

    def embed(self, data: bytes) -> EmbedResult:
        """Every face's embedding, with the encoder that made them (its hash comes back with each use)."""
        t0 = time.perf_counter()
        _, faces = self.inference.analyze(data)
        return EmbedResult(faces=[EmbeddedFaceResult(**vars(FaceBox.of(f.face)),
                                                     embedding=[round(float(v), 7) for v in f.embedding])
                                  for f in faces],
                           encoder=self.encoder.describe(),
                           took_ms=round((time.perf_counter() - t0) * 1000, 1))

    def detect(self, data: bytes) -> DetectResult:
        """Faces, landmarks and quality hints; no identification."""
        t0 = time.perf_counter()
        (width, height), faces = self.inference.detect(data)
        return DetectResult(faces=[FaceBox.of(f) for f in faces], image=ImageSize(width=int(width), height=int(height)),
                            took_ms=round((time.perf_counter() - t0) * 1000, 1))
