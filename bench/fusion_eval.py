"""Encoders and their fusions on held-out identities, at each one's own calibrated, gallery-aware decision.

Every member's embedding of every photo comes from `faceshot eval-openset`'s cache (run it once
per member with the same --cache-dir). The identity split is `models/identities.py`'s
(--val-fraction 0.5, --split-seed 0): fusion weights (`models.fewshot.fusion.fit_weights`, what
`faceshot fuse` does) and distance distributions are fitted on the *train* identities; the
open-set protocol (K=50, S=1 and 2) runs on the *val* identities at the target 1 %.

    PYTHONPATH=. .venv/bin/python bench/fusion_eval.py ../shared/data/lfw-dev --cache-dir CACHE \\
        --members dlib facenet-20180408 hse-faceres --json fusion.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.calibration import measure  # noqa: E402
from models.encoders.ensemble import fuse  # noqa: E402
from models.evaluation.dataset_embeddings import embed_dataset, list_image_folder  # noqa: E402
from models.evaluation.gallery_sweep import gallery_aware  # noqa: E402
from models.evaluation.openset import EmbeddedPhotos, embedded_photos, run_protocol  # noqa: E402
from models.fewshot.fusion import fit_weights  # noqa: E402
from models.identities import split_identities  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402

KEYS = ("dir@far=0.01", "balanced_accuracy", "known_named", "stranger_accept_rate", "rank1")


def evaluate(train: EmbeddedPhotos, val: EmbeddedPhotos, seeds: int) -> dict:
    cal = measure(train.embeddings[train.ok], train.labels()[train.ok])
    summary = run_protocol(val, k=50, shots=(1, 2), seeds=seeds, threshold=gallery_aware(cal, 0.01))
    return {f"S={s}": {k: [round(summary[s]["mean"][k], 4), round(summary[s]["std"][k], 4)] for k in KEYS}
            for s in (1, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--members", nargs="+", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    people = list_image_folder(args.data)
    names_train, names_val = split_identities(sorted(people), 0.5, 0)
    sides = {"train": {p: people[p] for p in names_train}, "val": {p: people[p] for p in names_val}}
    embedded = {}
    for spec in args.members:
        pipe = FacePipeline.from_spec(spec, "cpu")
        vectors, _ = embed_dataset(pipe, args.data, people, args.cache_dir, progress=False)
        embedded[spec] = {side: embedded_photos(p, vectors) for side, p in sides.items()}
    ok = {side: np.logical_and.reduce([embedded[m][side].ok for m in args.members]) for side in sides}
    results = {}
    for r in range(1, len(args.members) + 1):
        for combo in itertools.combinations(args.members, r):
            if r > 1 and combo[0] != args.members[0]:
                continue  # fusions keep the first member (the default encoder) at weight 1
            parts = {side: [embedded[m][side].embeddings for m in combo] for side in sides}
            weights = [1.0]
            if r > 1:
                weights, _ = fit_weights(parts["train"], sides_people(embedded, combo, "train"), ok["train"])
            g = {side: EmbeddedPhotos(embedded[combo[0]][side].people, fuse(parts[side], weights), ok[side])
                 for side in sides}
            name = "+".join(combo)
            results[name] = {"weights": weights, **evaluate(g["train"], g["val"], args.seeds)}
            print(name, json.dumps(results[name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def sides_people(embedded, combo, side):
    return embedded[combo[0]][side].people


if __name__ == "__main__":
    sys.exit(main())
