"""A real `faceshot serve` for the clients written for CompreFace (its SDK, Double Take's detector), one a module;
and the real app in-process."""

from __future__ import annotations

import pytest

from app.testing.server import Server
from tests.api.conftest import make_client  # noqa: F401  (the real app, lifespan and all)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("compat") / "data")
    s.start(env={"FACESHOT_RATE_LIMIT": ""})
    yield s
    s.stop()
