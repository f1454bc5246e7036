"""Fixtures shared by every test: the real face photos and one pipeline per session."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lfw"


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def photos() -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(FIXTURES.iterdir()) if d.is_dir()}


@pytest.fixture(scope="session")
def pipeline():
    """The default offline encoder on the CPU, loaded once (it takes about a second)."""
    from models.pipeline import FacePipeline

    return FacePipeline.from_spec("dlib", "cpu")
