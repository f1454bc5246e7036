"""How a detected face becomes an encoder's input chip: warped onto its template, or cut from the detector's box.

Networks are trained on faces cropped one particular way. dlib's ResNet (and our own
fine-tuned checkpoints) expect the five landmarks on a template; FaceNet and HSE's faceres
were trained on MTCNN boxes grown by a margin and stretched to a square input. The
checkpoint's ``crop`` says which (``models.encoders.checkpoint.EncoderMetadata``).
"""

from __future__ import annotations

import cv2
import numpy as np

from models.alignment import align_faces


def box_chip(image: np.ndarray, box: np.ndarray, margin: float, size: int) -> np.ndarray:
    """The box grown by ``margin`` pixels a side (clipped to the photo), stretched to ``size`` x ``size``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1 = int(max(np.floor(x1 - margin), 0)), int(max(np.floor(y1 - margin), 0))
    x2, y2 = int(min(np.ceil(x2 + margin), w)), int(min(np.ceil(y2 + margin), h))
    crop = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    if crop.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def face_chips(image: np.ndarray, faces, crop: dict, template: np.ndarray, size: int) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 RGB chips of ``faces`` (``DetectedFace``s) by the ``crop`` rule."""
    if crop.get("kind", "template") == "template":
        return align_faces(image, [f.landmarks for f in faces], template, size)
    if not faces:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([box_chip(image, f.box, float(crop.get("margin", 0)), size) for f in faces])
