"""The gallery's encoder (issue 29, point 8): decided once for a new gallery (the dlib+FaceNet fusion on a GPU host
with FaceNet's weights, else dlib), stored with it, shown on /model, and never flipped by a restart elsewhere."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.db import Database
from app.core.tables import DeploymentIdentity
from app.gallery.encoder_choice import GPU_DEFAULT, STORED, choose_encoder
from app.main import build_service, create_app
from models.encoders.spec import IMPORTED, WeightSources

from .conftest import ADMIN, make_settings, upload

ROOT = Path(__file__).resolve().parents[2]


def model_of(settings) -> dict:
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = ADMIN
        answer = client.get("/api/v1/model")
        assert answer.status_code == 200, answer.text
        return answer.json()


def record(database_url: str) -> tuple:
    db = Database(database_url)
    try:
        with db.sessions() as session:
            row = session.get(DeploymentIdentity, 1)
            return row.encoder, row.encoder_reason
    finally:
        db.close()


def test_a_new_gallery_on_a_cpu_host_is_dlib_and_model_says_why(tmp_path, database_url):
    model = model_of(make_settings(tmp_path / "data", database_url=database_url))
    choice = model["encoder_choice"]
    assert choice["spec"] == "dlib" and choice["source"] == STORED and "CPU host" in choice["reason"]
    assert choice["decided_at"] is not None
    assert model["encoder"]["name"].startswith("dlib")
    assert record(database_url) == ("dlib", choice["reason"])


def test_the_galleries_encoder_survives_a_restart_without_the_setting(tmp_path, database_url, other_encoder,
                                                                      photos):
    """Chosen once (here by FACESHOT_ENCODER, as a GPU host's first start would choose the fusion), a restart on
    this CPU host, whose own default is dlib, keeps it: the enrolled person is still identified."""
    data_dir = tmp_path / "data"
    first = make_settings(data_dir, database_url=database_url, encoder=str(other_encoder))
    with TestClient(create_app(first)) as client:
        client.headers["X-API-Key"] = ADMIN
        enrolled = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                               files=[upload(photos["Emma_Watson"][0], "images")])
        assert enrolled.status_code == 201, enrolled.text
    assert record(database_url)[0] == str(other_encoder)

    again = make_settings(data_dir, database_url=database_url)  # no FACESHOT_ENCODER
    assert "encoder" not in again.model_fields_set
    with TestClient(create_app(again)) as client:
        client.headers["X-API-Key"] = ADMIN
        model = client.get("/api/v1/model").json()
        assert model["encoder"]["name"] == "dlib-resnet-v1-nudged"
        assert model["encoder_choice"] == {**model["encoder_choice"], "spec": str(other_encoder), "source": STORED,
                                           "reason": "set by FACESHOT_ENCODER"}
        found = client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][1])]).json()
        assert found["faces"][0]["person"]["name"] == "Emma Watson"


def test_a_gpu_hosts_new_gallery_gets_the_fusion_only_with_facenets_weights(tmp_path, database_url):
    """The decision itself, on a real database: the host's GPU is what the process reports (asked only for a new
    gallery), FaceNet's member is a file in the model cache; a later start on a CPU host keeps the record."""
    settings = make_settings(tmp_path / "data", database_url=database_url)
    from app.startup import prepare_deployment

    db, _ = prepare_deployment(settings)
    try:
        empty = WeightSources(cache_dir=tmp_path / "empty-cache", offline=True)
        asked = []
        choice = choose_encoder(None, db.sessions, gpu=lambda: asked.append(1) or True, sources=empty)
        assert choice.spec == "dlib" and "FaceNet's weights are not here" in choice.reason
        assert "faceshot fetch-weights facenet-20180408" in choice.reason and asked == [1]

        # the same host after fetch-weights: the record stands (a restart never flips it)
        cache = tmp_path / "cache"
        cache.mkdir()
        (cache / IMPORTED["facenet-20180408"][0]).write_bytes(b"weights")
        with_weights = WeightSources(cache_dir=cache, offline=True)
        assert choose_encoder(None, db.sessions, gpu=lambda: True, sources=with_weights).spec == "dlib"

        # a new gallery on that host: the fusion, decided once
        with db.sessions.begin() as session:
            session.execute(update(DeploymentIdentity).values(encoder=None, encoder_reason=None))
        fusion = choose_encoder(None, db.sessions, gpu=lambda: True, sources=with_weights)
        assert fusion.spec == GPU_DEFAULT and "GPU host" in fusion.reason
        # moved to a CPU host (or started with FACESHOT_DEVICE=cpu): still the fusion, and the GPU is not asked
        moved = choose_encoder(None, db.sessions, gpu=lambda: pytest.fail("asked for a GPU"), sources=empty)
        assert (moved.spec, moved.source, moved.reason) == (GPU_DEFAULT, STORED, fusion.reason)
    finally:
        db.close()


def test_a_gallery_from_before_the_record_keeps_dlib(tmp_path, database_url, pipeline, photos):
    data_dir = tmp_path / "data"
    service = build_service(make_settings(data_dir, database_url=database_url), pipeline)  # a caller's pipeline
    service.people.enroll("Emma Watson", [service.people.prepare(photos["Emma_Watson"][0].read_bytes())])
    service.close()
    assert record(database_url) == (None, None)
    model = model_of(make_settings(data_dir, database_url=database_url))
    assert model["encoder_choice"]["spec"] == "dlib" and "made before" in model["encoder_choice"]["reason"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_a_stored_encoder_whose_weights_are_gone(tmp_path):
    """The supervisor checks the gallery's recorded encoder (not the host's default) before its workers start."""
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir)
    from app.startup import prepare_deployment

    db, _ = prepare_deployment(settings)
    with db.sessions.begin() as session:
        session.execute(update(DeploymentIdentity).values(encoder="dlib+hse-faceres", encoder_reason="test"))
    db.close()
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data_dir), "FACESHOT_ADMIN_KEY": ADMIN, "OMP_NUM_THREADS": "1",
           "FACESHOT_MODEL_CACHE": str(tmp_path / "empty-cache")}
    for name in ("FACESHOT_ENCODER", "FACESHOT_DATABASE_URL"):
        env.pop(name, None)
    code = ("import json, sys\nfrom app.cli import main\ntry:\n    status = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    status = exc.code\n"
            "print(json.dumps({'status': status, 'torch': 'torch' in sys.modules}), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, "serve", "--port", str(free_port())], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    probe = json.loads(out.stderr.strip().splitlines()[-1])
    assert probe["status"] not in (0, None), out.stderr
    assert "this gallery's encoder dlib+hse-faceres (stored with it)" in out.stderr
    assert "faceshot fetch-weights hse-faceres" in out.stderr and probe["torch"] is False


def test_an_empty_setting_is_no_choice(tmp_path):
    """Compose passes FACESHOT_ENCODER empty when .env does not set it: the gallery's own encoder, not a refusal."""
    from app.gallery.encoder_choice import explicit_encoder

    assert explicit_encoder(make_settings(tmp_path, encoder="")) is None
    assert explicit_encoder(make_settings(tmp_path, encoder="dlib")) == "dlib"
    assert explicit_encoder(make_settings(tmp_path)) is None
    model = model_of(make_settings(tmp_path / "data", encoder=""))
    assert model["encoder_choice"]["source"] == STORED and model["encoder_choice"]["spec"] == "dlib"
