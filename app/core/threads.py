"""How many compute threads a worker may use, and how idle ones wait.

On a shared 2-core host, two torch threads per worker made identify 3-15x slower: OpenMP's
idle threads spin for a while before sleeping, so every worker, faiss and the decoder pool
fight over cores the spinners hold. The defaults keep that from happening:

* a worker's share is the cores this *process* may run on (its CPU affinity and a container's
  CPU quota, not the host's core count), divided among the workers, at least one;
* each forward pass runs on one torch thread, and a worker runs as many photos at once as it has
  cores (``inference_slots``): measured through HTTP on 2 cores, 1 worker, 16 clients, that is 17.0
  identifies/s against 10.6 for one two-thread pass at a time, and a lone photo is no slower (72 ms
  against 75): the pipeline's small convolutions scale poorly over threads (bench/thread_policy.py);
* OpenMP threads sleep when idle (``OMP_WAIT_POLICY=PASSIVE``). The runtime reads it once, when
  it starts, so :func:`quiet_openmp` runs before torch or faiss is imported (``app/__init__``);
  an operator's own value wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def quiet_openmp(environ=os.environ) -> None:
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (``docker run --cpus``), or None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "150000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def cores_per_worker(workers: int) -> int:
    return max(1, usable_cores() // max(1, workers))


def threads_per_worker(workers: int, requested: int | None = None) -> int:
    """Torch threads of one forward pass: ``FACESHOT_TORCH_THREADS`` when set, else one (never more than the
    worker's cores)."""
    return requested or 1


def slots_per_worker(workers: int, threads: int, requested: int | None = None) -> int:
    """Photos a worker runs through the pipeline at once: ``FACESHOT_INFERENCE_SLOTS``, else its cores over the
    threads each pass uses."""
    return requested or max(1, cores_per_worker(workers) // max(1, threads))
