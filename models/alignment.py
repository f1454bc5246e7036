"""Warp each face onto its encoder's alignment template.

An encoder is trained on faces cropped a particular way; the template (five
landmark positions, in pixels of the encoder's square input) says how. A
similarity transform (rotation, uniform scale, translation) from the detected
landmarks to the template is fitted by least squares and the face is warped
with it, so faces of any size, position and roll reach the encoder alike.
"""

from __future__ import annotations

import cv2
import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) mapping ``src`` (N,2) onto ``dst`` (N,2); a 2x3 matrix.

    Written out because OpenCV's estimateAffinePartial2D only offers robust
    (RANSAC/LMedS) fits, which are neither deterministic nor needed for five
    clean points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sigma * np.diag(sign)).sum() / var_s if var_s > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 chip; pixels outside the photo are black, as in dlib."""
    matrix = similarity_transform(landmarks, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    src = image
    if scale < 0.5:
        # Shrinking a lot with bilinear sampling aliases; pre-shrink with area averaging.
        factor = scale * 2.0
        h, w = image.shape[:2]
        src = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        fx, fy = src.shape[1] / w, src.shape[0] / h
        matrix = matrix @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
    return cv2.warpAffine(
        src, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )


def align_faces(image: np.ndarray, landmarks: list[np.ndarray], template: np.ndarray, size: int) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 chips, one per landmark set."""
    if not landmarks:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack([align_face(image, pts, template, size) for pts in landmarks])
