"""Per-photo CPU latency: faceshot's pipeline against face_recognition, on the same photos.

Each photo goes through both, interleaved, so background load hits both alike:
faceshot = decode + MTCNN + align + embed (dlib port); face_recognition =
load_image_file + HOG face_locations + face_encodings. Single photo at a time,
as a service answers one request.

    .venv/bin/pip install --no-deps face_recognition==1.3.0 Click
    .venv/bin/python bench/cpu_latency.py ../shared/data/lfw-dev --n 200 [--threads 2] [--size 1280x960]

``--size WxH`` stretches every photo to that size and re-encodes it as a JPEG (quality 92) in memory
first, so both libraries decode the same large file.
"""

from __future__ import annotations

import argparse
import io
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
    ap.add_argument("--size", default=None, help="WxH: photos stretched to this size first")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from face_recognition_reference import _shim_pkg_resources

    _shim_pkg_resources()
    import face_recognition

    files = sorted(Path(args.data_dir).glob("*/*.jpg"))
    random.Random(0).shuffle(files)
    files = [f.read_bytes() for f in files[: args.n]]
    if args.size:
        import cv2

        w, h = (int(v) for v in args.size.lower().split("x"))
        files = [cv2.imencode(".jpg", cv2.resize(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), (w, h),
                                                 interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
                 .tobytes() for b in files]
    pipe = FacePipeline.from_spec("dlib", "cpu")
    for f in files[:5]:  # warm-up
        pipe.analyze(load_image(f))
        face_recognition.face_encodings(face_recognition.load_image_file(io.BytesIO(f)))
    ours, theirs = [], []
    for f in files:
        t0 = time.perf_counter()
        pipe.analyze(load_image(f))
        t1 = time.perf_counter()
        img = face_recognition.load_image_file(io.BytesIO(f))
        face_recognition.face_encodings(img, face_recognition.face_locations(img))
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        theirs.append((t2 - t1) * 1000)
    report = {
        "photos": len(files),
        "size": args.size or "as stored (LFW: 250x250)",
        "ratio_p50": round(float(np.median(ours)) / float(np.median(theirs)), 3),
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
