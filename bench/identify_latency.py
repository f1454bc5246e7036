"""Identify latency through the real HTTP service, and gallery search time at 100,000 people.

Starts `faceshot serve` on a loopback port with a fresh data directory,
enrolls a few people, then sends a bounded number of sequential identify
requests with a one-face 250x250 photo. Separately times Gallery.forward over
100,000 random unit prototypes (the search part alone).

    .venv/bin/python bench/identify_latency.py --photos tests/fixtures/lfw --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def percentiles(ms: list[float]) -> dict:
    a = np.array(ms)
    return {k: round(float(np.percentile(a, q)), 2) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def http_latency(photos: Path, n: int, port: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix="faceshot-bench-"))
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data), "FACESHOT_ADMIN_KEY": "bench-admin-key-0123456789abcdef"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "faceshot"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"X-API-Key": "bench-admin-key-0123456789abcdef"}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("service did not start")
            time.sleep(0.2)
        people = [d for d in sorted(photos.iterdir()) if d.is_dir() and len(list(d.glob("*.jpg"))) >= 3]
        for d in people:
            files = [("images", (f.name, f.read_bytes())) for f in sorted(d.glob("*.jpg"))[:2]]
            httpx.post(f"{base}/enroll", data={"name": d.name}, files=files, headers=headers, timeout=60)
        probes = [sorted(d.glob("*.jpg"))[2].read_bytes() for d in people]
        with httpx.Client(headers=headers, timeout=30) as client:
            # one-face photos only: the figure is for a photo of one person
            probes = [
                p
                for p in probes
                if len(client.post(f"{base}/detect", files={"image": ("q.jpg", p)}).json()["faces"]) == 1
            ]
            for p in probes:  # warm-up
                client.post(f"{base}/identify", files={"image": ("q.jpg", p)})
            wall, server = [], []
            for i in range(n):
                t0 = time.perf_counter()
                r = client.post(f"{base}/identify", files={"image": ("q.jpg", probes[i % len(probes)])})
                wall.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
                server.append(r.json()["took_ms"])
        return {
            "requests": n,
            "enrolled": len(people),
            "client_ms": percentiles(wall),
            "server_took_ms": percentiles(server),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def search_latency(people: int, queries: int, dim: int = 128) -> dict:
    from app.gallery.index import Gallery

    rng = np.random.default_rng(0)
    g = Gallery(dim)
    ids = [f"p{i}" for i in range(people)]
    t0 = time.perf_counter()
    g.process_support_set(rng.normal(size=(people, dim)).astype(np.float32), ids, {i: i for i in ids})
    build = (time.perf_counter() - t0) * 1000
    q = rng.normal(size=(queries, dim)).astype(np.float32)
    g.forward(q[:5], k=5)
    ms = []
    for row in q:
        t0 = time.perf_counter()
        g.forward(row, k=5)
        ms.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    g.upsert("p1", "p1", rng.normal(size=(2, dim)).astype(np.float32))
    upsert = (time.perf_counter() - t0) * 1000
    return {
        "people": people,
        "queries": queries,
        "index_device": g.device,
        "build_ms": round(build, 1),
        "upsert_one_ms": round(upsert, 2),
        "search_top5_ms": percentiles(ms),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", default=str(ROOT / "tests" / "fixtures" / "lfw"))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    report = {
        "search": [search_latency(50, 500), search_latency(100_000, 500)],
        "http_identify": http_latency(Path(args.photos), args.requests, args.port),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
