"""Model-agnostic meta-learning, second-order and first-order."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from models.errors import TrainingError
from models.fewshot.base import FewShotClassifier


class MAML(FewShotClassifier):
    """Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks (Finn, Abbeel and Levine, ICML 2017).

    The backbone and a linear N-way head are meta-learned as an initialisation:
    for each task a few gradient steps on the support set (the inner loop, run
    through ``torch.func.functional_call`` on a dictionary of adapted weights)
    give task weights, whose query loss, averaged over a meta-batch of tasks, is
    minimised with respect to the initialisation (the outer loop).
    ``first_order=True`` drops the second derivatives (first-order MAML).

    As in the paper's code, batch-norm always normalises with the statistics of
    the batch at hand, in training and at test time. ``head="zero"`` replaces the
    meta-learned head by a zero one for every task (Kao et al., ICLR 2022), so a
    model trained 5-way can also be tested 20-way. Train it second-order: with a
    zero head the adapted head is made of support features, and first-order MAML
    drops exactly that path from the support set to the query loss (the backbone
    then learns only through the query features, and learns little).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        n_way: int,
        *,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        eval_inner_steps: int = 3,
        first_order: bool = False,
        head: str = "learned",
    ):
        super().__init__(backbone)
        if head not in ("learned", "zero"):
            raise ValueError("head must be 'learned' or 'zero'")
        self.head_mode = head
        self.head = nn.Linear(feature_dim, n_way) if head == "learned" else None
        self.feature_dim = feature_dim
        self.inner_lr, self.inner_steps, self.eval_inner_steps = inner_lr, inner_steps, eval_inner_steps
        self.first_order = first_order
        self.adapted: dict[str, torch.Tensor] | None = None

    @contextmanager
    def _batch_statistics(self):
        """Batch-norm on batch statistics without touching the stored running averages."""
        norms = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        modes = [m.training for m in norms]
        for m in norms:
            m.train()
        try:
            yield
        finally:
            for m, mode in zip(norms, modes):
                m.train(mode)

    def _logits(self, params: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        backbone_params = {k.removeprefix("backbone."): v for k, v in params.items() if k.startswith("backbone.")}
        # Copies of the buffers absorb batch-norm's running-average updates.
        buffers = {k: v.clone() for k, v in self.backbone.named_buffers()}
        with self._batch_statistics():
            features = functional_call(self.backbone, {**backbone_params, **buffers}, (images,)).flatten(1)
        head_weight = params["head.weight"]
        return F.linear(features.to(head_weight.dtype), head_weight, params["head.bias"])

    def initial_parameters(self, n_way: int, device: torch.device) -> dict[str, torch.Tensor]:
        params = {f"backbone.{k}": v for k, v in self.backbone.named_parameters()}
        dtype = next(iter(params.values())).dtype
        if self.head is not None:
            if self.head.out_features != n_way:
                raise TrainingError(
                    f"this MAML head is {self.head.out_features}-way; the task is {n_way}-way (use head='zero')"
                )
            params["head.weight"], params["head.bias"] = self.head.weight, self.head.bias
        else:
            params["head.weight"] = torch.zeros(n_way, self.feature_dim, device=device, dtype=dtype, requires_grad=True)
            params["head.bias"] = torch.zeros(n_way, device=device, dtype=dtype, requires_grad=True)
        return params

    def adapt(self, support_images: torch.Tensor, support_labels: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
        """Task weights after ``steps`` inner gradient steps on the support set."""
        n_way = int(support_labels.max()) + 1
        with torch.enable_grad():
            params = self.initial_parameters(n_way, support_images.device)
            second_order = self.training and not self.first_order
            for _ in range(steps):
                loss = F.cross_entropy(self._logits(params, support_images), support_labels)
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=second_order, allow_unused=True)
                params = {
                    name: p if g is None else p - self.inner_lr * g for (name, p), g in zip(params.items(), grads)
                }
        if not self.training:
            params = {k: v.detach() for k, v in params.items()}
        return params

    def process_support_set(self, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        steps = self.inner_steps if self.training else self.eval_inner_steps
        self.adapted = self.adapt(support_images, support_labels, steps)

    def forward(self, query_images: torch.Tensor) -> torch.Tensor:
        return self._logits(self.adapted, query_images)
