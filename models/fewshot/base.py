"""The one interface every few-shot method implements (after easyfsl's ``FewShotClassifier``).

A method is given a *support set* (a few labelled images of N classes) with
:meth:`FewShotClassifier.process_support_set`, then scores *query* images with
:meth:`FewShotClassifier.forward`: one row per query, one column per support
class, higher meaning more likely. The backbone (images -> features) is
injected, so the same method trains a Conv-4 on Omniglot or fine-tunes a face
encoder.

Training comes in two shapes, declared by ``training_mode``:

* ``"episodic"``: :meth:`episode_loss` on one N-way K-shot task at a time
  (prototypical, matching, relation networks, MAML, fine-tuning);
* ``"batch"``: :meth:`batch_loss` on a P x K identity batch (Siamese pairs,
  contrastive and triplet losses), classifying episodes only at test time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn


class FewShotClassifier(nn.Module, ABC):
    training_mode = "episodic"
    #: True when forward() uses the other queries of the episode (it must see them all at once).
    is_transductive = False

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def compute_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    @abstractmethod
    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        """Remember what forward() needs from the support set; labels are 0..n_way-1."""

    @abstractmethod
    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        """(n_query, n_way) scores; the predicted class of a query is the arg-max of its row."""

    def episode_loss(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        query_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss to minimise on one task and the query scores it came from (cross-entropy by default)."""
        self.process_support_set(support_images, support_labels)
        scores = self(query_images)
        return F.cross_entropy(scores, query_labels), scores

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} trains on episodes, not identity batches.")
