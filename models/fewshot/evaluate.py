"""How well a trained method does on classes it never saw.

* :func:`evaluate_episodes`: N-way K-shot accuracy, mean and 95% interval over
  seeded episodes (>= 600 for a reported figure, as the papers do).
* :func:`evaluate_lake`: Lake et al.'s 20-way one-shot task (20 runs x 20 trials);
  error rate = wrong trials / 400.
* :func:`open_set_report`: faceshot's "company" protocol on face embeddings: K
  people enrolled with S shots, queries of theirs and of strangers; rank-1,
  DIR at FAR 1% / 10%, and the decisions at a given threshold, counted by
  :mod:`models.openset` on embeddings of the cached validation chips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..openset import Gallery, run_protocol
from .backbones import EncoderBackbone
from .base import FewShotClassifier
from .data import LakeRun, TensorImageDataset
from .samplers import EpisodeSampler, split_episode
from .utils import mean_confidence_interval


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def evaluate_episodes(
    method: FewShotClassifier,
    dataset: TensorImageDataset,
    n_way: int,
    n_shot: int,
    n_query: int,
    n_episodes: int = 600,
    *,
    seed: int = 0,
    amp_dtype: torch.dtype | None = None,
) -> dict:
    """Mean query accuracy over seeded N-way K-shot episodes, with its 95% confidence half-width."""
    was_training = method.training
    method.eval()
    sampler = EpisodeSampler(dataset.labels, n_way, n_shot, n_query, n_episodes, seed=seed + 10_000)
    accuracies = []
    try:
        for indices in sampler:
            x, _ = dataset.gather(indices)
            s, sl, q, ql = split_episode(x, n_way, n_shot, n_query)
            with _autocast(x.device, amp_dtype):
                method.process_support_set(s, sl)
                scores = method(q)
            accuracies.append((scores.argmax(1) == ql).float().mean().item())
    finally:
        method.train(was_training)
    mean, ci = mean_confidence_interval(accuracies)
    return {"n_way": n_way, "n_shot": n_shot, "n_query": n_query, "episodes": n_episodes, "accuracy": mean, "ci95": ci}


@torch.no_grad()
def evaluate_lake(method: FewShotClassifier, runs: Sequence[LakeRun], *, mean: float = 0.0, std: float = 255.0) -> dict:
    """Lake et al. (Science 2015) 20-way one-shot classification: each test item against the run's 20 drawings."""
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    errors = {}
    try:
        for run in runs:
            support = (run.support.to(device).float() - mean) / std
            queries = (run.queries.to(device).float() - mean) / std
            method.process_support_set(support, torch.arange(len(support), device=device))
            predicted = method(queries).argmax(1).cpu()
            errors[run.name] = int((predicted != run.query_labels).sum())
    finally:
        method.train(was_training)
    trials = sum(len(r.queries) for r in runs)
    return {"runs": len(runs), "trials": trials, "errors": sum(errors.values()), "error_rate": sum(errors.values()) / trials, "errors_per_run": errors}


# ---------------------------------------------------------------------------------------------
# Open-set protocol on face embeddings (models.openset does the counting)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def embed_dataset(backbone: EncoderBackbone, dataset: TensorImageDataset, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of every image as the service makes them (unit length, mirror-averaged when the
    encoder's metadata says so), and their labels."""
    out = []
    for start in range(0, len(dataset), batch_size):
        x, _ = dataset.gather(range(start, min(start + batch_size, len(dataset))))
        out.append(backbone.embed_like_service(x).float().cpu())
    return torch.cat(out).numpy(), np.asarray(dataset.labels)


def gallery_of(embeddings: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> Gallery:
    """:class:`models.openset.Gallery` of in-memory embeddings (every chip has a face: detection ran when caching)."""
    people = {names[c]: np.flatnonzero(labels == c).tolist() for c in np.unique(labels)}
    return Gallery(people, embeddings.astype(np.float32), np.ones(len(embeddings), dtype=bool))


def open_set_report(
    embeddings: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    enrolled: int = 50,
    shots: Sequence[int] = (1, 2),
    seeds: int = 5,
    threshold: float | dict[int, float],
) -> dict:
    """faceshot's open-set protocol (:func:`models.openset.run_protocol`): mean and std over seeds per shot count."""
    summary = run_protocol(gallery_of(embeddings, labels, names), k=enrolled, shots=tuple(shots), seeds=seeds, threshold=threshold)
    return {f"S={s}": {"mean": r["mean"], "std": r["std"], "seeds": len(r["runs"])} for s, r in summary.items()}
