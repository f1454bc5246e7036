"""Relation networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.base import FewShotClassifier
from models.fewshot.utils import compute_prototypes


def _relation_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class RelationNetworks(FewShotClassifier):
    """Learning to Compare: Relation Network for Few-Shot Learning (Sung et al., CVPR 2018).

    Support features are summed per class; each (class, query) pair of features is
    concatenated and a learned relation module scores it in [0, 1]; training
    regresses the scores onto the one-hot match with a mean squared error.

    ``feature_shape`` is one image's backbone output: (C, H, W) feature maps get
    the paper's module (two conv blocks, then 8 hidden units), flat vectors an MLP.
    """

    def __init__(self, backbone: nn.Module, feature_shape: tuple[int, ...], *, hidden: int = 8, channels: int = 64):
        super().__init__(backbone)
        if len(feature_shape) == 3:
            c, h, w = feature_shape
            self.relation_module = nn.Sequential(
                _relation_block(2 * c, channels, pool=min(h, w) >= 2),
                _relation_block(channels, channels, pool=min(h, w) >= 4),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(channels, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )
        else:
            (d,) = feature_shape
            self.relation_module = nn.Sequential(
                nn.Linear(2 * d, 4 * hidden), nn.ReLU(), nn.Linear(4 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )
        self.prototypes: torch.Tensor | None = None

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        features = self.compute_features(support_images)
        counts = torch.bincount(support_labels).to(features.dtype).view(-1, *[1] * (features.dim() - 1))
        # The paper sums the K support feature maps of a class; mean x K is the same sum.
        self.prototypes = compute_prototypes(features, support_labels) * counts

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        queries = self.compute_features(query_images)
        n_query, n_way = len(queries), len(self.prototypes)
        pairs = torch.cat(
            [
                self.prototypes.unsqueeze(0).expand(n_query, *self.prototypes.shape),
                queries.unsqueeze(1).expand(n_query, n_way, *queries.shape[1:]),
            ],
            dim=2,
        ).flatten(0, 1)
        return torch.sigmoid(self.relation_module(pairs).float()).view(n_query, n_way)

    def episode_loss(self, support_images, support_labels, query_images, query_labels):
        self.process_support_set(support_images, support_labels)
        scores = self(query_images)
        return F.mse_loss(scores, F.one_hot(query_labels, scores.shape[1]).float()), scores
