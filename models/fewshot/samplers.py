"""Which items form a training or test batch: episodes and identity batches.

Both samplers work on a list of per-item class labels and yield lists of item
indices, so they serve an in-memory tensor dataset and a ``DataLoader``
(``batch_sampler=``) alike. Each is seeded and yields the same batches for the
same seed and epoch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from models.errors import TrainingError


def _items_by_class(labels: Sequence[int]) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    return dict(by_class)


def _too_small(short: dict[int, int], per_class: int, shown: int = 5) -> str:
    """The classes left out for having fewer than ``per_class`` items, by label and count (the first few)."""
    if not short:
        return ""
    named = ", ".join(f"label {c} has {n} item{'s' if n != 1 else ''}" for c, n in list(short.items())[:shown])
    more = f" and {len(short) - shown} more" if len(short) > shown else ""
    return f" ({named}{more}; each needs >= {per_class})"


class _ClassBalancedSampler:
    """``n_batches`` batches of ``n_classes`` distinct classes x ``per_class`` distinct items, class after class.

    Only classes with at least ``per_class`` items take part. ``stream`` keeps the
    random streams of different samplers apart for the same seed and epoch.
    """

    def __init__(
        self,
        labels: Sequence[int],
        n_classes: int,
        per_class: int,
        n_batches: int,
        seed: int,
        stream: tuple[int, ...],
        too_few: str,
    ):
        self.n_classes, self.per_class, self.n_batches, self.seed, self.stream = (
            n_classes,
            per_class,
            n_batches,
            seed,
            stream,
        )
        by_class = _items_by_class(labels)
        self.items = {c: np.asarray(idx) for c, idx in by_class.items() if len(idx) >= per_class}
        self.classes = np.asarray(sorted(self.items))
        if len(self.classes) < n_classes:
            short = {c: len(idx) for c, idx in sorted(by_class.items()) if len(idx) < per_class}
            raise TrainingError(f"{too_few}; the data has {len(self.classes)}{_too_small(short, per_class)}.")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, *self.stream])
        for _ in range(self.n_batches):
            batch: list[int] = []
            for c in rng.choice(self.classes, self.n_classes, replace=False):
                batch.extend(rng.choice(self.items[int(c)], self.per_class, replace=False).tolist())
            yield batch


class EpisodeSampler(_ClassBalancedSampler):
    """N-way K-shot Q-query tasks: ``n_way`` classes, each with ``n_shot`` support and ``n_query`` query items.

    A yielded episode lists, class after class, the K support indices then the Q
    query indices of that class; :func:`split_episode` turns the gathered batch into
    support and query sets labelled 0..N-1. Only classes with at least K+Q items
    take part.
    """

    def __init__(self, labels: Sequence[int], n_way: int, n_shot: int, n_query: int, n_episodes: int, seed: int = 0):
        self.n_way, self.n_shot, self.n_query, self.n_episodes = n_way, n_shot, n_query, n_episodes
        per_class = n_shot + n_query
        super().__init__(
            labels,
            n_way,
            per_class,
            n_episodes,
            seed,
            stream=(),
            too_few=f"{n_way}-way {n_shot}-shot {n_query}-query episodes need {n_way} classes "
            f"with >= {per_class} items",
        )


def split_episode(
    images: torch.Tensor, n_way: int, n_shot: int, n_query: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(support_images, support_labels, query_images, query_labels) from an episode gathered in sampler order."""
    per_class = n_shot + n_query
    grouped = images.view(n_way, per_class, *images.shape[1:])
    support = grouped[:, :n_shot].reshape(n_way * n_shot, *images.shape[1:])
    query = grouped[:, n_shot:].reshape(n_way * n_query, *images.shape[1:])
    labels = torch.arange(n_way, device=images.device)
    return support, labels.repeat_interleave(n_shot), query, labels.repeat_interleave(n_query)


class PKBatchSampler(_ClassBalancedSampler):
    """P classes x K items per batch, for losses that mine pairs or triplets inside the batch.

    Only classes with at least K items take part; every batch holds K positives
    for each of its P identities, which batch-hard and semi-hard mining need.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, n_batches: int, seed: int = 0):
        self.p, self.k = p, k
        super().__init__(
            labels, p, k, n_batches, seed, stream=(1,), too_few=f"P x K batches need {p} classes with >= {k} items"
        )
