"""Checks of each detected face on the recognition path, behind one small interface (quality hints today; a
liveness check next): what each finds joins the face's ``quality`` in every answer (identify, detect, enroll's
warnings, the events' faces).

A new check is one new module implementing :class:`FaceCheck` and one line in :data:`FACE_CHECKS`; the face
pipeline runs them after detection (:mod:`app.inference.runner`), for requests and camera frames alike.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.detection import DetectedFace, quality_hints


class FaceCheck(Protocol):
    def __call__(self, image: np.ndarray, face: DetectedFace) -> dict:
        """What this check finds of ``face`` in ``image``: keys added to the face's ``quality``."""


class QualityHints:
    """Signals a person can act on before saving an enrollment photo: too small, blurry, an unsure detection."""

    def __call__(self, image: np.ndarray, face: DetectedFace) -> dict:
        return quality_hints(image, face)


FACE_CHECKS: tuple[FaceCheck, ...] = (QualityHints(),)
