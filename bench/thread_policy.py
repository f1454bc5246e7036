"""Identify latency through a real `faceshot serve` under thread policies, with and without a neighbour.

The policies, each a fresh server on its own data directory with the same people enrolled:

* ``old``: what faceshot did before app/core/threads.py: os.cpu_count() // workers torch threads, OpenMP's
  default wait policy (idle threads spin);
* ``passive``: the cores this process may use // workers torch threads, ``OMP_WAIT_POLICY=PASSIVE``, one photo
  in the pipeline at a time;
* ``t1s1``: one torch thread, one photo at a time (what the tests run with);
* ``t1sN``: one torch thread, as many photos at once as the worker has cores (``FACESHOT_INFERENCE_SLOTS``).

A *neighbour* is another tenant of the host: one process spinning on a core for the whole
measurement. For each (workers, neighbour) the policies take turns in rounds of requests
(interleaved, so drift in the host's load hits them alike). Identify of a one-face 250x250
photo; sequential (latency) and 4 concurrent clients (throughput).

    PYTHONPATH=. .venv/bin/python bench/thread_policy.py --photos tests/fixtures/lfw --rounds 4 --per-round 15
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.testing.server import HEADERS, Server  # noqa: E402


def policy_env(policy: str, workers: int) -> dict[str, str]:
    """The server's environment for a policy, over the harness's (one OpenMP and torch thread by default)."""
    cores = max(1, (os.cpu_count() or 1) // workers)
    env = {"FACESHOT_RATE_LIMIT": ""}
    if policy == "old":
        env.update(FACESHOT_TORCH_THREADS=str(cores), OMP_NUM_THREADS=str(cores),
                   OMP_WAIT_POLICY="")  # quiet_openmp leaves a set value alone; libgomp treats "" as unset
    elif policy == "passive":
        env.update(FACESHOT_TORCH_THREADS=str(cores), OMP_NUM_THREADS=str(cores), FACESHOT_INFERENCE_SLOTS="1")
    elif policy == "t1s1":
        env.update(FACESHOT_TORCH_THREADS="1", FACESHOT_INFERENCE_SLOTS="1")
    elif policy == "t1sN":
        env.update(FACESHOT_TORCH_THREADS="1", FACESHOT_INFERENCE_SLOTS=str(cores))
    return env


def spin(stop) -> None:
    while not stop.is_set():
        pass


class PolicyServer:
    """A fresh `faceshot serve` (app/testing/server.py) under one policy, with the same people enrolled."""

    def __init__(self, policy: str, workers: int, photos: list[Path]):
        self.policy = policy
        self.server = Server(Path(tempfile.mkdtemp(prefix="faceshot-threads-")) / "data", workers=workers)
        self.server.start(timeout=180, env=policy_env(policy, workers))
        self.url = self.server.url
        self.client = self.server.client()
        for i, p in enumerate(photos):
            r = self.client.post(f"{self.url}/enroll", data={"name": f"p{i}"},
                                 files=[("images", (p.name, p.read_bytes()))])
            assert r.status_code in (201, 409, 422), r.text

    def identify(self, data: bytes, client=None) -> float:
        t0 = time.perf_counter()
        r = (client or self.client).post(f"{self.url}/identify", files={"image": ("q.jpg", data)})
        assert r.status_code == 200, r.text
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self.client.close()
        self.server.stop()


def concurrent(server: PolicyServer, probes: list[bytes], n: int, clients: int = 4) -> float:
    """Requests per second with ``clients`` threads each sending ``n // clients`` identifies."""
    def run(c):
        with httpx.Client(headers=HEADERS, timeout=120) as client:
            for i in range(n // clients):
                server.identify(probes[(c + i) % len(probes)], client)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    return (n // clients * clients) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(ROOT / "tests" / "fixtures" / "lfw"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--policies", nargs="+", default=["old", "passive", "t1s1", "t1sN"])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients for the throughput figure")
    ap.add_argument("--per-round", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = sorted(Path(args.photos).rglob("*.jpg"))
    enroll, probes = files[::2][:8], [f.read_bytes() for f in files[1::2][:8]]
    report = {"cores": os.cpu_count(), "results": []}
    for workers in args.workers:
        servers = [PolicyServer(p, workers, enroll) for p in args.policies]
        try:
            for s in servers:  # warm-up: every worker's first forward passes allocate
                for data in probes * workers:
                    s.identify(data)
            for neighbour in (False, True):
                stop = multiprocessing.Event()
                hog = multiprocessing.Process(target=spin, args=(stop,)) if neighbour else None
                if hog:
                    hog.start()
                lat = {s.policy: [] for s in servers}
                rps = {s.policy: [] for s in servers}
                for r in range(args.rounds):
                    for s in servers:
                        lat[s.policy] += [s.identify(probes[(r + i) % len(probes)]) for i in range(args.per_round)]
                        rps[s.policy].append(concurrent(s, probes, args.per_round * 2, args.clients))
                if hog:
                    stop.set()
                    hog.join()
                for s in servers:
                    a = np.array(lat[s.policy])
                    row = {"workers": workers, "neighbour": neighbour, "policy": s.policy,
                           "p50_ms": round(float(np.median(a)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
                           "rps_concurrent": round(float(np.median(rps[s.policy])), 2)}
                    report["results"].append(row)
                    print(json.dumps(row), flush=True)
        finally:
            for s in servers:
                s.close()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
