"""Matching networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.base import FewShotClassifier


class MatchingNetworks(FewShotClassifier):
    """Matching Networks for One Shot Learning (Vinyals et al., NeurIPS 2016).

    A query attends over every support example with a softmax of cosine
    similarities; its class probabilities are the attention mass on each class.
    With ``full_context=True`` the support features are first read in context by
    a bidirectional LSTM and each query's by an attention LSTM over the support
    set (the paper's full-context embeddings).

    Cosine similarities lie in [-1, 1], so they are multiplied by a learned
    ``scale`` (initialised at 10) before the softmax, as later re-implementations do.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        full_context: bool = False,
        fce_steps: int = 10,
        scale: float = 10.0,
    ):
        super().__init__(backbone)
        self.full_context = full_context
        self.fce_steps = fce_steps
        self.log_scale = nn.Parameter(torch.tensor(float(scale)).log())
        if full_context:
            self.support_encoder = nn.LSTM(feature_dim, feature_dim, batch_first=True, bidirectional=True)
            self.query_encoder = nn.LSTMCell(2 * feature_dim, feature_dim)
        self.support_features: torch.Tensor | None = None
        self.support_one_hot: torch.Tensor | None = None

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        g = self.compute_features(support_images).flatten(1).float()
        if self.full_context:
            hidden, _ = self.support_encoder(g.unsqueeze(0))
            d = g.shape[1]
            g = g + hidden[0, :, :d] + hidden[0, :, d:]
        self.support_features = g
        self.support_one_hot = F.one_hot(support_labels, int(support_labels.max()) + 1).float()

    def _contextualise_queries(self, f: torch.Tensor) -> torch.Tensor:
        g = self.support_features
        h, c = f, torch.zeros_like(f)
        for _ in range(self.fce_steps):
            attention = (h @ g.T).softmax(dim=1)
            h, c = self.query_encoder(torch.cat([f, attention @ g], dim=1), (h, c))
            h = h + f
        return h

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        f = self.compute_features(query_images).flatten(1).float()
        if self.full_context:
            f = self._contextualise_queries(f)
        attention = (
            self.log_scale.exp() * F.normalize(f, dim=1) @ F.normalize(self.support_features, dim=1).T
        ).softmax(dim=1)
        # Log of the attention mass per class: cross-entropy on it is the paper's loss.
        return (attention @ self.support_one_hot).clamp_min(1e-12).log()
