"""Cross-request micro-batching (issue 15): concurrent requests' faces go through one forward pass, each gets
its own embeddings back, an error reaches every waiter, and the service answers as without it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.inference.batching import EmbedBatcher
from app.main import create_app
from models.imageio import load_image

ADMIN = "micro-batching-admin-key-0123456789"


@pytest.fixture(scope="module")
def chips(pipeline, photos):
    out = []
    for files in photos.values():
        image = load_image(files[0])
        out.append(pipeline.align(image, pipeline.detect(image)[:1]))
    return out


def test_concurrent_requests_share_a_forward_pass_and_get_their_own_answers(pipeline, chips):
    batcher = EmbedBatcher(pipeline.encoder, wait_ms=50, max_faces=64)
    start = threading.Barrier(len(chips))
    results: dict[int, np.ndarray] = {}

    def request(i):
        start.wait()
        results[i] = batcher.embed(chips[i])

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(chips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    batcher.close()
    assert batcher.faces == len(chips) and batcher.batches < len(chips)  # some shared a pass
    for i, c in enumerate(chips):
        np.testing.assert_allclose(results[i], pipeline.encoder.embed(c), atol=1e-5)


def test_a_failed_pass_fails_every_request_in_it_and_the_batcher_goes_on(pipeline, chips):
    batcher = EmbedBatcher(pipeline.encoder, wait_ms=1)
    with pytest.raises(Exception):  # noqa: B017  (whatever the runtime raises for a wrong chip size)
        batcher.embed(np.zeros((1, 20, 20, 3), np.uint8))
    np.testing.assert_allclose(batcher.embed(chips[0]), pipeline.encoder.embed(chips[0]), atol=1e-5)
    batcher.close()


def test_the_service_answers_alike_with_and_without_it(tmp_path, pipeline, photos):
    answers = {}
    for mode in ("off", "on"):
        settings = Settings(data_dir=tmp_path / mode, admin_key=ADMIN, micro_batch=mode, micro_batch_wait_ms=1)
        with TestClient(create_app(settings, pipeline)) as client:
            client.headers["X-API-Key"] = ADMIN
            assert (client.app.state.service.inference.batcher is not None) == (mode == "on")
            for name in ("Emma_Watson", "John_Travolta"):
                r = client.post("/api/v1/enroll", data={"name": name},
                                files=[("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[name][:1]])
                assert r.status_code == 201, r.text
            answers[mode] = []
            for f in photos["Emma_Watson"][1:] + photos["John_Travolta"][1:]:
                face = client.post("/api/v1/identify", files={"image": (f.name, f.read_bytes(), "image/jpeg")})
                best = face.json()["faces"][0]
                answers[mode].append((best["person"] and best["person"]["name"], round(best["distance"], 4)))
    assert answers["on"] == answers["off"] and any(name for name, _ in answers["on"])
