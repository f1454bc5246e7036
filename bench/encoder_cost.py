"""Cost per face of each encoder (and ensemble): crop + embed, after detection, on real photos.

Detection is the same for every encoder (MTCNN) and is done once up front; what differs is each
encoder's crop rule and network. The encoders take turns photo by photo (interleaved), so
background load on a noisy host hits them alike. Batch 1 is one request's face; batch 16 is the
same call on the chips of 16 photos (enrolment, reembed, micro-batching).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/encoder_cost.py ../shared/data/lfw-dev \\
        --encoders dlib facenet-20180408 hse-faceres dlib+facenet-20180408 --n 60 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.detection import FaceDetector  # noqa: E402
from models.encoders.sources import load_encoder  # noqa: E402
from models.imageio import load_image  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--encoders", nargs="+", default=["dlib"])
    ap.add_argument("--n", type=int, default=60, help="photos")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(Path(args.data).rglob("*.jpg"))
    random.Random(0).shuffle(files)
    detector = FaceDetector("cpu")
    photos = []
    for path in files:
        image = load_image(path.read_bytes())
        faces = detector.detect(image)
        if faces:
            photos.append((image, faces[:1]))
        if len(photos) == args.n:
            break
    encoders = {spec: load_encoder(spec, "cpu") for spec in args.encoders}
    for enc in encoders.values():  # warm-up: first calls allocate
        for image, faces in photos[:3]:
            enc.embed_faces(image, faces)
    single = {spec: [] for spec in encoders}
    batched = {spec: [] for spec in encoders}
    for image, faces in photos:
        for spec, enc in encoders.items():
            single[spec].append(timed(lambda e=enc, im=image, fs=faces: e.embed_faces(im, fs)))
    for start in range(0, len(photos) - 15, 16):
        group = photos[start : start + 16]
        for spec, enc in encoders.items():
            def run(e=enc, g=group):
                chips = [e.chips(im, fs) for im, fs in g]
                if isinstance(chips[0], list):  # an ensemble: one list of chips per member
                    chips = [np.concatenate([c[i] for c in chips]) for i in range(len(chips[0]))]
                else:
                    chips = np.concatenate(chips)
                e.embed(chips)
            batched[spec].append(timed(run) / 16)
    report = {"threads": args.threads, "photos": len(photos), "torch": torch.__version__,
              "ms_per_face": {spec: {"batch1_median": round(float(np.median(single[spec])), 1),
                                     "batch1_p90": round(float(np.percentile(single[spec], 90)), 1),
                                     "batch16_median": round(float(np.median(batched[spec])), 1) if batched[spec]
                                     else None}
                              for spec in encoders}}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
