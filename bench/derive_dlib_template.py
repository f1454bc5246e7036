"""Derive where MTCNN's five landmarks land in dlib's own 150x150 face chip.

dlib aligns with its 5-point shape predictor (eye corners and nose base) and
``get_face_chip_details(shape, 150, padding=0.25)``; MTCNN gives other points
(eye centres, nose tip, mouth corners). To feed the ported network chips like
the ones it was trained on, we map each photo's MTCNN points into dlib's chip
frame and average them: that is the alignment template stored in the default
checkpoint's metadata. Needs ``dlib-bin`` (the test extra); run it once:

    .venv/bin/python bench/derive_dlib_template.py --data ../shared/data/lfw-dev --n 1500
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import dlib
import numpy as np

from models.detection import FaceDetector
from models.encoders.dlib_resnet_assets import dlib_model_path
from models.imageio import load_image


def chip_to_image_affine(image_shape, chip_details) -> np.ndarray:
    """Fit the 2x3 affine that maps chip pixel (x, y, 1) to image coordinates."""
    h, w = image_shape[:2]
    xs = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    ys = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    cx = dlib.extract_image_chip(xs, chip_details).astype(np.float64)
    cy = dlib.extract_image_chip(ys, chip_details).astype(np.float64)
    rows, cols = np.mgrid[0 : cx.shape[0], 0 : cx.shape[1]]
    # Only pixels whose source lies inside the image carry a coordinate.
    inside = (cx > 1) & (cx < w - 2) & (cy > 1) & (cy < h - 2)
    a = np.stack([cols[inside], rows[inside], np.ones(inside.sum())], axis=1)
    mx, *_ = np.linalg.lstsq(a, cx[inside], rcond=None)
    my, *_ = np.linalg.lstsq(a, cy[inside], rcond=None)
    return np.stack([mx, my])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="image-folder dataset, e.g. ../shared/data/lfw-dev")
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="-")
    args = ap.parse_args()

    files = sorted(Path(args.data).glob("*/*.jpg"))
    random.Random(args.seed).shuffle(files)
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    mtcnn = FaceDetector("cpu")
    points = []
    for path in files[: args.n]:
        img = load_image(path)
        dets = detector(img, 1)
        faces = mtcnn.detect(img)
        if len(dets) != 1 or not faces:
            continue
        rect = dets[0]
        # The MTCNN face whose box centre is nearest dlib's detection.
        centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
        face = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        if np.linalg.norm((face.box[:2] + face.box[2:]) / 2 - centre) > 0.3 * rect.width():
            continue
        details = dlib.get_face_chip_details(predictor(img, rect), 150, 0.25)
        m = np.vstack([chip_to_image_affine(img.shape, details), [0, 0, 1]])
        inv = np.linalg.inv(m)
        pts = np.hstack([face.landmarks, np.ones((5, 1))]) @ inv.T
        points.append(pts[:, :2])
    points = np.array(points)
    template = points.mean(axis=0)
    spread = points.std(axis=0)
    result = {
        "faces": len(points),
        "template_150": np.round(template, 3).tolist(),
        "std_px": np.round(spread, 2).tolist(),
    }
    text = json.dumps(result, indent=2)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
