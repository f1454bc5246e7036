"""The errors the face pipeline and the training raise, at the root of faceshot's one error hierarchy.

Each error carries a stable machine-readable ``code``; the HTTP layer maps
``status`` once, in one place, and the CLI prints ``code: message``. The
service's own refusals (auth, limits, conflicts, storage) extend it in ``app/core/errors.py``.
"""

from __future__ import annotations

from typing import Any


class FaceshotError(Exception):
    """Base of every error faceshot reports to a caller."""

    code = "error"
    status = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidImage(FaceshotError):
    """Bytes that are not a decodable image (empty, truncated, unknown format)."""

    code = "invalid_image"
    status = 400


class ImageTooLarge(FaceshotError):
    """An upload over the byte limit or an image over the pixel limit."""

    code = "image_too_large"
    status = 413


class NoFace(FaceshotError):
    code = "no_face"
    status = 422


class MultipleFaces(FaceshotError):
    """Enrollment photo with several faces and none clearly dominant; details carry the boxes."""

    code = "multiple_faces"
    status = 422


class FaceNotFoundInBox(FaceshotError):
    """A caller-chosen ``box`` that matches no detected face."""

    code = "no_face_in_box"
    status = 422







class CheckpointError(FaceshotError):
    """A checkpoint the service cannot use: unreadable, unknown metadata, wrong hash."""

    code = "bad_checkpoint"
    status = 500


class WeightsUnavailable(FaceshotError):
    """Pretrained weights that are neither cached nor downloadable here."""

    code = "weights_unavailable"
    status = 500





class CannotLink(FaceshotError):
    """A merge of two groups of faces that a person said are different people (:mod:`models.clustering`)."""

    code = "cannot_link"
    status = 409


class TrainingError(FaceshotError, ValueError):
    """Offline training, evaluation or export asked for what its data or settings cannot give:
    an unknown setting, too few classes for the episodes, a chip cache made for another template."""

    code = "training_error"
    status = 400
