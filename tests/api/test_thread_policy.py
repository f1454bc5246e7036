"""The thread policy (issue 15): a worker's share of cores comes from what the process may use, idle OpenMP
threads sleep, and the pipeline's slots follow the threads."""

from __future__ import annotations

import os
import subprocess
import sys

from app.core.config import Settings
from app.core.threads import cgroup_cpu_limit, cores_per_worker, threads_per_worker, usable_cores


def test_a_container_quota_is_read_in_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 2.0
    assert cgroup_cpu_limit(tmp_path / "nothing") is None


def test_threads_never_exceed_the_cores_this_process_may_use():
    cores = len(os.sched_getaffinity(0))
    assert usable_cores() <= cores
    assert cores_per_worker(1) == usable_cores() and cores_per_worker(cores * 4) == 1
    assert threads_per_worker(1) == 1 and threads_per_worker(2, requested=3) == 3  # an operator's choice wins
    assert Settings(workers=1).effective_inference_slots() == usable_cores()
    assert Settings(workers=1, torch_threads=usable_cores()).effective_inference_slots() == 1
    assert Settings(workers=1, inference_slots=3).effective_inference_slots() == 3


def test_pinned_to_one_core_a_worker_runs_one_photo_at_a_time():
    code = "from app.core.config import Settings; s = Settings(); print(s.effective_inference_slots())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESHOT_")}
    for cpus, slots in (("0", "1"), ("0,1", "2")):
        out = subprocess.run(["taskset", "-c", cpus, sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env)
        assert out.stdout.strip() == slots


def test_idle_openmp_threads_sleep_unless_the_operator_says_otherwise():
    code = "import app, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "PASSIVE"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "OMP_WAIT_POLICY": "ACTIVE"}).stdout.strip() == "ACTIVE"
