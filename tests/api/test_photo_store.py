"""Photos in the database (issue 30, point 1): FACESHOT_PHOTO_STORE=database keeps them in the face's own transaction,
so a replica with its own empty data folder serves them; `faceshot photos migrate` moves a gallery both ways,
resumably, sha256-verified, with nothing lost when it is killed midway."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.core.tables import Face, StoredPhoto

from .conftest import ADMIN, upload

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]


def enroll(client, name, paths):
    r = client.post(f"{API}/enroll", data={"name": name}, files=[upload(p, "images") for p in paths])
    assert r.status_code == 201, r.text
    return r.json()


def photo(client, person_id, face_id) -> bytes:
    r = client.get(f"{API}/people/{person_id}/faces/{face_id}/image")
    assert r.status_code == 200, r.text
    return r.content


def stored(url) -> dict[str, str]:
    db = Database(url)
    try:
        with db.sessions() as session:
            return dict(session.execute(select(StoredPhoto.name, StoredPhoto.sha256)).all())
    finally:
        db.close()


def files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "images").glob("*.img")) if (data_dir / "images").is_dir() else []


def test_photos_live_in_the_database_and_go_with_their_faces(make_client, tmp_path, database_url, photos):
    data = tmp_path / "a"
    a = make_client(data, database_url=database_url, photo_store="database")
    emma = enroll(a, "Emma Watson", photos["Emma_Watson"][:2])
    person, faces = emma["person"]["id"], emma["faces"]
    assert files(data) == [] and len(stored(database_url)) == 2
    original = photos["Emma_Watson"][0].read_bytes()
    assert photo(a, person, faces[0]["id"]) == original
    assert stored(database_url)[f"{faces[0]['id']}.img"] == hashlib.sha256(original).hexdigest()

    # a replica on another host: its own, empty data folder, the same database, the same photos
    b = make_client(tmp_path / "b", database_url=database_url, photo_store="database")
    assert photo(b, person, faces[0]["id"]) == original

    # copied into another collection: the copy's photos are rows of their own; deletes take theirs along
    assert a.post(f"{API}/collections", json={"name": "warehouse"}).status_code == 201
    copy = a.post(f"{API}/people/{person}/move", json={"to": "warehouse", "mode": "copy"})
    assert copy.status_code in (200, 201), copy.text
    assert len(stored(database_url)) == 4
    assert a.delete(f"{API}/people/{person}/faces/{faces[1]['id']}").status_code == 204
    assert len(stored(database_url)) == 3
    assert a.delete(f"{API}/people/{person}").status_code == 204
    assert a.delete(f"{API}/collections/warehouse").status_code == 204
    assert stored(database_url) == {} and files(data) == []


def run_migrate(data_dir: Path, database_url: str, to: str, **env) -> tuple[int, dict | None, str]:
    environ = {**os.environ, "FACESHOT_DATA_DIR": str(data_dir), "FACESHOT_DATABASE_URL": database_url,
               "FACESHOT_ADMIN_KEY": ADMIN, **env}
    out = subprocess.run([sys.executable, "-m", "app.cli", "photos", "migrate", "--to", to, "--batch", "2"],
                         cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
    summary = json.loads(out.stdout) if out.stdout.strip().startswith("{") else None
    return out.returncode, summary, out.stderr


def test_a_gallery_moves_both_ways_and_survives_a_kill_midway(make_client, tmp_path, database_url, photos):
    data = tmp_path / "data"
    client = make_client(data, database_url=database_url)  # the folder store
    people = [enroll(client, n, photos[n][:2]) for n in ("Emma_Watson", "John_Travolta", "Wen_Jiabao")]
    faces = [(p["person"]["id"], f["id"]) for p in people for f in p["faces"]]
    originals = {face: photo(client, person, face) for person, face in faces}
    assert len(files(data)) == len(faces) == 6

    # killed after its first batch was copied, before the folder's copies went: every photo is still served
    code, _, _ = run_migrate(data, database_url, "database", FACESHOT_CRASH_AT="photos_copied")
    assert code == -9
    assert len(stored(database_url)) == 2 and len(files(data)) == 6
    assert {face: photo(client, person, face) for person, face in faces} == originals

    code, summary, err = run_migrate(data, database_url, "database")
    assert code == 0, err
    assert (summary["moved"], summary["already"], summary["missing"], summary["corrupt"]) == (4, 2, [], [])
    assert files(data) == [] and len(stored(database_url)) == 6
    assert "FACESHOT_PHOTO_STORE=database" in err
    assert {face: photo(client, person, face) for person, face in faces} == originals  # the folder store reads on

    # and back, killed once more on the way
    code, _, _ = run_migrate(data, database_url, "folder", FACESHOT_CRASH_AT="photos_copied")
    assert code == -9
    assert {face: photo(client, person, face) for person, face in faces} == originals
    code, summary, err = run_migrate(data, database_url, "folder")
    assert code == 0, err
    assert summary["moved"] + summary["already"] == 6 and summary["missing"] == summary["corrupt"] == []
    assert len(files(data)) == 6 and stored(database_url) == {}
    assert {face: (data / "images" / f"{face}.img").read_bytes() for _, face in faces} == originals


def test_a_photo_whose_bytes_changed_is_reported_not_moved(make_client, tmp_path, database_url, photos):
    data = tmp_path / "data"
    client = make_client(data, database_url=database_url, photo_store="database")
    emma = enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    db = Database(database_url)
    try:
        with db.sessions.begin() as session:
            row = session.get(StoredPhoto, f"{emma['faces'][0]['id']}.img")
            row.data = row.data[:-10] + b"0123456789"  # a damaged row: its sha256 no longer matches
        with db.sessions() as session:
            assert session.execute(select(func.count()).select_from(Face)).scalar_one() == 1
    finally:
        db.close()
    code, summary, err = run_migrate(data, database_url, "folder")
    assert code == 1 and summary["corrupt"] == [f"{emma['faces'][0]['id']}.img"] and summary["moved"] == 0
    assert files(data) == [] and len(stored(database_url)) == 1  # left as it is, in its one place


@pytest.mark.parametrize("store", ["database"])
def test_a_replica_with_an_empty_folder_starts_against_a_database_of_stored_photos(make_client, tmp_path,
                                                                                   database_url, photos, store):
    """The instance binding still refuses a folder that should hold photos, but not one whose photos are in the
    database."""
    a = make_client(tmp_path / "a", database_url=database_url, photo_store=store)
    enroll(a, "Emma Watson", photos["Emma_Watson"][:1])
    b = make_client(tmp_path / "b", database_url=database_url, photo_store=store)
    assert b.get(f"{API}/people").json()["total"] == 1
