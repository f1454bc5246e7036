"""Per-photo CPU latency: faceshot's pipeline against face_recognition, on the same photos.

Each photo goes through both, interleaved, so background load hits both alike:
faceshot = decode + MTCNN + align + embed (dlib port); face_recognition =
load_image_file + HOG face_locations + face_encodings. Single photo at a time,
as a service answers one request.

    .venv/bin/pip install --no-deps face_recognition==1.3.0 Click
    .venv/bin/python bench/cpu_latency.py ../shared/data/lfw-dev --n 200 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from models.imageio import load_image
from models.pipeline import FacePipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from face_recognition_reference import _shim_pkg_resources

    _shim_pkg_resources()
    import face_recognition

    files = sorted(Path(args.data_dir).glob("*/*.jpg"))
    random.Random(0).shuffle(files)
    files = files[: args.n]
    pipe = FacePipeline.from_spec("dlib", "cpu")
    for f in files[:5]:  # warm-up
        pipe.analyze(load_image(f))
        face_recognition.face_encodings(face_recognition.load_image_file(f))
    ours, theirs = [], []
    for f in files:
        t0 = time.perf_counter()
        pipe.analyze(load_image(f))
        t1 = time.perf_counter()
        img = face_recognition.load_image_file(f)
        face_recognition.face_encodings(img, face_recognition.face_locations(img))
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        theirs.append((t2 - t1) * 1000)
    report = {
        "photos": len(files),
        "torch_threads": torch.get_num_threads(),
        "faceshot_ms": {"p50": round(float(np.median(ours)), 1), "p95": round(float(np.percentile(ours, 95)), 1)},
        "face_recognition_ms": {
            "p50": round(float(np.median(theirs)), 1),
            "p95": round(float(np.percentile(theirs, 95)), 1),
        },
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
