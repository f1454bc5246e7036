"""The one prototype rule, shared by the service's gallery and the evaluation: normalise, average, normalise.

A person enrolled with S photos is the unit vector of the mean of their unit embeddings.
The service's gallery, its enrollment warnings and verify, and the open-set evaluation
all call these two functions, so what is measured is what is served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalise(v: np.ndarray) -> np.ndarray:
    """Unit length along the last axis (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def prototype(embeddings: np.ndarray) -> np.ndarray:
    """One person's prototype from their (S, D) support embeddings."""
    return normalise(normalise(embeddings).mean(axis=0))


def prototypes(embeddings: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """(P, D) prototypes: row p from the embeddings at ``groups[p]`` (each group non-empty)."""
    unit = normalise(embeddings)
    return normalise(np.stack([unit[list(g)].mean(axis=0) for g in groups])) if len(groups) else \
        np.zeros((0, unit.shape[-1]), np.float32)
