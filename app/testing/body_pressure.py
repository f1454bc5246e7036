"""A large JSON photo body sent to a running `faceshot serve` while /health is timed (issue 26, point 1).

Shared by the regression test and ``bench/json_body_pressure.py``: what the review sent (150 MB of
``"QU QU QU …"`` as `image`, one string per token once split), how the worker's peak memory grew, how long
/health took meanwhile.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

TOKEN = b"QU "


@dataclass
class Pressure:
    status: int
    code: str | None
    seconds: float  # until the answer came
    health_max_s: float  # the slowest /health answer while the body was in flight
    health_calls: int
    peak_rss_growth_mb: float | None  # VmHWM after minus before (None: no /proc)


def peak_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def json_body_pressure(base_url: str, key: str, pid: int, total_mb: int = 150, chunk_kb: int = 1024,
                       declare_length: bool = False) -> Pressure:
    """POST ``{"image": "QU QU …"}`` of ``total_mb`` to /identify (chunked, or with its Content-Length), timing
    /health from another thread until the answer comes."""
    body_len = total_mb * 2**20
    head, tail = b'{"image": "', b'"}'
    chunk = TOKEN * (chunk_kb * 1024 // len(TOKEN))
    n_chunks = (body_len - len(head) - len(tail)) // len(chunk)

    def body():
        yield head
        for _ in range(n_chunks):
            yield chunk
        yield tail

    done = threading.Event()
    health: list[float] = []

    def poll():
        with httpx.Client(timeout=60) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                c.get(f"{base_url}/health")
                health.append(time.perf_counter() - t0)
                done.wait(0.05)  # a poll every 50 ms, not a synchronisation

    before = peak_rss_kb(pid)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(len(head) + n_chunks * len(chunk) + len(tail))
    t0 = time.perf_counter()
    try:
        with httpx.Client(timeout=300) as c:
            r = c.post(f"{base_url}/identify", content=body(), headers=headers)
            status = r.status_code
            code = r.json().get("error", {}).get("code") if r.headers.get("content-type", "").startswith(
                "application/json") else None
    except httpx.HTTPError:
        status, code = 0, "connection closed"  # the server may close the connection on a refused body
    seconds = time.perf_counter() - t0
    done.set()
    poller.join(timeout=60)
    after = peak_rss_kb(pid)
    growth = (after - before) / 1024 if before is not None and after is not None else None
    return Pressure(status, code, seconds, max(health, default=0.0), len(health), growth)
