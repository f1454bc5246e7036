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
