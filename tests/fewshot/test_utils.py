import torch

from models.fewshot.datasets.omniglot import split_omniglot
from models.fewshot.utils import compute_prototypes, mean_confidence_interval, relabel, squared_euclidean_distances
from models.identities import split_identities


def test_prototypes_are_class_means():
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 0])
    assert torch.allclose(compute_prototypes(x, y), torch.tensor([[1.0, 1.0], [10.0, 0.0]]))


def test_squared_distances_match_cdist():
    a, b = torch.randn(5, 7), torch.randn(3, 7)
    assert torch.allclose(squared_euclidean_distances(a, b), torch.cdist(a, b) ** 2, atol=1e-5)
    assert (squared_euclidean_distances(a, a).diagonal() == 0).all()


def test_confidence_interval_is_196_standard_errors():
    values = [0.0, 1.0] * 300
    mean, ci = mean_confidence_interval(values)
    assert mean == 0.5
    assert abs(ci - 1.96 * torch.tensor(values, dtype=torch.float64).std().item() / 600**0.5) < 1e-12


def test_relabel_in_order_of_appearance():
    new, original = relabel(torch.tensor([7, 3, 7, 9]))
    assert new.tolist() == [0, 1, 0, 2] and original.tolist() == [7, 3, 9]


def test_identity_split_is_disjoint_seeded_and_stable():
    names = [f"person_{i}" for i in range(1000)]
    train, val = split_identities(names, 0.3, seed=0)
    assert not set(train) & set(val) and len(train) + len(val) == 1000
    assert 250 < len(val) < 350
    assert split_identities(names, 0.3, seed=0) == (train, val)
    assert split_identities(names, 0.3, seed=1)[1] != val
    # Adding people never moves anyone already there across the split.
    _, val_more = split_identities(names + ["someone_new", "another"], 0.3, seed=0)
    assert set(val) <= set(val_more)


def test_omniglot_split_is_character_disjoint_and_covers_alphabets():
    names = [f"A{a}/character{c:02d}" for a in range(4) for c in range(1, 21)]
    split = split_omniglot(names, test_fraction=0.25, val_fraction=0.1, seed=0)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(names)
    assert len(split["test"]) == 4 * 5 and len(split["val"]) == 4 * 2
    assert {n.split("/")[0] for n in split["test"]} == {"A0", "A1", "A2", "A3"}
    by_alpha = split_omniglot(names, test_fraction=0.25, val_fraction=0.25, seed=0, by="alphabet")
    alphabets = {k: {n.split("/")[0] for n in v} for k, v in by_alpha.items()}
    assert not alphabets["train"] & alphabets["test"] and len(alphabets["test"]) == 1
