"""Exact flat search against faiss's scalar-quantised indexes at 100,000 prototypes, one query at a time.

The gallery uses an exact IndexFlatIP; one query over 100,000 x 128 float32 reads
51 MB, so on a 2-core machine it is memory-bound (~3-5 ms). This measures what
storing the prototypes as fp16 or 8-bit codes would save, and what it costs in
top-1 agreement and similarity error, before anyone trades exactness for it.

    .venv/bin/python bench/faiss_index_choice.py
"""

import faiss, numpy as np, time
faiss.omp_set_num_threads(1)
rng = np.random.default_rng(0)
X = rng.standard_normal((100000, 128)).astype('float32'); X /= np.linalg.norm(X, axis=1, keepdims=True)
Q = X[rng.choice(100000, 300)] + 0.05 * rng.standard_normal((300, 128)).astype('float32'); Q /= np.linalg.norm(Q, axis=1, keepdims=True)
ref = None
for name, idx in [('flat', faiss.IndexFlatIP(128)), ('sq_fp16', faiss.IndexScalarQuantizer(128, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)), ('sq8', faiss.IndexScalarQuantizer(128, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT))]:
    if not idx.is_trained: idx.train(X)
    idx.add(X)
    ts = []; res = []
    for q in Q:
        t = time.perf_counter(); D, I = idx.search(q[None], 5); ts.append((time.perf_counter() - t) * 1000); res.append((D[0], I[0]))
    if ref is None: ref = res
    agree = np.mean([a[1][0] == b[1][0] for a, b in zip(res, ref)]); derr = np.max([abs(a[0][0] - b[0][0]) for a, b in zip(res, ref)])
    print(name, 'p50 %.2f p95 %.2f ms' % (np.percentile(ts, 50), np.percentile(ts, 95)), 'top1 agree', agree, 'max sim err', derr)
