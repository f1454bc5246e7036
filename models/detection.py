"""Find faces: MTCNN boxes, detection scores and five landmarks.

Large photos are downscaled before detection (MTCNN's cost grows with pixels,
its accuracy does not) and tiny ones upscaled; boxes and landmarks are mapped
back to the original pixel grid, where alignment then samples at full
resolution.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from models.device import pick_device

# MTCNN landmark order: left eye, right eye, nose tip, left mouth corner, right mouth corner
# ("left" as seen in the image).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class DetectedFace:
    box: np.ndarray  # (4,) float: x1, y1, x2, y2 in original image pixels
    score: float
    landmarks: np.ndarray  # (5, 2) float: x, y in original image pixels
    quality: dict = field(default_factory=dict)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "det_score": round(float(self.score), 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
        }


def _opencv_area_resize(img: torch.Tensor, size) -> torch.Tensor:
    """facenet-pytorch's ``imresample`` (torch "area" interpolation) done by OpenCV's INTER_AREA for one CPU image.

    MTCNN resizes the photo for every pyramid level and every candidate crop (24x24, 48x48): ~80 small calls a
    photo, where torch's adaptive pooling costs ~0.1 ms each. OpenCV is ~15-18 % faster over a whole detection
    (bench: 22.7 -> 19.4 ms at 250x250, 138 -> 114 ms at 1280x960). Its area filter weighs pixel fractions
    instead of pooling whole pixels, so landmarks move (median 1.5 % of the face's width): shown on lfw-dev not to
    lower open-set accuracy before it became the default (see the detector's ``pyramid_resize``).
    """
    if img.device.type != "cpu" or img.shape[0] != 1:
        return _torch_area_resize(img, size)
    hwc = np.ascontiguousarray(img[0].permute(1, 2, 0).numpy())
    out = cv2.resize(hwc, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).unsqueeze(0)


def _torch_area_resize(img: torch.Tensor, size) -> torch.Tensor:
    return torch.nn.functional.interpolate(img, size=size, mode="area")


class FaceDetector:
    """facenet-pytorch's MTCNN behind a small, typed interface."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        *,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        max_side: int = 1024,
        min_side: int = 112,
        min_score: float = 0.9,
        pyramid_resize: str = "opencv",
    ):
        from facenet_pytorch import MTCNN  # MTCNN's weights ship inside the wheel

        self.device = pick_device(device)
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.min_side = min_side
        self.min_score = min_score
        if pyramid_resize not in ("opencv", "torch"):
            raise ValueError(f"pyramid_resize is 'opencv' or 'torch', not {pyramid_resize!r}")
        self.pyramid_resize = pyramid_resize
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=min_face_size,
            thresholds=list(thresholds),
            device=self.device,
            select_largest=False,
        )
        self._mtcnn.eval()
        self._detect_face = _detect_face_with(self._mtcnn, self.pyramid_resize)
        if self.device.type == "cpu":
            # MTCNN's max-pools and small convolutions run ~1.5x faster on the channels-last layout on a CPU
            # (43 -> 29 ms for a 250x250 photo, one thread); landmarks move by < 1e-4 px
            for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
                net.to(memory_format=torch.channels_last)

    def cache_parts(self) -> list:
        """What decides this detector's boxes and landmarks (evaluation caches are keyed by it)."""
        parts = [self.min_face_size, self.max_side, self.min_side, self.min_score]
        return parts + [self.pyramid_resize] if self.pyramid_resize != "torch" else parts  # (old caches hold)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Every face in ``image`` (H, W, 3 uint8 RGB), largest first."""
        h, w = image.shape[:2]
        longest, shortest = max(h, w), min(h, w)
        # Upscale small photos, downscale big ones, never past max_side on the long edge
        # (a 1x40,000,000 strip must not become a 112x4.5e9 one).
        scale = min(self.max_side / longest, max(1.0, self.min_side / shortest))
        if shortest * scale < self.min_face_size:
            return []  # a sliver no face fits in; MTCNN's image pyramid would be empty
        work = image
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            work = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        with torch.inference_mode():
            boxes, points = self._detect_face(work)
        if not len(boxes):
            return []
        boxes, probs = boxes[:, :4], boxes[:, 4]
        faces = []
        for box, prob, pts in zip(boxes, probs, points):
            if prob is None or prob < self.min_score:
                continue
            box = np.asarray(box, dtype=np.float64) / scale
            box[[0, 2]] = box[[0, 2]].clip(0, w)
            box[[1, 3]] = box[[1, 3]].clip(0, h)
            faces.append(DetectedFace(box=box, score=float(prob), landmarks=np.asarray(pts, dtype=np.float64) / scale))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


def quality_hints(image: np.ndarray, face: DetectedFace) -> dict:
    """Cheap signals a person can act on before saving an enrollment photo (the service runs it as one of its face
    checks, app/recognition/face_checks.py; ``faceshot embed`` prints it)."""
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    crop = image[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
    side = min(face.width, face.height)
    sharpness = 0.0
    if crop.size:
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        # Normalise to a fixed size so the blur measure does not depend on resolution.
        grey = cv2.resize(grey, (112, 112), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    eye_dist = float(np.linalg.norm(right_eye - left_eye))
    hints = {
        "face_size": round(side, 1),
        "sharpness": round(sharpness, 1),
        "eye_distance": round(eye_dist, 1),
        "too_small": side < 60,
        "blurry": sharpness < 60.0,
        "low_confidence": face.score < 0.97,
    }
    return hints



def _detect_face_with(mtcnn, pyramid_resize: str):
    """facenet-pytorch's ``detect_face`` with our resize: one photo in, its (N, 5) boxes+scores and (N, 5, 2)
    landmarks out, as ``MTCNN.detect`` computes them. The library has no hook for the resize it calls ~80 times a
    photo, so this is its own function bound to a copy of its module's globals with ``imresample`` replaced: the
    library itself, and any other detector in the process, are left as they are."""
    import facenet_pytorch.models.utils.detect_face as library

    resize = _opencv_area_resize if pyramid_resize == "opencv" else _torch_area_resize
    detect_face = types.FunctionType(library.detect_face.__code__, {**vars(library), "imresample": resize},
                                     "detect_face", library.detect_face.__defaults__)

    def run(image: np.ndarray):
        batch_boxes, batch_points = detect_face(image, mtcnn.min_face_size, mtcnn.pnet, mtcnn.rnet, mtcnn.onet,
                                                mtcnn.thresholds, mtcnn.factor, mtcnn.device)
        return np.asarray(batch_boxes[0]).reshape(-1, 5), np.asarray(batch_points[0]).reshape(-1, 5, 2)

    return run
