"""Photo -> faces -> one L2-normalised embedding per face.

The single function everything in faceshot stands on: the service's enroll
and identify, the CLI's embed/compare, evaluation and training data
preparation all call :class:`FacePipeline`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.boxes import iou
from models.detection import DetectedFace, FaceDetector
from models.encoders.encoder import Encoder
from models.errors import FaceNotFoundInBox, MultipleFaces, NoFace
from models.imageio import load_image


@dataclass
class EmbeddedFace:
    face: DetectedFace
    embedding: np.ndarray  # (D,) float32, unit length

    def to_dict(self, with_embedding: bool = False) -> dict:
        out = self.face.to_dict()
        out["quality"] = self.face.quality
        if with_embedding:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        return out


@dataclass
class Timings:
    detect_ms: float = 0.0
    align_ms: float = 0.0
    embed_ms: float = 0.0
    extra: dict = field(default_factory=dict)


class FacePipeline:
    """Detection (MTCNN), alignment to the encoder's template, embedding."""

    def __init__(self, encoder: Encoder, detector: FaceDetector | None = None):
        self.encoder = encoder
        self.detector = detector or FaceDetector(encoder.device)

    @classmethod
    def from_spec(cls, encoder: str | None = None, device: str | None = None, *, fp16: bool = False,
                  sources=None) -> FacePipeline:
        """``sources``: a :class:`models.encoders.spec.WeightSources` (default: the package's dlib,
        ~/.cache/faceshot)."""
        from models.encoders.sources import load_encoder

        return cls(load_encoder(encoder, device, fp16=fp16, sources=sources))

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detector.detect(image)

    def cache_key(self) -> str:
        """Changes whenever an embedding of the same photo could change."""
        d = self.detector
        m = self.encoder.metadata
        parts = [self.encoder.content_hash, m.alignment_template, self.encoder.input_size, m.flip_average,
                 *d.cache_parts()]
        if m.crop != {"kind": "template"} or m.channel_order != "rgb":  # (the default adds nothing: old caches hold)
            parts += [m.crop, m.channel_order]
        raw = json.dumps(parts)
        return f"{self.encoder.content_hash}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"

    def align(self, image: np.ndarray, faces: list[DetectedFace]):
        """The encoder's input chips (template warp or box crop, as its checkpoint says; one set per member of an
        ensemble)."""
        return self.encoder.chips(image, faces)

    def embed_faces(self, image: np.ndarray, faces: list[DetectedFace],
                    timings: Timings | None = None, embed=None) -> list[EmbeddedFace]:
        """``embed``: what turns chips into embeddings (default the encoder's; the service may batch requests)."""
        t0 = time.perf_counter()
        chips = self.align(image, faces)
        t1 = time.perf_counter()
        vectors = (embed or self.encoder.embed)(chips)
        t2 = time.perf_counter()
        if timings is not None:
            timings.align_ms += (t1 - t0) * 1000
            timings.embed_ms += (t2 - t1) * 1000
        return [EmbeddedFace(f, v) for f, v in zip(faces, vectors)]

    def analyze(self, image: np.ndarray, timings: Timings | None = None) -> list[EmbeddedFace]:
        """Every face in the photo, largest first, each with its embedding."""
        t0 = time.perf_counter()
        faces = self.detect(image)
        if timings is not None:
            timings.detect_ms += (time.perf_counter() - t0) * 1000
        return self.embed_faces(image, faces, timings)

    def analyze_file(self, path: str | Path, **limits) -> list[EmbeddedFace]:
        return self.analyze(load_image(path, **limits))


def centre_weighted_face(faces: list[DetectedFace], image_shape: tuple[int, ...],
                         centre_weight: float = 2.0) -> DetectedFace:
    """The face a *dataset* photo is of: large and near the centre (facenet-pytorch's rule).

    For labelled datasets (LFW, CelebA) read in bulk by evaluation and training, where no one
    can say which face: largest-only selection picks a bystander's face in a few percent of
    news photos; penalising distance from the centre fixes most of those. What a user sends
    goes through :func:`select_one_face` instead, which refuses rather than guesses.
    """
    if not faces:
        raise NoFace("No face was found in the image.")
    h, w = image_shape[:2]
    centre = np.array([w / 2, h / 2])

    def score(f: DetectedFace) -> float:
        offset = (f.box[:2] + f.box[2:]) / 2 - centre
        return f.area - centre_weight * float(offset @ offset)

    return max(faces, key=score)


def parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    """A face's box as people write it, "x1,y1,x2,y2" (or a JSON list), in the photo's pixels; None when empty.

    One reading for the API's ``box`` fields and the CLI's ``--box-a/--box-b``; ValueError when it is not four
    finite numbers with x2 > x1 and y2 > y1.
    """
    if text is None or text.strip() == "":
        return None
    try:
        values = tuple(float(v) for v in text.strip("[] ").split(","))
    except ValueError:
        values = ()
    if (len(values) != 4 or not all(np.isfinite(v) for v in values)
            or values[2] <= values[0] or values[3] <= values[1]):
        raise ValueError("box must be four finite numbers x1,y1,x2,y2 with x2 > x1 and y2 > y1.")
    return values  # type: ignore[return-value]


def select_one_face(
    faces: list[DetectedFace],
    box: tuple[float, float, float, float] | None = None,
    *,
    dominance: float = 2.0,
) -> DetectedFace:
    """The one face a photo is meant to show, or a typed refusal: the rule of every operation about one face.

    Enroll, add photos, verify and compare use it (the API, the admin page and the CLI alike);
    operations about every face (identify, detect, embed) answer for each face instead, and for
    a photo without one with an empty list.

    With ``box`` the face overlapping it most is taken (IoU >= 0.3). Otherwise
    a lone face is taken, or the largest when its area is at least
    ``dominance`` times the next one; anything else is ambiguous and refused
    with every box so the caller can choose.
    """
    if not faces:
        raise NoFace("No face was found in the image.")
    if box is not None:
        best = max(faces, key=lambda f: iou(f.box, np.asarray(box, dtype=np.float64)))
        if iou(best.box, np.asarray(box, dtype=np.float64)) < 0.3:
            raise FaceNotFoundInBox(
                "No detected face matches the given box.",
                {"box": list(box), "faces": [f.to_dict() for f in faces]},
            )
        return best
    ordered = sorted(faces, key=lambda f: f.area, reverse=True)
    if len(ordered) == 1 or ordered[0].area >= dominance * ordered[1].area:
        return ordered[0]
    raise MultipleFaces(
        f"The image holds {len(faces)} faces of similar size; say which one with `box`.",
        {"faces": [f.to_dict() for f in ordered]},
    )
