"""Large galleries search fp16 codes then re-rank exactly: the answers must be the exact search's."""

import numpy as np

from app.gallery import Gallery, normalise


def brute_force(protos: dict[str, np.ndarray], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    people = list(protos)
    sims = np.stack([protos[p] for p in people]) @ normalise(query)
    order = np.argsort(-sims, kind="stable")[:k]
    return [(people[i], float(np.sqrt(max(0.0, 2 - 2 * sims[i])))) for i in order]


def test_coarse_then_exact_search_gives_the_exact_answer():
    rng = np.random.default_rng(0)
    dim, n = 16, 600
    vectors = normalise(rng.standard_normal((n, dim)))
    vectors[1::50] = normalise(vectors[::50] + 1e-4 * rng.standard_normal((len(vectors[::50]), dim)))  # near-ties
    people = [f"p{i}" for i in range(n)]
    coarse = Gallery(dim, use_gpu=False, coarse_from=100)
    exact = Gallery(dim, use_gpu=False, coarse_from=10**9)
    for g in (coarse, exact):
        g.process_support_set(vectors, people, {p: p.upper() for p in people})
        for p in people[:40:3]:  # writes after the bulk load keep both indexes in step
            g.remove(p)
        g.upsert("new", "NEW", vectors[7:9])
    protos = {p: v for p, v in zip(people, vectors) if p not in set(people[:40:3])}
    protos["new"] = normalise(normalise(vectors[7:9]).mean(0))

    queries = normalise(vectors[rng.choice(n, 200)] + 0.3 * rng.standard_normal((200, dim)))
    queries[:10] = vectors[:10]  # some exactly on a prototype, some on a removed one
    got_coarse, got_exact = coarse.forward(queries, k=5), exact.forward(queries, k=5)
    for q, a, b in zip(queries, got_coarse, got_exact):
        expected = brute_force(protos, q, 5)
        assert [m.person_id for m in a] == [p for p, _ in expected] == [m.person_id for m in b]
        # float32 similarities near 1 turn into distances near 0 through a square root: 1e-3 there
        assert np.allclose([m.distance for m in a], [d for _, d in expected], atol=1e-3)
        assert np.allclose([m.distance for m in a], [m.distance for m in b], atol=1e-3)
    assert not any(m.person_id in set(people[:40:3]) for matches in got_coarse for m in matches)
