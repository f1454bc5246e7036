"""Large galleries search fp16 codes then re-rank exactly: the answers must be the exact search's."""

import numpy as np

from app.gallery.index import Gallery, normalise


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


def test_writes_in_place_free_rows_and_compaction_keep_the_exact_answers():
    """Upserts overwrite a row, removals free one for the next person, many removals compact: O(1) writes
    (issue 15) that must answer as a fresh build of the same people does."""
    rng = np.random.default_rng(1)
    dim, n = 16, 300
    g = Gallery(dim, use_gpu=False, coarse_from=10**9)
    people = [f"p{i}" for i in range(n)]
    g.process_support_set(rng.standard_normal((n, dim)).astype(np.float32), people, {p: p for p in people})
    model = {p: v for p, v in g.snapshot().items()}
    rows_before = g._exact.ntotal
    for step in range(400):  # a random mix of re-enrolments, new people and removals
        action = rng.integers(3)
        if action == 0 and model:
            p = sorted(model)[rng.integers(len(model))]
            shots = int(rng.integers(1, 4))
            emb = rng.standard_normal((shots, dim)).astype(np.float32)
            g.upsert(p, p.upper(), emb)
            model[p] = (p.upper(), shots, normalise(normalise(emb).mean(0)))
        elif action == 1:
            p = f"new{step}"
            emb = rng.standard_normal((1, dim)).astype(np.float32)
            g.upsert(p, p, emb)
            model[p] = (p, 1, normalise(emb[0]))
        elif model:
            p = sorted(model)[rng.integers(len(model))]
            g.remove(p)
            del model[p]
    assert len(g) == len(model) and g._exact.ntotal <= rows_before + 150  # freed rows were reused or compacted
    snap = g.snapshot()
    assert set(snap) == set(model)
    for p, (name, shots, proto) in model.items():
        assert snap[p][:2] == (name, shots) and np.allclose(snap[p][2], proto, atol=1e-6)
    fresh = Gallery(dim, use_gpu=False, coarse_from=10**9)
    fresh.process_support_set(np.stack([v for _, _, v in model.values()]), list(model),
                              {p: m[0] for p, m in model.items()})
    queries = rng.standard_normal((50, dim)).astype(np.float32)
    for a, b in zip(g.forward(queries, k=5), fresh.forward(queries, k=5)):
        assert [(m.person_id, m.name) for m in a] == [(m.person_id, m.name) for m in b]
        assert np.allclose([m.distance for m in a], [m.distance for m in b], atol=1e-5)
    counts = {1: 0, 2: 0, 3: 0}
    for _, shots, _ in model.values():
        counts[min(shots, 3)] += 1
    assert g.composition() == counts


def test_a_freed_row_is_never_a_candidate_even_when_fewer_people_than_k_remain():
    g = Gallery(4, use_gpu=False)
    g.process_support_set(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"], {p: p for p in "abcd"})
    g.remove("b")
    g.remove("c")
    answer = g.forward(np.array([0, 1, 0, 0], np.float32), k=5)[0]
    assert [m.person_id for m in answer] == ["a", "d"] or [m.person_id for m in answer] == ["d", "a"]
    g.upsert("e", "e", np.array([[0, 1, 0, 0]], np.float32))  # takes a freed row
    assert g.forward(np.array([0, 1, 0, 0], np.float32), k=1)[0][0].person_id == "e"
    assert g._exact.ntotal == 4


def test_fast_scan_codes_find_genuine_matches_exactly_and_follow_writes():
    """Issue 15: from ``fast_from`` people, PQ fast-scan codes name candidates that are re-ranked exactly, with every
    row written since the codes were made; the codes are made in the background, and writes never wait for them."""
    rng = np.random.default_rng(2)
    dim, n = 16, 3000
    vectors = normalise(rng.standard_normal((n, dim)))
    people = [f"p{i}" for i in range(n)]
    g = Gallery(dim, use_gpu=False, coarse_from=10**9, fast_from=1000)
    g.process_support_set(vectors, people, {p: p for p in people})
    assert g.fast_ready.wait(60) and g._fast is not None  # an event, not a sleep
    g.upsert("p5", "P5", vectors[7:8] * -1)  # in place: the row's code is now wrong, the row is stale
    g.upsert("late", "LATE", vectors[11:12] + 0.01)  # appended after the codes
    g.remove("p9")
    protos = {p: v for p, v in zip(people, vectors) if p not in ("p5", "p9")}
    protos["p5"], protos["late"] = normalise(-vectors[7]), normalise(vectors[11] + 0.01)
    probes = list(range(0, n, 37)) + [7, 9, 11]
    noisy = normalise(vectors[probes] + 0.05 * rng.standard_normal((len(probes), dim)))
    noisy = np.concatenate([noisy, normalise(-vectors[7:8])])  # someone looking like p5's new prototype
    for q, answer in zip(noisy, g.forward(noisy, k=3)):
        expected = brute_force(protos, q, 3)
        assert answer[0].person_id == expected[0][0]
        assert abs(answer[0].distance - expected[0][1]) < 1e-3
        assert all(m.person_id != "p9" for m in answer)
