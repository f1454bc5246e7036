"""Tiny real data for the few-shot tests: Omniglot drawings and LFW photos committed under tests/fixtures."""

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OMNIGLOT = FIXTURES / "omniglot" / "background"
LAKE = FIXTURES / "omniglot" / "one-shot-classification"
LFW = FIXTURES / "lfw"


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def omniglot():
    from models.fewshot.datasets.omniglot import load_omniglot

    return load_omniglot([OMNIGLOT])


@pytest.fixture(scope="session")
def dlib_ckpt():
    from models.encoders.sources import dlib_checkpoint

    return dlib_checkpoint()


@pytest.fixture(scope="session")
def face_chips(tmp_path_factory, dlib_ckpt) -> Path:
    """The fixture photos detected and aligned once to dlib's template (exercises the chip cache)."""
    from models.fewshot.datasets.face_chips import prepare_face_chips

    cache = tmp_path_factory.mktemp("chips")
    meta = dlib_ckpt.metadata
    stats = prepare_face_chips(LFW, cache, meta.alignment_template, meta.input_size, progress=False)
    assert stats["new"] + stats["failed"] == stats["photos"]
    return cache
