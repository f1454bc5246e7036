"""Maths shared by the few-shot methods: prototypes, distances, entropies, intervals."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def compute_prototypes(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean feature of each class; labels must be 0..n_way-1 and row i is class i."""
    n_way = int(labels.max().item()) + 1
    flat = features.flatten(1)
    sums = torch.zeros(n_way, flat.shape[1], dtype=flat.dtype, device=flat.device).index_add_(0, labels, flat)
    counts = torch.bincount(labels, minlength=n_way).clamp_min(1).to(flat.dtype)
    return (sums / counts[:, None]).view(n_way, *features.shape[1:])


def squared_euclidean_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) matrix of ||a_i - b_j||^2, computed exactly (no cdist matmul shortcut that can go negative)."""
    return (a.flatten(1)[:, None, :] - b.flatten(1)[None, :, :]).pow(2).sum(-1)


def cosine_similarities(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) matrix of cos(a_i, b_j)."""
    return F.normalize(a.flatten(1), dim=1) @ F.normalize(b.flatten(1), dim=1).T


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax of each row."""
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def relabel(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Map arbitrary class ids to 0..n-1 in order of first appearance; returns (new labels, original ids)."""
    seen: dict[int, int] = {}
    for value in labels.tolist():
        seen.setdefault(value, len(seen))
    mapping = torch.tensor([seen[v] for v in labels.tolist()], dtype=torch.long, device=labels.device)
    return mapping, torch.tensor(list(seen), dtype=labels.dtype)


def mean_confidence_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation confidence interval (z * std / sqrt(n)).

    With >=600 episodes the normal and Student intervals agree to the third digit; this is the
    interval the few-shot papers report.
    """
    x = torch.as_tensor(list(values), dtype=torch.float64)
    n = x.numel()
    if n == 0:
        return float("nan"), float("nan")
    if n == 1:
        return float(x.item()), float("nan")
    z = {0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}.get(confidence)
    if z is None:
        z = math.sqrt(2) * torch.special.erfinv(torch.tensor(confidence, dtype=torch.float64)).item()
    return float(x.mean()), float(z * x.std(unbiased=True) / math.sqrt(n))
