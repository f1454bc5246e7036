"""What the service's verbs return: typed results, made JSON by the routes' response models (app/core/schemas.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PersonRef:
    id: str
    name: str


@dataclass
class FaceBox:
    """One detected face: where it is, how sure the detector was, and hints a person can act on."""

    box: list[float]
    landmarks: list[list[float]]
    det_score: float
    quality: dict[str, Any]

    @classmethod
    def of(cls, face) -> FaceBox:
        """From a :class:`models.detection.DetectedFace` (rounded as the API shows it)."""
        d = face.to_dict()
        return cls(box=d["box"], landmarks=d["landmarks"], det_score=d["det_score"], quality=face.quality)


@dataclass
class Candidate:
    person: PersonRef | None  # None: not shown to this caller (a recognition key, the candidate not the match)
    distance: float
    similarity: float
    match: bool = False  # the person the face is named as (at most one candidate a face)


@dataclass
class IdentifiedFace(FaceBox):
    person: PersonRef | None = None  # None: unknown
    distance: float | None = None
    similarity: float | None = None
    threshold: float | None = None
    stranger_accept_rate: float | None = None  # of the gallery, at the thresholds applied
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class OperatingPointInfo:
    """Which thresholds applied and what they stand for, at the gallery's current size."""

    source: str  # FACESHOT_TARGET_FAR, FACESHOT_THRESHOLD, request, encoder checkpoint
    target_far: float | None
    gallery_size: int
    thresholds: dict[str, float]  # by photos enrolled: "1", "2", "3" (3 or more)
    stranger_accept_rate: float | None  # None: the encoder carries no distributions to say it
    per_person_rate: float | None = None
    expected_recognition: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class IdentifyResult:
    faces: list[IdentifiedFace]
    took_ms: float
    encoder: dict[str, Any]
    operating_point: OperatingPointInfo | None = None


@dataclass
class VerifyResult:
    match: bool
    distance: float
    similarity: float
    threshold: float
    person: PersonRef
    face: FaceBox
    stranger_accept_rate: float | None = None  # a stranger's photo passing as this person (one comparison)


@dataclass
class CompareResult:
    match: bool
    distance: float
    similarity: float
    threshold: float
    threshold_source: str  # FACESHOT_TARGET_FAR (one comparison), FACESHOT_THRESHOLD, request, encoder checkpoint
    stranger_accept_rate: float | None  # a stranger's photo passing at this threshold (one comparison)
    face_a: FaceBox
    face_b: FaceBox | None  # None: b was an embedding
    encoder: dict[str, Any] = field(default_factory=dict)


@dataclass
class EmbeddedFaceResult(FaceBox):
    embedding: list[float] = field(default_factory=list)


@dataclass
class EmbedResult:
    faces: list[EmbeddedFaceResult]
    encoder: dict[str, Any]
    took_ms: float


@dataclass
class ImageSize:
    width: int
    height: int


@dataclass
class DetectResult:
    faces: list[FaceBox]
    image: ImageSize
    took_ms: float


@dataclass
class GalleryInfo:
    people: int
    faces: int
    indexed_people: int
    index_device: str


@dataclass
class ModelInfo:
    """The encoder and which threshold wins: the one place /model and the admin settings page read it from."""

    encoder: dict[str, Any]
    threshold: float
    threshold_by_support: dict[str, float] | None
    threshold_source: str  # "FACESHOT_THRESHOLD" or "encoder checkpoint"
    gallery: GalleryInfo
    store_images: bool
    operating_point: OperatingPointInfo | None = None
    encoder_choice: dict[str, Any] | None = None  # app/gallery/encoder_choice.py: the gallery's encoder and why
