"""Does a background cohort help reject strangers with one enrolment photo?

Rule under test: besides the distance threshold, a face is unknown when one of a
fixed set of background identities (here: the prototypes of lfw-dev's training
identities) is nearer to it, by more than a margin, than its best enrolled person.
Evaluated on the held-out validation identities (K=50, S=1 and 2, 5 seeds) with
the untouched dlib encoder, over a grid of thresholds and margins; the grid is
searched on the evaluation data itself, so the best cell is an upper bound.

    PYTHONPATH=. .venv/bin/python bench/cohort_rejection.py CHIPS
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench.last_layer_faces import Experiment, pooled_features
from models.evaluation.openset import make_split

OFF = float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chips", type=Path, help="a chip cache made by `faceshot prepare-faces` (dlib's template)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    exp = Experiment(*pooled_features(args.chips))
    with torch.no_grad():
        e = exp.embed(exp.last).numpy()
    cohort = np.stack([e[rows].mean(0) for rows in exp.rows_of(exp.train_names).values()])
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)

    g = exp.val_gallery(e)
    print(f"cohort: {len(cohort)} training identities; evaluated on {len(g.people)} validation identities")

    for shots in (1, 2):
        cells: dict[tuple[float, float], list[float]] = {}
        for seed in range(5):
            split = make_split(g, 50, 2, seed)
            protos = np.stack([g.embeddings[split.support[p][:shots]].mean(0) for p in split.known])
            protos /= np.linalg.norm(protos, axis=1, keepdims=True)

            def nearest(idx, protos=protos):
                x = g.embeddings[idx]
                d = np.sqrt(np.maximum(2 - 2 * x @ protos.T, 0))
                dc = np.sqrt(np.maximum(2 - 2 * x @ cohort.T, 0))
                return d.argmin(1), d.min(1), dc.min(1)

            q_idx = np.array([i for i, _ in split.queries])
            q_lab = np.array([lab for _, lab in split.queries])
            q_best, q_d, q_c = nearest(q_idx)
            _, s_d, s_c = nearest(np.array(split.strangers))
            correct = q_best == q_lab
            for t in np.round(np.linspace(0.30, 0.50, 21), 3):
                for m in (0.0, 0.02, 0.05, 0.1, OFF):
                    named = (correct & (q_d <= t) & (q_d <= q_c + m)).mean()
                    rejected = ((s_d > t) | (s_d > s_c + m)).mean()
                    cells.setdefault((float(t), m), []).append((named + rejected) / 2)
        ranked = sorted(((float(np.mean(v)), k) for k, v in cells.items()), reverse=True)
        best_with = ranked[0]
        best_without = next(r for r in ranked if r[1][1] == OFF)
        print(
            f"S={shots}: best balanced accuracy with the cohort rule {best_with[0]:.4f} "
            f"(threshold {best_with[1][0]}, margin {best_with[1][1]}); "
            f"threshold alone {best_without[0]:.4f} (threshold {best_without[1][0]})"
        )


if __name__ == "__main__":
    main()
