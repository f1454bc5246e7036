"""Prototypical networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.base import FewShotClassifier
from models.fewshot.utils import compute_prototypes, squared_euclidean_distances


class PrototypicalNetworks(FewShotClassifier):
    """Prototypical Networks for Few-shot Learning (Snell, Swersky and Zemel, NeurIPS 2017).

    Each class is represented by the mean of its support features (its prototype);
    a query's logits are its negative squared Euclidean distances to the prototypes,
    and training minimises the cross-entropy of their softmax over the episode.

    ``normalize=True`` first L2-normalises features (the geometry of faceshot's
    gallery) and then needs ``scale`` to sharpen the softmax, since squared
    distances between unit vectors lie in [0, 4].
    """

    def __init__(self, backbone: nn.Module, *, normalize: bool = False, scale: float = 1.0, learn_scale: bool = False):
        super().__init__(backbone)
        self.normalize = normalize
        init = torch.tensor(float(scale)).log()
        self.log_scale = nn.Parameter(init) if learn_scale else None
        self.register_buffer("fixed_log_scale", init, persistent=False)
        self.prototypes: torch.Tensor | None = None

    @property
    def scale(self) -> torch.Tensor:
        return (self.log_scale if self.log_scale is not None else self.fixed_log_scale).exp()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        features = self.compute_features(images).flatten(1)
        return F.normalize(features, dim=1) if self.normalize else features

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        self.prototypes = compute_prototypes(self.embed(support_images), support_labels)

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        queries = self.embed(query_images)
        return -self.scale * squared_euclidean_distances(queries.float(), self.prototypes.float())
