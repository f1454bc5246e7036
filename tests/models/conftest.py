from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lfw"


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def photos() -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(FIXTURES.iterdir()) if d.is_dir()}


@pytest.fixture(scope="session")
def pipeline():
    from models.pipeline import FacePipeline

    return FacePipeline.from_spec("dlib", "cpu")
