"""Measure an encoder's capture classes: how near camera-seen strangers come to prototypes holding a camera capture.

A face added to a person from a recognition event was captured by the door's camera; camera-seen strangers come
nearer to such a prototype than the photo-count classes say (bench/camera_support.py: counted as a second photo,
1.2-5 % of them were named at a 1 % target). This measures the two capture classes (models/calibration.py
``measure_capture``: a badge photo with a capture, ``with_camera``; a capture alone, ``camera_only``) on LFW-dev's
*train* side of the identity split (--val-fraction 0.5, --split-seed 0: the side the shipped calibration was fitted
on, so bench/camera_support.py's val-side people stay unseen), through the four camera copies of
bench/cluster_unknowns.py (a 40 % face in a noisy 400x300 frame; 96 px at JPEG quality 30; grey at half contrast;
blurred and darkened), each distribution the worst case over the four cameras. With --write, the result becomes the
``capture`` block of the encoder's calibration asset (dlib: models/assets/dlib_resnet_v1_calibration.json), which
the service's operating point then uses (models/operating_point.py).

One thread; embeddings and copies are cached under --cache-dir (a first run detects and embeds ~14,400 images,
~10 min on one CPU thread).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/calibrate_captures.py --cache-dir /tmp/faceshot-capture-cal \\
        --lfw ../shared/data/lfw-dev --write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from camera_support import CAMERAS, embed_views  # noqa: E402  (the same copies and embeddings as point 7a's bench)

from models.calibration import CAPTURE_CLASSES, Calibration, measure_capture  # noqa: E402
from models.evaluation.dataset_embeddings import list_image_folder  # noqa: E402
from models.identities import one_side  # noqa: E402
from models.operating_point import operating_point  # noqa: E402

ASSETS = {"dlib": ROOT / "models" / "assets" / "dlib_resnet_v1_calibration.json"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(ROOT.parent / "shared/data/lfw-dev"))
    ap.add_argument("--cache-dir", type=Path, required=True, help="embeddings and camera copies (outside the repo)")
    ap.add_argument("--encoder", default="dlib", choices=sorted(ASSETS))
    ap.add_argument("--cap", type=int, default=20, help="at most this many photos of one person")
    ap.add_argument("--per-person", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the capture block into the calibration asset")
    args = ap.parse_args()

    t0 = time.perf_counter()
    lfw_people = list_image_folder(args.lfw)
    train = set(one_side(sorted(lfw_people), "train", 0.5, 0))
    rng = np.random.default_rng(0)
    capped = {p: [str(f) for f in rng.permutation(f)][: args.cap] for p, f in lfw_people.items() if p in train}
    people, emb, found, cal = embed_views(args.lfw, capped, args.cache_dir, args.encoder, side="train")
    if cal.source.get("identities_side") not in (None, "train"):
        print(f"warning: the calibration was fitted on the {cal.source['identities_side']} side", file=sys.stderr)
    labels = np.empty(emb.shape[1], dtype=object)
    for person, rows in people.items():
        labels[rows] = person
    t1 = time.perf_counter()
    names = list(CAMERAS)
    capture = measure_capture(emb[0], [emb[1 + CAMERAS[c]] for c in names],
                              labels.astype(str), [found[0] & found[1 + CAMERAS[c]] for c in names],
                              camera_names=names, per_person=args.per_person)
    capture.source.update({"data": "lfw-dev train side (--val-fraction 0.5 --split-seed 0)", "cap": args.cap,
                           "made_by": "bench/calibrate_captures.py"})
    t2 = time.perf_counter()
    cal.capture = capture
    print(f"{len(people)} train-side people, {emb.shape[1]} photos; embedding (or cache) {t1 - t0:.0f} s, "
          f"measuring {t2 - t1:.0f} s", file=sys.stderr)
    print("| K | 1 photo | 2 photos | with_camera | camera_only | (thresholds at a 1 % gallery target) |")
    print("|---|---|---|---|---|---|")
    for k in (1, 50, 500, 5000):
        op = operating_point(cal, 0.01, {1: k})
        print(f"| {k} | {op.thresholds[1]:.4f} | {op.thresholds[2]:.4f} | "
              + " | ".join(f"{op.thresholds[c]:.4f}" for c in CAPTURE_CLASSES) + " | |")
    if args.write:
        path = ASSETS[args.encoder]
        raw = json.loads(path.read_text())
        raw["capture"] = capture.to_dict()
        Calibration.from_dict(raw)  # it reads back
        path.write_text(json.dumps(raw, separators=(",", ":")))  # the asset's own compact form
        print(f"wrote the capture block into {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
