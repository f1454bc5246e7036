"""Fixtures of the data-layer tests: a service on a given database, and embedded enrollment photos."""

import pytest

from app.core.config import Settings
from app.service import FaceService
from app.startup import prepare_deployment


def make_service(url, tmp_path, pipeline) -> FaceService:
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    db, _ = prepare_deployment(settings)
    service = FaceService(settings, pipeline, db)
    service.gallery_sync.reload()
    return service


@pytest.fixture(scope="module")
def prepared(pipeline, photos):
    """Enrollment photos decoded and embedded once for the module."""
    probe = FaceService(Settings(), pipeline, None)
    return {p: [probe.people.prepare(f.read_bytes()) for f in photos[p][:2]] for p in ("Emma_Watson", "Wen_Jiabao")}
