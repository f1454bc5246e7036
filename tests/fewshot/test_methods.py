"""Every method learns on a few real Omniglot episodes: its loss falls, its scores have the right shape."""

import pytest
import torch

from models.fewshot.backbones import Conv4, feature_shape
from models.fewshot.base import FewShotClassifier
from models.fewshot.methods import (
    MAML,
    Finetune,
    MatchingNetworks,
    MetricLearning,
    PrototypicalNetworks,
    RelationNetworks,
    SiameseNetworks,
)
from models.fewshot.samplers import EpisodeSampler, PKBatchSampler, split_episode

N_WAY, N_SHOT, N_QUERY = 5, 1, 3


def make(name: str) -> FewShotClassifier:
    if name == "relation":
        backbone = Conv4(pooled_blocks=2, flatten=False)
        return RelationNetworks(backbone, feature_shape(backbone, (1, 28, 28)))
    backbone = Conv4()
    dim = feature_shape(backbone, (1, 28, 28))[0]
    return {
        "protonet": lambda: PrototypicalNetworks(backbone),
        "matching": lambda: MatchingNetworks(backbone, dim),
        "matching_fce": lambda: MatchingNetworks(backbone, dim, full_context=True, fce_steps=3),
        "siamese": lambda: SiameseNetworks(backbone, dim),
        "triplet": lambda: MetricLearning(backbone, loss="triplet", miner="batch_hard", margin=0.2),
        "triplet_semi": lambda: MetricLearning(backbone, loss="triplet", miner="semi_hard", margin=0.2),
        "contrastive": lambda: MetricLearning(backbone, loss="contrastive", miner="batch_hard", margin=0.5),
        "maml": lambda: MAML(backbone, dim, N_WAY, inner_lr=0.4, inner_steps=1, eval_inner_steps=2),
        "fomaml": lambda: MAML(backbone, dim, N_WAY, inner_lr=0.4, inner_steps=1, first_order=True),
        "finetune": lambda: Finetune(backbone, fine_tuning_steps=5),
    }[name]()


METHODS = [
    "protonet",
    "matching",
    "matching_fce",
    "relation",
    "siamese",
    "triplet",
    "triplet_semi",
    "contrastive",
    "maml",
    "fomaml",
    "finetune",
]


@pytest.mark.parametrize("name", METHODS)
def test_loss_falls(name, omniglot):
    method = make(name)
    optimizer = torch.optim.Adam(method.parameters(), lr=2e-3)
    if method.training_mode == "episodic":
        batches = list(EpisodeSampler(omniglot.labels, N_WAY, N_SHOT, N_QUERY, 4, seed=0))
    else:
        batches = list(PKBatchSampler(omniglot.labels, p=6, k=4, n_batches=4, seed=0))
    meta_batch = 2 if name in ("maml", "fomaml") else 1
    losses = []
    method.train()
    for step in range(12):
        optimizer.zero_grad()
        total = 0.0
        for task in range(meta_batch):
            x, y = omniglot.gather(batches[(step * meta_batch + task) % len(batches)])
            if method.training_mode == "episodic":
                loss, scores = method.episode_loss(*split_episode(x, N_WAY, N_SHOT, N_QUERY))
                assert scores.shape == (N_WAY * N_QUERY, N_WAY)
            else:
                loss = method.batch_loss(x, y)
            (loss / meta_batch).backward()
            total += loss.item() / meta_batch
        optimizer.step()
        losses.append(total)
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.9 * first, losses


@pytest.mark.parametrize("name", METHODS)
def test_classifies_an_episode_in_eval_mode(name, omniglot):
    method = make(name).eval()
    episode = next(iter(EpisodeSampler(omniglot.labels, N_WAY, 2, 2, 1, seed=3)))
    x, _ = omniglot.gather(episode)
    s, sl, q, ql = split_episode(x, N_WAY, 2, 2)
    with torch.no_grad():
        method.process_support_set(s, sl)
        scores = method(q)
    assert scores.shape == (N_WAY * 2, N_WAY) and torch.isfinite(scores).all()


def test_maml_inner_loop_adapts_without_touching_the_initialisation(omniglot):
    method = make("maml").eval()
    method.inner_lr = 0.05  # small steps: an untrained network overshoots with the paper's 0.4
    before = {k: v.clone() for k, v in method.state_dict().items()}
    x, _ = omniglot.gather(next(iter(EpisodeSampler(omniglot.labels, N_WAY, 1, 3, 1))))
    s, sl, q, ql = split_episode(x, N_WAY, 1, 3)
    with torch.no_grad():
        method.process_support_set(s, sl)
    support_loss_after = torch.nn.functional.cross_entropy(method(s), sl)
    method.adapted = method.initial_parameters(N_WAY, s.device)
    support_loss_before = torch.nn.functional.cross_entropy(method(s), sl)
    assert support_loss_after < support_loss_before
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())  # batch-norm buffers included


def test_maml_zero_head_serves_any_number_of_ways(omniglot):
    backbone = Conv4()
    method = MAML(backbone, 64, N_WAY, head="zero", eval_inner_steps=2).eval()
    x, _ = omniglot.gather(next(iter(EpisodeSampler(omniglot.labels, 10, 1, 1, 1))))
    s, sl, q, _ = split_episode(x, 10, 1, 1)
    method.process_support_set(s, sl)
    assert method(q).shape == (10, 10)
    with pytest.raises(ValueError):
        make("maml").process_support_set(s, sl)  # a learned 5-way head cannot do 10 ways


def test_finetune_changes_the_prototype_classifier(omniglot):
    method = make("finetune").eval()
    x, _ = omniglot.gather(next(iter(EpisodeSampler(omniglot.labels, N_WAY, 1, 3, 1))))
    s, sl, q, _ = split_episode(x, N_WAY, 1, 3)
    method.process_support_set(s, sl)
    tuned = method(q)
    method.fine_tuning_steps = 0
    assert not torch.allclose(tuned, method(q))
