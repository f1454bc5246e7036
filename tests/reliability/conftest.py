"""Real `faceshot serve` processes that tests kill, restart and hammer; and a TCP proxy that takes PostgreSQL away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
FACESHOT = str(Path(sys.executable).parent / "faceshot")
ADMIN = "reliability-admin-key-0123456789"
HEADERS = {"X-API-Key": ADMIN}


class Server:
    """One `faceshot serve` on 127.0.0.1, restartable on the same data directory, database and port."""

    def __init__(self, data_dir: Path, database_url: str | None = None, workers: int = 1):
        self.data_dir, self.database_url, self.workers = data_dir, database_url, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, crash_at: str | None = None, timeout: float = 120, env: dict | None = None) -> None:
        env = {**os.environ, "FACESHOT_DATA_DIR": str(self.data_dir), "FACESHOT_ADMIN_KEY": ADMIN,
               "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1", **(env or {})}
        env.pop("FACESHOT_CRASH_AT", None)
        if crash_at:
            env["FACESHOT_CRASH_AT"] = crash_at
        if self.database_url:
            env["FACESHOT_DATABASE_URL"] = self.database_url
        else:
            env.pop("FACESHOT_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [FACESHOT, "serve", "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(self.proc, self.port, timeout, output=lambda: self.log.read_text()[-3000:])

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


@pytest.fixture
def server_factory():
    made: list[Server] = []

    def make(data_dir: Path, database_url: str | None = None, workers: int = 1) -> Server:
        s = Server(data_dir, database_url, workers)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a real server; ``cut()`` drops every connection and refuses new
    ones (the database host went away), ``restore()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
