"""How well a trained method does on classes it never saw.

* :func:`evaluate_episodes`: N-way K-shot accuracy, mean and 95% interval over
  seeded episodes (>= 600 for a reported figure, as the papers do).
* :func:`evaluate_lake`: Lake et al.'s 20-way one-shot task (20 runs x 20 trials);
  error rate = wrong trials / 400.
* :func:`open_set_report`: faceshot's "company" protocol on face embeddings: K
  people enrolled with S shots, queries of theirs and of strangers; rank-1,
  DIR at FAR 1% / 10%, and the decisions at a given threshold.
  ``models/openset.py`` is to become the one implementation of this protocol;
  this one exists so the training scripts can report before it lands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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
# Open-set protocol on face embeddings
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def embed_dataset(embed: Callable[[torch.Tensor], torch.Tensor], dataset: TensorImageDataset, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) L2-normalised float32 embeddings of every image, and their labels."""
    out = []
    for start in range(0, len(dataset), batch_size):
        x, _ = dataset.gather(range(start, min(start + batch_size, len(dataset))))
        out.append(F.normalize(embed(x).float().flatten(1), dim=1).cpu())
    return torch.cat(out).numpy(), np.asarray(dataset.labels)


@dataclass
class OpenSetTrial:
    """One draw of the protocol: nearest-prototype distances of known queries and strangers."""

    known_distance: np.ndarray  # (n_known,) distance to the nearest prototype
    known_correct: np.ndarray  # (n_known,) bool: nearest prototype is the right person
    stranger_distance: np.ndarray  # (n_strangers,)


def open_set_trial(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    enrolled: int = 50,
    shots: int = 1,
    max_queries: int = 10,
    max_stranger_photos: int = 2,
    seed: int = 0,
) -> OpenSetTrial:
    """Enroll ``enrolled`` people with ``shots`` photos each (prototype = normalised mean); query the rest.

    Enrolled people are drawn among those with more than ``shots`` photos; every
    other person is a stranger contributing up to ``max_stranger_photos`` photos.
    """
    rng = np.random.default_rng(seed)
    people = np.unique(labels)
    photos = {p: np.flatnonzero(labels == p) for p in people}
    eligible = [p for p in people if len(photos[p]) > shots]
    if len(eligible) < enrolled:
        raise ValueError(f"only {len(eligible)} people have more than {shots} photos; cannot enroll {enrolled}")
    chosen = rng.choice(eligible, enrolled, replace=False)
    prototypes, queries, query_owner = [], [], []
    for i, p in enumerate(chosen):
        order = rng.permutation(photos[p])
        proto = embeddings[order[:shots]].mean(0)
        prototypes.append(proto / np.linalg.norm(proto))
        rest = order[shots : shots + max_queries]
        queries.extend(rest)
        query_owner.extend([i] * len(rest))
    chosen_set = set(chosen.tolist())
    strangers = [i for p in people if p not in chosen_set for i in rng.permutation(photos[p])[:max_stranger_photos]]
    protos = np.stack(prototypes)

    def nearest(idx):
        d = np.sqrt(np.maximum(((embeddings[idx][:, None, :] - protos[None]) ** 2).sum(-1), 0))
        return d.min(1), d.argmin(1)

    kd, ki = nearest(np.asarray(queries))
    sd, _ = nearest(np.asarray(strangers))
    return OpenSetTrial(kd, ki == np.asarray(query_owner), sd)


def threshold_at_far(stranger_distance: np.ndarray, far: float) -> float:
    """Largest distance threshold (accept when distance <= t) that admits at most ``far`` of the strangers."""
    d = np.sort(stranger_distance)
    k = int(math.floor(far * len(d)))
    if k >= len(d):
        return float(d[-1])
    below = d[k - 1] if k > 0 else 0.0
    # Half-way to the first stranger that must stay rejected (strictly below it).
    return float(below + (d[k] - below) / 2) if d[k] > below else float(np.nextafter(d[k], -np.inf))


def open_set_report(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    enrolled: int = 50,
    shots: Sequence[int] = (1, 2),
    seeds: Sequence[int] = range(5),
    fars: Sequence[float] = (0.01, 0.1),
    threshold: float | None = None,
) -> dict:
    """The protocol's figures for each number of shots, mean and std over seeds."""
    report = {}
    for s in shots:
        rows = []
        for seed in seeds:
            t = open_set_trial(embeddings, labels, enrolled=enrolled, shots=s, seed=seed)
            row = {"rank1": float(t.known_correct.mean()), "known_queries": len(t.known_correct), "strangers": len(t.stranger_distance)}
            for far in fars:
                th = threshold_at_far(t.stranger_distance, far)
                row[f"dir@far{far:g}"] = float((t.known_correct & (t.known_distance <= th)).mean())
                row[f"threshold@far{far:g}"] = th
            if threshold is not None:
                named = float((t.known_correct & (t.known_distance <= threshold)).mean())
                rejected = float((t.stranger_distance > threshold).mean())
                row.update({"known_named": named, "strangers_rejected": rejected, "balanced_accuracy": (named + rejected) / 2})
            rows.append(row)
        summary = {"enrolled": enrolled, "shots": s, "seeds": len(rows)}
        for key in rows[0]:
            values = np.asarray([r[key] for r in rows], dtype=np.float64)
            summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
        report[f"S={s}"] = summary
    if threshold is not None:
        report["threshold"] = threshold
    return report
