"""Real `faceshot serve` processes that tests kill, restart and hammer; and a TCP proxy that takes PostgreSQL away."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.testing.server import Server
from app.testing.tcp_proxy import TcpProxy  # noqa: F401  (tests import it from here)
from tests.api.conftest import make_client  # noqa: F401  (the real app, lifespan and all)


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
