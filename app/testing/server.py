"""One real `faceshot serve` process that a test or a bench starts, kills -9 and restarts (no pytest here)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.paths import API_PREFIX

ROOT = Path(__file__).resolve().parents[2]
FACESHOT = str(Path(sys.executable).parent / "faceshot")
ADMIN = "reliability-admin-key-0123456789"
HEADERS = {"X-API-Key": ADMIN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, port: int, timeout: float = 90, output=lambda: "") -> None:
    """Poll a starting `faceshot serve` until /ready answers 200; fail with its output if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{output()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{API_PREFIX}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a starting server, not synchronising on a guess
    raise AssertionError("server did not become ready")


class Server:
    """One `faceshot serve` on 127.0.0.1, restartable on the same data directory, database and port."""

    def __init__(self, data_dir: Path, database_url: str | None = None, workers: int = 1):
        self.data_dir, self.database_url, self.workers = data_dir, database_url, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self, crash_at: str | None = None, timeout: float = 120, env: dict | None = None,
              wrapper: list[str] = ()) -> float:
        """Start it and wait until /ready answers; returns the seconds that took.

        ``wrapper``: a command the server is started under (it ends by running its arguments).
        """
        env = {**os.environ, "FACESHOT_DATA_DIR": str(self.data_dir), "FACESHOT_ADMIN_KEY": ADMIN,
               "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1", **(env or {})}
        env.pop("FACESHOT_CRASH_AT", None)
        if crash_at:
            env["FACESHOT_CRASH_AT"] = crash_at
        if self.database_url:
            env["FACESHOT_DATABASE_URL"] = self.database_url
        else:
            env.pop("FACESHOT_DATABASE_URL", None)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [*wrapper, FACESHOT, "serve", "--port", str(self.port), "--workers", str(self.workers),
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(self.proc, self.port, timeout, output=lambda: self.log.read_text()[-3000:])
        return time.monotonic() - t0

    def kill(self) -> None:
        """kill -9 the whole process group (with several workers: the supervisor and every worker)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=HEADERS, timeout=timeout)
