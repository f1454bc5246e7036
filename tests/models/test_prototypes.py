"""The evaluation measures the prototypes the service serves: one rule, the same numbers (issue 12, point 5)."""

from __future__ import annotations

import numpy as np

from app.gallery.index import Gallery as ServiceGallery
from models.evaluation.openset import EmbeddedPhotos, Split, nearest
from models.prototypes import prototype


def test_evaluation_and_service_build_the_same_prototypes_and_distances():
    rng = np.random.default_rng(0)
    dim, people, shots = 128, 12, 3
    # unnormalised, as an encoder's raw output may be: the rule normalises first
    emb = rng.normal(size=(people * 4, dim)).astype(np.float32) * rng.uniform(0.5, 2.0, size=(people * 4, 1))
    by_person = {f"p{i:02d}": list(range(4 * i, 4 * i + 4)) for i in range(people)}
    data = EmbeddedPhotos(by_person, emb, np.ones(len(emb), bool))
    split = Split(known=sorted(by_person), support={p: idx[:shots] for p, idx in by_person.items()},
                  queries=[(idx[3], lab) for lab, (p, idx) in enumerate(sorted(by_person.items()))], strangers=[])
    queries = np.array([q for q, _ in split.queries])

    for s in (1, 2, 3):
        best, dist = nearest(data, split, s, queries)
        service = ServiceGallery(dim, use_gpu=False)
        support = [i for p in split.known for i in split.support[p][:s]]
        service.process_support_set(emb[support], [p for p in split.known for _ in range(s)],
                                    {p: p for p in split.known})
        for p in split.known:  # the stored prototype is the rule's
            np.testing.assert_allclose(service.snapshot()[p][2], prototype(emb[split.support[p][:s]]), atol=1e-6)
        answers = service.forward(emb[queries], k=1)
        assert [a[0].person_id for a in answers] == [split.known[b] for b in best]
        np.testing.assert_allclose([a[0].distance for a in answers], dist, atol=1e-5)


def test_the_vectorised_build_is_the_rule():
    from models.prototypes import prototypes, prototypes_by_label

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(40, 8)).astype(np.float32) * rng.uniform(0.5, 3, size=(40, 1))
    labels = [f"p{int(i)}" for i in rng.integers(0, 9, size=40)]
    people, protos, counts = prototypes_by_label(emb, labels)
    groups = [[i for i, lab in enumerate(labels) if lab == p] for p in people]
    np.testing.assert_allclose(protos, prototypes(emb, groups), atol=1e-6)
    assert counts.tolist() == [len(g) for g in groups]
