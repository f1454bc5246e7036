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


@pytest.fixture(scope="session")
def other_encoder(tmp_path_factory):
    """dlib's network with its last layer nudged: same geometry, another content hash, buildable offline."""
    import torch

    from models.encoders.checkpoint import EncoderCheckpoint
    from models.encoders.sources import dlib_checkpoint

    ckpt = dlib_checkpoint()
    state = dict(ckpt.state_dict)
    g = torch.Generator().manual_seed(0)
    state["fc.weight"] = state["fc.weight"] * (1 + 0.05 * torch.randn(state["fc.weight"].shape, generator=g))
    ckpt.metadata.name = "dlib-resnet-v1-nudged"
    path = tmp_path_factory.mktemp("encoder") / "nudged.pt"
    EncoderCheckpoint(ckpt.metadata, state).save(path)
    return path


def upload(path: Path, field: str = "image"):
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()
