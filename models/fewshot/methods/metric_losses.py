"""Contrastive and triplet losses with online mining (pytorch-metric-learning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import LpDistance
from torch import nn

from models.fewshot.base import FewShotClassifier
from models.fewshot.utils import compute_prototypes, squared_euclidean_distances

LOSSES = ("triplet", "contrastive")
MINERS = ("batch_hard", "semi_hard", "all")


class MetricLearning(FewShotClassifier):
    """Deep metric learning with a margin, for FaceNet-style embeddings.

    Triplet loss (Schroff, Kalenichenko and Philbin, FaceNet, CVPR 2015) pulls an
    anchor at least ``margin`` closer to a positive than to a negative; contrastive
    loss (Hadsell, Chopra and LeCun, CVPR 2006) pulls same-class pairs together and
    pushes different-class pairs beyond ``margin`` (and, with ``pos_margin`` > 0,
    leaves same-class pairs already closer than it alone: margins either side of
    the service's threshold aim the loss at the faces that threshold gets wrong).
    Pairs and triplets are mined
    inside each P x K batch: batch-hard (Hermans, Beyer and Leibe 2017), semi-hard
    (FaceNet) or all. Embeddings are L2-normalised; at test time a query is
    classified by its distance to the normalised class means, as the service does.
    """

    training_mode = "batch"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        loss: str = "triplet",
        miner: str = "semi_hard",
        margin: float = 0.2,
        pos_margin: float = 0.0,
        scale: float = 10.0,
    ):
        super().__init__(backbone)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
        if miner not in MINERS:
            raise ValueError(f"miner must be one of {MINERS}, not {miner!r}")
        distance = LpDistance(normalize_embeddings=True, p=2, power=1)
        if loss == "triplet":
            self.loss_fn = losses.TripletMarginLoss(margin=margin, distance=distance)
        else:
            self.loss_fn = losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=margin, distance=distance)
        if miner == "batch_hard":
            self.miner = miners.BatchHardMiner(distance=distance)
        elif miner == "semi_hard":
            self.miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=distance)
        else:
            self.miner = None
        self.loss_name, self.miner_name, self.margin, self.scale = loss, miner, margin, scale
        self.prototypes: torch.Tensor | None = None

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.compute_features(images).flatten(1).float(), dim=1)

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = self.embed(images)
        tuples = self.miner(embeddings, labels) if self.miner is not None else None
        if tuples is not None and len(tuples[0]) == 0:
            # Nothing left to mine (every triplet already satisfies the margin): a zero that still backpropagates.
            return embeddings.sum() * 0.0
        return self.loss_fn(embeddings, labels, tuples)

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        self.prototypes = F.normalize(compute_prototypes(self.embed(support_images), support_labels), dim=1)

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        return -self.scale * squared_euclidean_distances(self.embed(query_images), self.prototypes)

    def episode_loss(self, support_images, support_labels, query_images, query_labels):
        self.process_support_set(support_images, support_labels)
        with torch.no_grad():
            scores = self(query_images)
        images = torch.cat([support_images, query_images])
        return self.batch_loss(images, torch.cat([support_labels, query_labels])), scores
