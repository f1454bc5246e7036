"""Exact flat search against faiss's scalar-quantised indexes at 100,000 prototypes, one query at a time.

The gallery uses an exact IndexFlatIP; one query over 100,000 x 128 float32 reads
51 MB, so on a 2-core machine it is memory-bound (~3-5 ms). This measures what
storing the prototypes as fp16 or 8-bit codes would save, and what it costs in
top-1 agreement and similarity error, before anyone trades exactness for it.

    .venv/bin/python bench/faiss_index_choice.py
"""

from __future__ import annotations

import time

import faiss
import numpy as np


def main() -> None:
    faiss.omp_set_num_threads(1)  # as the service searches one photo's faces
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100_000, 128)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(len(x), 300)] + 0.05 * rng.standard_normal((300, 128)).astype("float32")
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ip = faiss.METRIC_INNER_PRODUCT
    indexes = {
        "flat (exact)": faiss.IndexFlatIP(128),
        "fp16 codes": faiss.IndexScalarQuantizer(128, faiss.ScalarQuantizer.QT_fp16, ip),
        "8-bit codes": faiss.IndexScalarQuantizer(128, faiss.ScalarQuantizer.QT_8bit, ip),
    }
    reference = None
    for name, index in indexes.items():
        if not index.is_trained:
            index.train(x)
        index.add(x)
        ms, top = [], []
        for query in q:
            t0 = time.perf_counter()
            sims, ids = index.search(query[None], 5)
            ms.append((time.perf_counter() - t0) * 1000)
            top.append((sims[0, 0], ids[0, 0]))
        reference = reference or top
        agree = np.mean([a[1] == b[1] for a, b in zip(top, reference)])
        error = max(abs(a[0] - b[0]) for a, b in zip(top, reference))
        print(
            f"{name:13} p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
            f"top-1 same as exact {agree:.3f}, largest similarity error {error:.1e}"
        )


if __name__ == "__main__":
    main()
