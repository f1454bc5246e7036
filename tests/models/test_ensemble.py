"""Ensembles of encoders (issue 14): members crop their own way, fusion is the manifest's, and an ensemble
serves, evaluates and refuses like any encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.encoders.sources import dlib_checkpoint, load_encoder
from models.errors import CheckpointError
from models.imageio import load_image
from models.pipeline import FacePipeline


@pytest.fixture(scope="module")
def box_member(tmp_path_factory):
    """dlib's weights behind a detector-box crop: a second member that sees the face another way."""
    ckpt = dlib_checkpoint()
    ckpt.metadata.name, ckpt.metadata.crop = "dlib-box", {"kind": "box", "margin": 10}
    path = tmp_path_factory.mktemp("members") / "dlib-box.pt"
    ckpt.save(path)
    return path


@pytest.fixture
def make_app_client():
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app

    opened = []

    def start(data_dir, pipeline, **settings):
        client = TestClient(create_app(Settings(data_dir=data_dir, admin_key="ensemble-test-admin-key-01234",
                                                torch_threads=1, **settings), pipeline))
        client.__enter__()
        client.headers["X-API-Key"] = "ensemble-test-admin-key-01234"
        opened.append(client)
        return client

    yield start
    for c in opened:
        c.__exit__(None, None, None)


def manifest(tmp_path, members, **extra) -> str:
    path = tmp_path / "ensemble.json"
    path.write_text(json.dumps({"format": "faceshot-ensemble/1", "name": "test-fusion", "members": members,
                                "threshold": {"distance": 0.45, "far": None, "calibrated": False,
                                              "by_support": {"1": 0.45, "2": 0.43}}, **extra}))
    return str(path)


def test_fusion_is_the_weighted_concatenation_of_unit_member_embeddings(tmp_path, box_member, photos):
    spec = manifest(tmp_path, [{"encoder": "dlib", "weight": 1.0}, {"encoder": str(box_member), "weight": 0.4}])
    ensemble = load_encoder(spec, "cpu")
    pipe = FacePipeline(ensemble)
    image = load_image(photos["Emma_Watson"][0].read_bytes())
    faces = pipe.detect(image)
    fused = pipe.embed_faces(image, faces)[0].embedding
    a, b = (m.embed(m.chips(image, faces))[0] for m in ensemble.members)
    want = np.concatenate([a, 0.4 * b])
    np.testing.assert_allclose(fused, want / np.linalg.norm(want), atol=1e-6)
    assert ensemble.members[1].chips(image, faces).shape == (1, 150, 150, 3)  # its own crop
    assert not np.allclose(a, b, atol=1e-2)  # the box crop does see the face differently
    described = ensemble.describe()
    assert described["architecture"] == "ensemble" and len(described["members"]) == 2
    assert ensemble.metadata.embedding_size == 256 and len(ensemble.content_hash) == 16
    # the hash follows the weights
    other = load_encoder(manifest(tmp_path, [{"encoder": "dlib", "weight": 1.0},
                                             {"encoder": str(box_member), "weight": 0.5}]), "cpu")
    assert other.content_hash != ensemble.content_hash


def test_a_member_with_other_weights_is_refused(tmp_path, box_member):
    spec = manifest(tmp_path, [{"encoder": "dlib", "content_hash": "0" * 16, "weight": 1.0}])
    with pytest.raises(CheckpointError, match="content hash"):
        load_encoder(spec, "cpu")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "faceshot-ensemble/0"}))
    with pytest.raises(CheckpointError, match="unknown ensemble format"):
        load_encoder(str(bad), "cpu")


def test_the_service_serves_an_ensemble_and_decides_as_the_evaluation_does(make_app_client, tmp_path, box_member,
                                                                           photos, lfw_dir, capsys):
    from app.cli import main as faceshot
    from models.evaluation.gallery_sweep import fixed
    from models.evaluation.openset import EmbeddedPhotos, Split, nearest

    spec = manifest(tmp_path, [{"encoder": "dlib", "weight": 1.0}, {"encoder": str(box_member), "weight": 0.4}])
    encoder = load_encoder(spec, "cpu")
    pipe = FacePipeline(encoder)
    client = make_app_client(tmp_path / "data", pipe, encoder=spec)
    people = ["Emma_Watson", "John_Travolta", "Wen_Jiabao", "Leonid_Kuchma"]
    for name in people:
        r = client.post("/api/v1/enroll", data={"name": name},
                        files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[name][:1]])
        assert r.status_code == 201, r.text
    assert client.get("/api/v1/model").json()["encoder"]["architecture"] == "ensemble"
    probes = [f for n in photos for f in (photos[n][1:] if n in people else photos[n])]
    served = []
    for f in probes:
        face = client.post("/api/v1/identify", files=[("image", (f.name, f.read_bytes(), "image/jpeg"))]).json()
        served.append(face["faces"][0]["person"]["name"] if face["faces"][0]["person"] else None)
    embed = lambda f: pipe.analyze(load_image(f.read_bytes()))[0].embedding  # noqa: E731
    rows = [photos[n][0] for n in people] + probes
    data = EmbeddedPhotos({str(i): [i] for i in range(len(rows))}, np.stack([embed(f) for f in rows]),
                          np.ones(len(rows), bool))
    split = Split([str(i) for i in range(len(people))], {str(i): [i] for i in range(len(people))}, [], [])
    best, dist = nearest(data, split, 1, np.arange(len(people), len(rows)))
    t = fixed(encoder.threshold_for)(len(people), 1)  # no distributions in this manifest: its fixed threshold
    assert served == [people[b] if d <= t else None for b, d in zip(best, dist)]
    # and the CLI's protocol runs on it
    assert faceshot(["eval-openset", str(lfw_dir), "--encoder", spec, "--k", "3", "--shots", "1", "--seeds", "1",
                     "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "test-fusion" in capsys.readouterr().out


def test_a_second_crop_scale_is_another_encoder_with_a_tighter_crop(photos, box_member):
    """``SPEC@zoom=Z`` (the two-scale member of bench/test_time_choices.py): same weights, other input, own hash."""
    base, zoom = load_encoder("dlib", "cpu"), load_encoder("dlib@zoom=1.15", "cpu")
    assert zoom.content_hash != base.content_hash and zoom.metadata.name.endswith("@zoom=1.15")
    image = load_image(photos["Emma_Watson"][0].read_bytes())
    faces = FacePipeline(base).detect(image)
    eyes = lambda enc: np.linalg.norm(enc.template[1] - enc.template[0])  # noqa: E731
    assert eyes(zoom) == pytest.approx(1.15 * eyes(base))  # the face fills more of the chip
    a, b = base.embed(base.chips(image, faces))[0], zoom.embed(zoom.chips(image, faces))[0]
    assert 0.0 < np.linalg.norm(a - b) < 0.4  # the same person, seen closer
    with pytest.raises(CheckpointError, match="template"):
        load_encoder(f"{box_member}@zoom=1.15", "cpu")
    with pytest.raises(CheckpointError, match="outside"):
        load_encoder("dlib@zoom=3", "cpu")
