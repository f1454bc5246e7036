"""The service's gallery at 10^3..10^6 people: build, upsert, insert, remove, search and memory, against a
reference version of app/gallery.py (default: the last commit before the O(1) writes) in the same run.

Random unit prototypes (128-d, one photo each), one thread (OMP_NUM_THREADS=1 is set here before faiss
loads). For each size the two versions take turns: build, then 100 timed writes of each kind, then 200
top-5 searches. Memory is the process's RSS growth over the build (the float32 and fp16 copies).

    PYTHONPATH=. .venv/bin/python bench/gallery_scale.py --sizes 1000 10000 100000 1000000 --ref 38918f6
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.prototypes import normalise  # noqa: E402


def load_reference(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:app/gallery.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "gallery_reference.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("gallery_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gallery_reference"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def ms(fn, reps: int) -> list[float]:
    out = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(module, n: int, vectors: np.ndarray, queries: np.ndarray, rng) -> dict:
    gc.collect()
    before = rss_mb()
    g = module.Gallery(vectors.shape[1], use_gpu=False)
    people = [f"p{i}" for i in range(n)]
    t0 = time.perf_counter()
    g.process_support_set(vectors[:n], people, {p: p for p in people})
    build = time.perf_counter() - t0
    memory = rss_mb() - before
    fresh = rng.standard_normal((100, 2, vectors.shape[1])).astype(np.float32)
    upsert = ms(lambda i: g.upsert(people[(i * 7919) % n], "x", fresh[i]), 100)
    insert = ms(lambda i: g.upsert(f"new{i}", "new", fresh[i, :1]), 100)
    remove = ms(lambda i: g.remove(people[(i * 104729 + 1) % n]), 100)
    ready = getattr(g, "fast_ready", None)  # the current gallery makes its fast-scan codes in the background
    t0 = time.perf_counter()
    if ready is not None:
        ready.wait(120)
    codes_ready = time.perf_counter() - t0
    g.forward(queries[:5], k=5)
    search = ms(lambda i: g.forward(queries[i], k=5), len(queries))
    # a genuine query (a prototype plus noise, distance ~0.3) must find its person
    touched = {(i * 7919) % n for i in range(100)} | {(i * 104729 + 1) % n for i in range(100)}
    probe = np.array([i for i in rng.choice(n, 300, replace=False) if i not in touched][:100])
    noisy = vectors[probe] * 0.95 + 0.31 * normalise(rng.standard_normal((100, vectors.shape[1])))
    found = sum(bool(m) and m[0].person_id == f"p{i}" for i, m in zip(probe, (g.forward(x, k=1)[0] for x in noisy)))
    return {"build_s": round(build, 3), "rss_growth_mb": round(memory, 1),
            "upsert_ms_p50": round(float(np.median(upsert)), 3), "upsert_ms_max": round(max(upsert), 2),
            "insert_ms_p50": round(float(np.median(insert)), 3), "insert_ms_max": round(max(insert), 2),
            "remove_ms_p50": round(float(np.median(remove)), 3), "remove_ms_max": round(max(remove), 2),
            "codes_ready_after_build_s": round(codes_ready, 2), "genuine_found_of_100": int(found),
            "search_ms_p50": round(float(np.median(search)), 2),
            "search_ms_p95": round(float(np.percentile(search, 95)), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--ref", default="38918f6", help="commit whose app/gallery.py is the reference")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from app.gallery import index as current

    versions = {"reference": load_reference(args.ref), "current": current}
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((max(args.sizes), args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((200, args.dim)).astype(np.float32)
    report = {"ref": args.ref, "threads": os.environ["OMP_NUM_THREADS"], "results": []}
    for n in args.sizes:
        for name, module in versions.items():
            row = {"people": n, "version": name, **measure(module, n, vectors, queries, rng)}
            report["results"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
