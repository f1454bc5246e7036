"""Learning an ensemble's fusion on training identities: member weights, then one calibration for the whole.

The members' embeddings of every photo are computed once (and cached); the weights are
searched on the open-set protocol of the *training* identities (DIR at 1 % of strangers,
the threshold-free figure, mean over one and two photos per person), coordinate by
coordinate on a grid, the first member's weight fixed at 1. The distance distributions of
the fused embeddings are then measured on the same identities and written into the
manifest, so the service's gallery-aware thresholds hold for the ensemble too. Report
accuracy only on identities this never saw (``faceshot eval-openset --identities val``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.calibration import measure
from models.encoders.ensemble import ensemble_hash, fuse
from models.encoders.spec import MANIFEST_FORMAT
from models.evaluation.openset import EmbeddedPhotos, run_protocol

GRID = tuple(round(0.05 * i, 2) for i in range(21))


def _score(g: EmbeddedPhotos, *, k: int, seeds: int) -> float:
    summary = run_protocol(g, k=k, shots=(1, 2), seeds=seeds, threshold=1.0)
    return float(np.mean([summary[s]["mean"]["dir@far=0.01"] for s in (1, 2)]))


def fit_weights(parts: Sequence[np.ndarray], people: dict[str, list[int]], ok: np.ndarray, *, k: int = 50,
                seeds: int = 5, rounds: int = 2, grid: Sequence[float] = GRID) -> tuple[list[float], list[dict]]:
    """Member weights maximising DIR@FAR=1 % on these identities; and the search's trace."""
    weights = [1.0] + [0.5] * (len(parts) - 1)
    trace = []

    def score(w):
        return _score(EmbeddedPhotos(people, fuse(parts, w), ok), k=k, seeds=seeds)

    best = score(weights)
    for _ in range(rounds):
        for i in range(1, len(parts)):
            for value in grid:
                trial = list(weights)
                trial[i] = value
                s = score(trial)
                trace.append({"weights": trial, "dir@far=0.01": s})
                if s > best + 1e-9:
                    best, weights = s, trial
    return weights, trace


def fused_manifest(name: str, members: Sequence[Any], weights: Sequence[float], parts: Sequence[np.ndarray],
                   g: EmbeddedPhotos, *, source: dict[str, Any]) -> dict[str, Any]:
    """The manifest of an ensemble: members by spec and hash, the weights, one calibration measured on ``g``."""
    fused = fuse(parts, weights)
    cal = measure(fused[g.ok], g.labels()[g.ok])
    cal.source.update(source)
    from models.operating_point import operating_point

    op = operating_point(cal, 0.01, {1: 50})
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "members": [{"encoder": spec, "content_hash": m.content_hash, "weight": round(float(w), 4),
                     "licence": m.metadata.recipe.get("licence"), "name": m.metadata.name}
                    for (spec, m), w in zip(members, weights)],
        "content_hash": ensemble_hash([(m.content_hash, w) for (_, m), w in zip(members, weights)]),
        "threshold": {"distance": op.thresholds[1], "far": 0.01, "calibrated": True,
                      "calibrated_on": f"{source.get('identities_side')} identities of {source.get('data')}, K=50",
                      "by_support": {str(s): t for s, t in op.thresholds.items()}},
        "calibration": cal.to_dict(),
        "recipe": {"fusion": "z = normalise(concat(w_i * e_i)), e_i unit", "fitted_on": source},
    }
