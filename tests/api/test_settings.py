"""Settings that change what the service does: a configured threshold, and not keeping photos."""

from app.core.config import Settings

from .conftest import upload
from .test_errors import assert_error


def enroll(client, name, files):
    r = client.post("/api/v1/enroll", data={"name": name}, files=[upload(f, "images") for f in files])
    assert r.status_code == 201, r.text
    return r.json()


def test_settings_come_from_faceshot_environment_variables(monkeypatch, tmp_path):
    monkeypatch.delenv("FACESHOT_DATABASE_URL", raising=False)
    monkeypatch.setenv("FACESHOT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FACESHOT_THRESHOLD", "0.42")
    monkeypatch.setenv("FACESHOT_STORE_IMAGES", "false")
    monkeypatch.setenv("FACESHOT_ADMIN_KEY", "k" * 24)
    monkeypatch.setenv("FACESHOT_ENCODER", "dlib")
    s = Settings()
    assert (s.data_dir, s.threshold, s.store_images, s.admin_key.get_secret_value(), s.encoder) == (
        tmp_path / "d", 0.42, False, "k" * 24, "dlib")
    assert s.sqlalchemy_url == f"sqlite:///{(tmp_path / 'd' / 'faceshot.db').resolve()}"
    monkeypatch.setenv("FACESHOT_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert Settings().sqlalchemy_url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_a_configured_threshold_replaces_the_checkpoints(make_client, tmp_path, photos, pipeline):
    strict = 0.05  # far below any two different photos of one face
    client = make_client(tmp_path / "data", threshold=strict)
    model = client.get("/api/v1/model").json()
    assert model["threshold"] == strict and model["threshold_source"] == "FACESHOT_THRESHOLD"
    enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    face = client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][2])]).json()["faces"][0]
    assert face["threshold"] == strict and face["person"] is None
    # the checkpoint's own threshold would have named her
    assert face["candidates"][0]["person"]["name"] == "Emma Watson"
    assert face["distance"] <= pipeline.encoder.threshold_for(2)
    # a per-request threshold still wins over the configured one
    loose = client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][2])],
                        data={"threshold": str(pipeline.encoder.threshold_for(2))}).json()["faces"][0]
    assert loose["person"]["name"] == "Emma Watson"


def test_photos_are_not_kept_when_store_images_is_off(make_client, tmp_path, photos):
    data = tmp_path / "data"
    client = make_client(data, store_images=False)
    person = enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    assert all(f["has_image"] is False for f in person["faces"])
    assert not (data / "images").exists() or not any((data / "images").iterdir())
    face_id = person["faces"][0]["id"]
    assert_error(client.get(f"/api/v1/people/{person['person']['id']}/faces/{face_id}/image"), 404, "not_found")
    # recognition does not need the photos: the embeddings are in the database
    found = client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][2])]).json()["faces"][0]
    assert found["person"]["name"] == "Emma Watson"


def test_a_misspelled_setting_stops_the_start_and_names_the_right_one(tmp_path):
    """Issue 16, point 3: FACESHOT_TRESHOLD=0.4 used to be ignored in silence; now `serve` refuses with the
    closest name, before it creates anything."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from app.core.config import known_names, unknown_settings

    env = {**os.environ, "FACESHOT_DATA_DIR": str(tmp_path / "data"), "FACESHOT_TRESHOLD": "0.4",
           "FACESHOT_WIBBLE": "1"}
    run = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "1"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1
    assert "FACESHOT_TRESHOLD (did you mean FACESHOT_THRESHOLD?)" in run.stderr and "FACESHOT_WIBBLE" in run.stderr
    assert not (tmp_path / "data").exists()
    assert unknown_settings({"FACESHOT_THRESHOLD": "0.4", "FACESHOT_HOST": "0.0.0.0", "PATH": "/bin"}) == []
    # every name the code, the image and the scripts read is known (so none of them is ever refused)
    root = Path(__file__).resolve().parents[2]
    read = set()
    for path in [*root.glob("app/**/*.py"), *root.glob("models/**/*.py"), *root.glob("docker/*"),
                 root / "docker-compose.yml", root / "run.sh"]:
        if path.is_file():
            read |= set(re.findall(r"FACESHOT_[A-Z0-9_]+[A-Z0-9]", path.read_text(errors="ignore")))
    assert read <= known_names(), sorted(read - known_names())


def test_the_configuration_reference_lists_every_setting_the_service_reads():
    import re
    from pathlib import Path

    from app.core.config import OTHER_NAMES, known_names

    readme = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    listed = set(re.findall(r"`(FACESHOT_[A-Z0-9_]+)`", readme))
    assert known_names() - OTHER_NAMES - {"FACESHOT_CRASH_AT"} <= listed, sorted(known_names() - listed)
    assert OTHER_NAMES <= listed
