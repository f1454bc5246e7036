"""Fixtures shared by every test: the real face photos and one pipeline per session."""

import os
import uuid
from contextlib import contextmanager
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


PG_URL = os.environ.get("FACESHOT_TEST_POSTGRES_URL")
PG_HELP = "set FACESHOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test to run"


@contextmanager
def fresh_postgres_schema():
    """A URL of the test PostgreSQL whose search_path is a new, empty schema (a fresh database, in
    effect), dropped afterwards."""
    if not PG_URL:
        pytest.skip(PG_HELP)
    from sqlalchemy import create_engine, text

    schema = f"faceshot_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        _drop_schema(admin, schema)
        admin.dispose()


def _drop_schema(admin, schema: str, attempts: int = 5) -> None:
    """A test's app may still be closing (fixtures end in reverse order: one that asked for make_client before
    database_url has its schema dropped first), and its background thread's next query then deadlocks with the
    DROP, which PostgreSQL resolves by failing one of them: the DROP tries again once that query has gone."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)  # the other side of the deadlock finishes or fails; not synchronising on a guess


@pytest.fixture
def postgres_url():
    """A URL of the test PostgreSQL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each data-layer test runs on a new SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faceshot.db'}"
    return request.getfixturevalue("postgres_url")
