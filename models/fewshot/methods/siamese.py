"""Siamese pair network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.base import FewShotClassifier


class SiameseNetworks(FewShotClassifier):
    """Siamese Neural Networks for One-shot Image Recognition (Koch, Zemel and Salakhutdinov, 2015).

    Twin copies of the backbone embed two images; the component-wise distance
    |h1 - h2| goes through a linear layer and a sigmoid to give the probability
    that both show the same class, trained with binary cross-entropy on pairs.
    A query's score for a class is its mean same-class logit over that class's
    support images (the paper's one-shot rule, averaged for K > 1).
    """

    training_mode = "batch"

    def __init__(self, backbone: nn.Module, feature_dim: int, *, negatives_per_positive: float = 1.0):
        super().__init__(backbone)
        self.head = nn.Linear(feature_dim, 1)
        self.negatives_per_positive = negatives_per_positive
        self.support_features: torch.Tensor | None = None
        self.support_labels: torch.Tensor | None = None

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(n, m) same-class logits of every pair (a_i, b_j)."""
        diff = (a.flatten(1)[:, None, :] - b.flatten(1)[None, :, :]).abs()
        return self.head(diff.float()).squeeze(-1)

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        self.support_features = self.compute_features(support_images)
        self.support_labels = support_labels

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        logits = self.pair_logits(self.compute_features(query_images), self.support_features)
        one_hot = F.one_hot(self.support_labels).to(logits.dtype)
        return logits @ one_hot / one_hot.sum(0)

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """BCE over all same-class pairs of the batch and as many (x ratio) random different-class pairs."""
        logits = self.pair_logits(*(2 * [self.compute_features(images)]))
        same = labels[:, None] == labels[None, :]
        upper = torch.ones_like(same).triu(1)
        pos = (same & upper).nonzero()
        neg = (~same & upper).nonzero()
        n_neg = min(len(neg), max(1, round(self.negatives_per_positive * max(len(pos), 1))))
        neg = neg[torch.randperm(len(neg), device=neg.device)[:n_neg]]
        pairs = torch.cat([pos, neg])
        targets = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).to(logits.device)
        return F.binary_cross_entropy_with_logits(logits[pairs[:, 0], pairs[:, 1]], targets)

    def episode_loss(self, support_images, support_labels, query_images, query_labels):
        # Pairs from a whole episode, for callers that only have episodes.
        images = torch.cat([support_images, query_images])
        labels = torch.cat([support_labels, query_labels])
        self.process_support_set(support_images, support_labels)
        with torch.no_grad():
            scores = self(query_images)
        return self.batch_loss(images, labels), scores
