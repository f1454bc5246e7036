import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.core.config import Settings
from app.main import create_app

ADMIN = "test-admin-key-0123456789"


def make_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(data_dir=data_dir, admin_key=ADMIN, **{"torch_threads": 1, **overrides})


@pytest.fixture
def make_client(pipeline):
    """Start the real app (lifespan and all) on a data directory; several may run in one test."""
    opened = []

    def start(data_dir: Path, **overrides) -> TestClient:
        client = TestClient(create_app(make_settings(data_dir, **overrides), pipeline))
        client.__enter__()
        client.headers["X-API-Key"] = ADMIN
        opened.append(client)
        return client

    yield start
    for c in reversed(opened):
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client, tmp_path):
    return make_client(tmp_path / "data")


def upload(path: Path, field: str = "image"):
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()
