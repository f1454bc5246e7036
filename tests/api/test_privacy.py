"""Secrets and privacy (issue 11, point 9): no SQL parameter in logs, owner-only files, long admin keys,
key prefixes that reveal little, and recognition keys that learn nothing of people who did not match."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.core.db import make_engine

from .conftest import ADMIN, upload

ROOT = Path(__file__).resolve().parents[2]


def test_sql_parameters_never_reach_a_message(database_url):
    engine = make_engine(database_url)
    with pytest.raises(DBAPIError) as failure, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE name = :name"), {"name": "Ada Lovelace, emp 4711"})
    assert "Ada Lovelace" not in str(failure.value) and "hidden" in str(failure.value).lower()
    engine.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_photos_and_secrets_are_owner_only(client, tmp_path, photos):
    r = client.post("/api/v1/enroll", data={"name": "Emma Watson"}, files=[upload(photos["Emma_Watson"][0], "images")])
    assert r.status_code == 201
    data = tmp_path / "data"
    assert mode(data) == 0o700 and mode(data / "images") == 0o700
    for path in [data / "faceshot.db", data / "admin_session_secret", *(data / "images").glob("*.img")]:
        if path.exists():
            assert mode(path) & 0o077 == 0, f"{path.name} is {oct(mode(path))}"
    for sidecar in data.glob("faceshot.db-*"):  # SQLite's -wal and -shm copy the database file's mode
        assert mode(sidecar) & 0o077 == 0, f"{sidecar.name} is {oct(mode(sidecar))}"


def test_short_admin_keys_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(data_dir=tmp_path, admin_key="admin123")
    env = {**os.environ, "FACESHOT_DATA_DIR": str(tmp_path / "d"), "FACESHOT_ADMIN_KEY": "changeme"}
    env.pop("FACESHOT_DATABASE_URL", None)
    proc = subprocess.run([str(Path(sys.executable).parent / "faceshot"), "serve", "--port", "1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "FACESHOT_ADMIN_KEY" in proc.stderr and "Traceback" not in proc.stderr


def test_key_listings_show_at_most_a_quarter_of_a_key(client):
    made = client.post("/api/v1/keys", json={"name": "camera", "role": "recognition"}).json()
    listed = {k["id"]: k for k in client.get("/api/v1/keys").json()}
    assert made["key"].startswith(listed[made["id"]]["prefix"])
    for key in listed.values():
        secret = ADMIN if key["name"].startswith("admin (FACESHOT_ADMIN_KEY)") else made["key"]
        if key["id"] == made["id"] or secret == ADMIN:
            assert 0 < len(key["prefix"]) <= len(secret) // 4


def test_recognition_keys_do_not_learn_who_did_not_match(make_client, tmp_path, photos):
    client = make_client(tmp_path / "data")
    for name in ("Emma_Watson", "Wen_Jiabao", "John_Travolta"):
        files = [upload(f, "images") for f in photos[name][:2]]
        assert client.post("/api/v1/enroll", data={"name": name}, files=files).status_code == 201
    camera = client.post("/api/v1/keys", json={"name": "door", "role": "recognition"}).json()["key"]

    def faces(key, photo):
        r = client.post("/api/v1/identify", data={"top_k": 3}, files=[upload(photo)], headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        return r.json()["faces"][0]

    stranger = faces(camera, photos["Yasar_Yakis"][0])
    assert stranger["person"] is None and len(stranger["candidates"]) == 3
    assert all(c["person"] is None and c["distance"] > 0 for c in stranger["candidates"])
    known = faces(camera, photos["Emma_Watson"][2])
    assert known["person"]["name"] == "Emma_Watson"
    assert [c["person"] for c in known["candidates"]][:1] == [known["person"]]
    assert all(c["person"] is None for c in known["candidates"][1:])
    # the admin sees every candidate; so may recognition keys, where the operator allows it
    assert all(c["person"] for c in faces(ADMIN, photos["Yasar_Yakis"][0])["candidates"])
    allowing = make_client(tmp_path / "data", recognition_sees_candidates=True)  # a second worker, configured so
    r = allowing.post("/api/v1/identify", files=[upload(photos["Yasar_Yakis"][0])], headers={"X-API-Key": camera})
    assert all(c["person"] for c in r.json()["faces"][0]["candidates"])
