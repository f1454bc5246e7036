"""Support-set fine-tuning of a prototype-initialised cosine classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.base import FewShotClassifier
from models.fewshot.utils import compute_prototypes, entropy


class Finetune(FewShotClassifier):
    """A Baseline for Few-Shot Image Classification (Dhillon, Chaudhari, Ravichandran and Soatto, ICLR 2020).

    A cosine classifier (logits = scale x cos(w_c, f(x))) is initialised with the
    L2-normalised class prototypes and, at test time, fine-tuned on the frozen
    features for a few steps: cross-entropy on the support set plus ``entropy_weight``
    times the entropy of the query predictions (transductive fine-tuning).
    During meta-training the backbone learns through the un-tuned classifier,
    i.e. a cosine prototypical loss.
    """

    is_transductive = True

    def __init__(
        self,
        backbone: nn.Module,
        *,
        fine_tuning_steps: int = 25,
        fine_tuning_lr: float = 5e-3,
        entropy_weight: float = 1.0,
        scale: float = 10.0,
    ):
        super().__init__(backbone)
        self.fine_tuning_steps = fine_tuning_steps
        self.fine_tuning_lr = fine_tuning_lr
        self.entropy_weight = entropy_weight
        self.scale = scale
        self.support_features: torch.Tensor | None = None
        self.support_labels: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def _logits(self, weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(features, dim=1) @ F.normalize(weights, dim=1).T

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        self.support_features = self.compute_features(support_images).flatten(1).float()
        self.support_labels = support_labels
        self.weights = F.normalize(compute_prototypes(self.support_features, support_labels), dim=1)

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        queries = self.compute_features(query_images).flatten(1).float()
        if self.training or self.fine_tuning_steps == 0:
            return self._logits(self.weights, queries)
        support, queries = self.support_features.detach(), queries.detach()
        weights = self.weights.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([weights], lr=self.fine_tuning_lr)
        with torch.enable_grad():
            for _ in range(self.fine_tuning_steps):
                loss = F.cross_entropy(self._logits(weights, support), self.support_labels)
                loss = loss + self.entropy_weight * entropy(self._logits(weights, queries))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return self._logits(weights.detach(), queries)
