"""No photo is ever deleted because the database looks empty (issue 11, point 1).

The data directory and the database carry one instance id; a start that pairs a data
directory with another database (a mistyped URL, a fresh PostgreSQL volume) is refused
and touches nothing, and the start-up sweep only ever looks at files the photo journal names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.instance import StorageMismatch
from app.core.tables import PhotoJournal
from app.main import create_app
from tests.conftest import fresh_postgres_schema

ADMIN = "photo-safety-admin-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def started(data_dir: Path, url: str, pipeline) -> TestClient:
    client = TestClient(create_app(Settings(data_dir=data_dir, database_url=url, admin_key=ADMIN, torch_threads=1),
                                   pipeline))
    client.__enter__()
    client.headers["X-API-Key"] = ADMIN
    return client


def enroll(client: TestClient, name: str, files: list[Path]) -> dict:
    r = client.post("/api/v1/enroll", data={"name": name},
                    files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in files])
    assert r.status_code == 201, r.text
    return r.json()


def age(folder: Path, seconds: float = 7200) -> None:
    """Make every stored photo look older than the sweep's one-hour grace."""
    then = time.time() - seconds
    for path in folder.glob("*.img"):
        os.utime(path, (then, then))


def test_a_wrong_or_fresh_database_never_costs_a_photo(database_url, tmp_path, pipeline, photos):
    data = tmp_path / "data"
    client = started(data, database_url, pipeline)
    person = enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    enroll(client, "Wen Jiabao", photos["Wen_Jiabao"][:2])
    client.__exit__(None, None, None)
    images = data / "images"
    kept = sorted(p.name for p in images.glob("*.img"))
    assert len(kept) == 4
    age(images)

    # the same data directory with another, empty database: an empty SQLite file at a mistyped path,
    # or (on PostgreSQL) a fresh volume
    wrong = fresh_postgres_schema() if database_url.startswith("postgresql") else nullcontext(
        f"sqlite:///{tmp_path / 'typo.db'}")
    with wrong as wrong_url:
        with pytest.raises(StorageMismatch, match="belongs to the faceshot database"):
            started(data, wrong_url, pipeline)
    assert sorted(p.name for p in images.glob("*.img")) == kept, "a refused start touched the photos"

    # the right database again: everything is there, photos included
    client = started(data, database_url, pipeline)
    face = person["faces"][0]
    r = client.get(f"/api/v1/people/{person['person']['id']}/faces/{face['id']}/image")
    assert r.status_code == 200 and r.content == photos["Emma_Watson"][0].read_bytes()
    assert client.get("/api/v1/people").json()["total"] == 2
    client.__exit__(None, None, None)


def test_a_data_directory_is_not_adopted_by_another_bound_database(tmp_path, pipeline, photos):
    """Two deployments, each bound: their data directories cannot be swapped."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, who in ((a, "Emma_Watson"), (b, "Wen_Jiabao")):
        client = started(folder, f"sqlite:///{folder.parent / (folder.name + '.db')}", pipeline)
        enroll(client, who, photos[who][:1])
        client.__exit__(None, None, None)
    with pytest.raises(StorageMismatch, match="two different deployments"):
        started(a, f"sqlite:///{tmp_path / 'b.db'}", pipeline)
    # an empty data directory for a database with stored photos: the volume was not mounted
    with pytest.raises(StorageMismatch, match="is the data\\s+volume mounted"):
        started(tmp_path / "empty", f"sqlite:///{tmp_path / 'a.db'}", pipeline)


def test_the_sweep_touches_only_journalled_files(tmp_path, pipeline, photos):
    data = tmp_path / "data"
    client = started(data, f"sqlite:///{data / 'faceshot.db'}", pipeline)
    enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    service = client.app.state.service
    images = data / "images"
    (committed,) = [p.name for p in images.glob("*.img")]
    # a stray file nobody journalled (copied in by hand, or left by a version before the journal)
    stray = images / ("f" * 32 + ".img")
    stray.write_bytes(b"not ours to judge")
    # a write that never committed: journalled, written, and then the process died
    lost = service.photos.file_name("a" * 32)
    service.photos.reserve([lost])
    service.photos.write(lost, photos["Wen_Jiabao"][0].read_bytes())
    age(images)

    young = service.photos.sweep(data)  # under an hour old: it may belong to a write in flight
    assert (young.quarantined, young.removed) == (0, 0) and (images / lost).exists()
    result = service.photos.sweep(data, min_age_s=0)
    assert result.quarantined == 1 and result.refused is None
    assert (images / "quarantine" / lost).exists() and not (images / lost).exists()
    assert (images / committed).exists() and stray.exists()
    with service.sessions() as s:
        assert s.execute(select(PhotoJournal)).first() is None
    client.__exit__(None, None, None)


def test_serve_refuses_a_mismatched_database_and_says_what_to_check(tmp_path, pipeline, photos):
    data = tmp_path / "data"
    client = started(data, f"sqlite:///{data / 'faceshot.db'}", pipeline)
    enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    client.__exit__(None, None, None)
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data), "FACESHOT_ADMIN_KEY": ADMIN,
           "FACESHOT_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "faceshot"), "serve", "--port", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "FACESHOT_DATABASE_URL" in proc.stderr and "Traceback" not in proc.stderr
    assert len(list((data / "images").glob("*.img"))) == 1
