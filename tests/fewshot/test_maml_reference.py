"""MAML's meta-gradients checked against references that share none of its code.

First-order MAML: the gradient of the query loss at the adapted weights, got by
adapting a plain copy of the network with ordinary SGD steps. Second-order
MAML: central finite differences of the whole meta-objective, in float64.
A bug in the functional inner loop (a step that does not happen, a gradient
that does not reach the initialisation, a head that is not adapted) fails here.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.fewshot.methods import MAML

N_WAY, IN, DIM, LR, STEPS = 3, 6, 5, 0.3, 2


def tiny_maml(first_order: bool, head: str = "learned") -> MAML:
    torch.manual_seed(1)
    backbone = nn.Sequential(nn.Linear(IN, DIM), nn.Tanh()).double()
    method = MAML(backbone, DIM, N_WAY, inner_lr=LR, inner_steps=STEPS, first_order=first_order, head=head).double()
    return method.train()


def task():
    g = torch.Generator().manual_seed(2)
    s, q = (
        torch.randn(N_WAY * 2, IN, generator=g, dtype=torch.float64),
        torch.randn(N_WAY * 3, IN, generator=g, dtype=torch.float64),
    )
    return s, torch.arange(N_WAY).repeat_interleave(2), q, torch.arange(N_WAY).repeat_interleave(3)


def plain_copy(method: MAML) -> tuple[nn.Module, nn.Linear]:
    backbone = copy.deepcopy(method.backbone)
    if method.head is not None:
        head = copy.deepcopy(method.head)
    else:
        head = nn.Linear(DIM, N_WAY).double()
        nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    return backbone, head


def adapt_with_sgd(backbone: nn.Module, head: nn.Linear, s, sl) -> None:
    params = [*backbone.parameters(), *head.parameters()]
    for _ in range(STEPS):
        grads = torch.autograd.grad(F.cross_entropy(head(backbone(s)), sl), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= LR * g


def meta_gradient(method: MAML, s, sl, q, ql) -> list[torch.Tensor]:
    method.zero_grad()
    loss, _ = method.episode_loss(s, sl, q, ql)
    loss.backward()
    return [p.grad.clone() for p in method.parameters()]


@pytest.mark.parametrize("head", ["learned", "zero"])
def test_first_order_gradient_is_the_query_gradient_at_the_adapted_weights(head):
    method, (s, sl, q, ql) = tiny_maml(first_order=True, head=head), task()
    ours = meta_gradient(method, s, sl, q, ql)

    backbone, plain_head = plain_copy(method)
    adapt_with_sgd(backbone, plain_head, s, sl)
    F.cross_entropy(plain_head(backbone(q)), ql).backward()
    reference = [p.grad for p in backbone.parameters()]
    if head == "learned":
        reference += [p.grad for p in plain_head.parameters()]

    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(g.abs().max() > 1e-6 for g in ours)


def test_second_order_gradient_matches_finite_differences():
    method, (s, sl, q, ql) = tiny_maml(first_order=False), task()
    ours = meta_gradient(method, s, sl, q, ql)

    def objective() -> float:
        backbone, head = plain_copy(method)
        adapt_with_sgd(backbone, head, s, sl)
        with torch.no_grad():
            return F.cross_entropy(head(backbone(q)), ql).item()

    eps = 1e-6
    for param, grad in zip(method.parameters(), ours):
        numeric = torch.zeros_like(param)
        for i in range(param.numel()):
            original = param.view(-1)[i].item()
            values = []
            for shifted in (original + eps, original - eps):
                with torch.no_grad():
                    param.view(-1)[i] = shifted
                values.append(objective())
            with torch.no_grad():
                param.view(-1)[i] = original
            numeric.view(-1)[i] = (values[0] - values[1]) / (2 * eps)
        torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-8)

    first_order = meta_gradient(tiny_maml(first_order=True), s, sl, q, ql)
    assert any(not torch.allclose(a, b) for a, b in zip(ours, first_order))  # the second-order terms matter here
