"""Test-time choices for an encoder, measured on held-out identities: mirror averaging, a second crop scale,
quality-weighted prototypes.

Each variant's embeddings of every photo are made once (cached in --cache-dir); its distance
distributions are measured on the *train* identities of the split (as `faceshot calibrate`
does) and the open-set protocol runs on the *val* identities at the gallery-aware operating
point (target 1 %), K=50, S=1 and 2. Variants:

* ``base``: the encoder as shipped (dlib: mirror averaging on);
* ``no_flip``: without mirror averaging;
* ``two_scales``: the mean of the embeddings of the template crop and of one zoomed by ``--zoom``;
* prototypes (S=2) weighting each support photo by its detection score, or by its face's size.

    PYTHONPATH=. .venv/bin/python bench/test_time_choices.py ../shared/data/lfw-dev --cache-dir CACHE
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.calibration import measure  # noqa: E402
from models.evaluation.dataset_embeddings import detect_dataset, embed_dataset, list_image_folder  # noqa: E402
from models.evaluation.gallery_sweep import gallery_aware  # noqa: E402
from models.evaluation.openset import EmbeddedPhotos, embedded_photos, make_split, run_protocol  # noqa: E402
from models.identities import split_identities  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402
from models.prototypes import normalise  # noqa: E402


def evaluate(train: EmbeddedPhotos, val: EmbeddedPhotos, seeds: int) -> dict:
    cal = measure(train.embeddings[train.ok], train.labels()[train.ok])
    summary = run_protocol(val, k=50, shots=(1, 2), seeds=seeds, threshold=gallery_aware(cal, 0.01))
    return {f"S={s}": {k: round(summary[s]["mean"][k], 4) for k in
                       ("dir@far=0.01", "balanced_accuracy", "known_named", "stranger_accept_rate")}
            for s in (1, 2)}


def zoomed(pipe: FacePipeline, zoom: float) -> FacePipeline:
    """The same encoder with its template scaled about its centre (zoom > 1: a tighter crop)."""
    enc = pipe.encoder
    t = np.asarray(enc.metadata.alignment_template)
    centre = np.array([enc.input_size / 2, enc.input_size / 2])
    meta = dataclasses.replace(enc.metadata, alignment_template=((t - centre) * zoom + centre).tolist())
    enc2 = type(enc).__new__(type(enc))
    enc2.__dict__.update(enc.__dict__)
    enc2.metadata = meta
    return FacePipeline(enc2, pipe.detector)


def split(people, vectors, names_train, names_val):
    return (embedded_photos({p: people[p] for p in names_train}, vectors),
            embedded_photos({p: people[p] for p in names_val}, vectors))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--zoom", type=float, default=1.15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    people = list_image_folder(args.data)
    names_train, names_val = split_identities(sorted(people), 0.5, 0)
    pipe = FacePipeline.from_spec("dlib", "cpu")
    results = {}

    base, _ = embed_dataset(pipe, args.data, people, args.cache_dir, progress=False)
    results["base"] = evaluate(*split(people, base, names_train, names_val), args.seeds)

    flipless = dataclasses.replace(pipe.encoder.metadata, flip_average=False)
    pipe.encoder.metadata = flipless
    no_flip, _ = embed_dataset(pipe, args.data, people, args.cache_dir, progress=False)
    results["no_flip"] = evaluate(*split(people, no_flip, names_train, names_val), args.seeds)
    pipe.encoder.metadata = dataclasses.replace(flipless, flip_average=True)

    zoom, _ = embed_dataset(zoomed(pipe, args.zoom), args.data, people, args.cache_dir, progress=False)
    two = {f: None if base[f] is None or zoom[f] is None else normalise(base[f] + zoom[f]) for f in base}
    results[f"two_scales(x{args.zoom})"] = evaluate(*split(people, two, names_train, names_val), args.seeds)

    # quality-weighted S=2 prototypes: each support photo weighted by its detection score, against the plain mean
    files = [f for fs in people.values() for f in fs]
    det = detect_dataset(pipe, Path(args.data), files, args.cache_dir, False)
    train, val = split(people, base, names_train, names_val)
    cal = measure(train.embeddings[train.ok], train.labels()[train.ok])
    files_val = [f for p in sorted(val.people) for f in sorted(people[p])]  # embedded_photos' row order
    score = np.array([float(det.rows[f][2]) for f in files_val])
    boxes = np.array([det.rows[f][3:7] for f in files_val])
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    unit = normalise(val.embeddings)
    t = gallery_aware(cal, 0.01)(50, 2)
    balanced = {"plain": [], "by_detection_score": [], "by_face_size": []}
    for seed in range(args.seeds):
        sp = make_split(val, 50, 2, seed)
        q = np.array([i for i, _ in sp.queries])
        labels = np.array([lab for _, lab in sp.queries])
        s_idx = np.array(sp.strangers)
        for kind in balanced:
            protos = []
            for person in sp.known:
                idx = sp.support[person][:2]
                w = {"plain": np.ones(len(idx)), "by_detection_score": score[idx], "by_face_size": side[idx]}[kind]
                protos.append(normalise((unit[idx] * w[:, None]).sum(axis=0)))
            protos = np.stack(protos)
            dq = np.linalg.norm(unit[q][:, None] - protos[None], axis=2)
            ds = np.linalg.norm(unit[s_idx][:, None] - protos[None], axis=2).min(axis=1)
            named = ((dq.argmin(axis=1) == labels) & (dq.min(axis=1) <= t)).mean()
            balanced[kind].append((named + (ds > t).mean()) / 2)
    results["S2_prototypes_balanced"] = {k: round(float(np.mean(v)), 4) for k, v in balanced.items()}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
