import pytest
import torch

from models.errors import TrainingError
from models.fewshot.samplers import EpisodeSampler, PKBatchSampler, split_episode


def test_episode_layout_and_labels():
    labels = [c for c in range(10) for _ in range(6)]
    sampler = EpisodeSampler(labels, n_way=4, n_shot=2, n_query=3, n_episodes=5, seed=1)
    episodes = list(sampler)
    assert len(episodes) == 5 and all(len(e) == 4 * 5 for e in episodes)
    for episode in episodes:
        classes = [labels[i] for i in episode]
        assert len(set(classes)) == 4 and len(set(episode)) == len(episode)
        for block in range(4):  # each class's K + Q items are contiguous
            assert len(set(classes[block * 5 : block * 5 + 5])) == 1
    assert list(EpisodeSampler(labels, 4, 2, 3, 5, seed=1)) == episodes
    x = torch.tensor([float(labels[i]) for i in episodes[0]]).view(-1, 1)
    s, sl, q, ql = split_episode(x, 4, 2, 3)
    assert s.shape == (8, 1) and q.shape == (12, 1)
    assert sl.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and ql.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    # support and query of the same label come from the same original class
    assert all(s[sl == c].unique().tolist() == q[ql == c].unique().tolist() for c in range(4))


def test_episode_sampler_skips_small_classes_and_refuses_too_few():
    labels = [0] * 5 + [1] * 5 + [2] * 2
    assert set(EpisodeSampler(labels, 2, 1, 3, 1).classes) == {0, 1}
    with pytest.raises(ValueError):
        EpisodeSampler(labels, 3, 1, 3, 1)


def test_epochs_differ():
    labels = [c for c in range(20) for _ in range(5)]
    sampler = EpisodeSampler(labels, 5, 1, 1, 3, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_pk_batches():
    labels = [c for c in range(8) for _ in range(4)] + [99]
    batches = list(PKBatchSampler(labels, p=3, k=2, n_batches=4, seed=0))
    assert len(batches) == 4
    for batch in batches:
        classes = [labels[i] for i in batch]
        assert len(batch) == 6 and len(set(classes)) == 3 and 99 not in classes
        assert all(classes.count(c) == 2 for c in set(classes))


def test_too_few_classes_names_the_short_labels_and_the_numbers():
    labels = [0] * 5 + [1] * 2 + [2] * 1
    with pytest.raises(TrainingError) as caught:
        EpisodeSampler(labels, 2, 1, 3, 1)
    message = str(caught.value)
    assert "2-way 1-shot 3-query episodes need 2 classes with >= 4 items; the data has 1" in message
    assert "label 1 has 2 items" in message and "label 2 has 1 item;" in message and "label 0" not in message
    with pytest.raises(TrainingError, match=r"P x K batches need 3 classes with >= 2 items; the data has 2 \(label 9 "):
        PKBatchSampler([0, 0, 1, 1, 9], p=3, k=2, n_batches=1)
