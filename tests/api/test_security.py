"""Rate limits per key, a brake on guessing keys, CORS off by default, decode timeouts."""

import io
import re

import numpy as np
from PIL import Image

from .conftest import ADMIN


def test_each_key_has_its_own_rate_limit(make_client, tmp_path):
    client = make_client(tmp_path / "data", rate_limit="5/minute")
    recog = client.post("/api/v1/keys", json={"name": "camera", "role": "recognition"}).json()["key"]  # admin: 1
    for _ in range(4):
        assert client.get("/api/v1/model").status_code == 200  # admin: 2..5
    r = client.get("/api/v1/model")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited" and r.json()["error"]["details"]["limit"] == "5 per 1 minute"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # the camera's key is counted apart from the admin's
    assert client.get("/api/v1/model", headers={"X-API-Key": recog}).status_code == 200
    # liveness and readiness need no key and are never limited (orchestrators poll them)
    assert all(client.get("/api/v1/health").status_code == 200 for _ in range(10))


def test_guessing_keys_is_braked_per_address_but_valid_keys_get_through(make_client, tmp_path):
    client = make_client(tmp_path / "data", auth_failure_limit="3/minute")
    for guess in ("a", "b", "c"):
        r = client.get("/api/v1/people", headers={"X-API-Key": f"fs_guess_{guess}"})
        assert r.status_code == 401
    r = client.get("/api/v1/people", headers={"X-API-Key": "fs_guess_d"})
    assert r.status_code == 429, "a wrong key waits once this address has guessed too often"
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    assert client.get("/api/v1/people", headers={}).status_code == 200, "the right key is never locked out"
    # the admin page's sign-in counts the same failures, and lets a valid admin key in all the same
    page = client.get("/admin/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/admin/login", data={"secret": "fs_guess_e", "login_token": token})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    token = re.search(r'name="login_token" value="([^"]+)"', r.text).group(1)
    r = client.post("/admin/login", data={"secret": ADMIN, "login_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/people"


def test_a_thousand_wrong_keys_do_not_lock_out_the_right_ones(make_client, tmp_path):
    client = make_client(tmp_path / "data")  # the default brake: 30 failures a minute per address
    camera = client.post("/api/v1/keys", json={"name": "door camera", "role": "recognition"}).json()["key"]
    statuses = [client.get("/api/v1/model", headers={"X-API-Key": f"fs_wrong_{i}"}).status_code for i in range(1000)]
    assert statuses.count(401) == 30 and statuses.count(429) == 970
    assert client.get("/api/v1/model", headers={"X-API-Key": camera}).status_code == 200
    assert client.get("/api/v1/keys").status_code == 200  # and the admin key


def test_a_braked_address_cannot_guess_the_password(pipeline, tmp_path):
    """A password can be guessed, a key cannot: past the brake, even the right password waits."""
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app

    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, admin_password="a long enough password",
                        auth_failure_limit="2/minute", torch_threads=1)
    with TestClient(create_app(settings, pipeline), follow_redirects=False) as client:
        def attempt(secret, page=None):
            page = page or client.get("/admin/login")
            token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
            return client.post("/admin/login", data={"secret": secret, "login_token": token})

        assert [attempt(s).status_code for s in ("guess one", "guess two")] == [401, 401]
        assert attempt("a long enough password").status_code == 429
        assert attempt(ADMIN).status_code == 303


def test_rate_limit_can_be_turned_off(make_client, tmp_path):
    client = make_client(tmp_path / "data", rate_limit="", auth_failure_limit="")
    assert all(client.get("/api/v1/model").status_code == 200 for _ in range(30))


def test_cors_is_off_by_default_and_allows_only_configured_origins(make_client, tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "X-API-Key"}
    off = make_client(tmp_path / "a")
    r = off.options("/api/v1/identify", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = off.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers

    on = make_client(tmp_path / "b", cors_origins="https://intranet.example, https://door.example")
    r = on.options("/api/v1/identify", headers={**preflight, "Origin": "https://door.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://door.example"
    assert "X-API-Key".lower() in r.headers["access-control-allow-headers"].lower()
    r = on.options("/api/v1/identify", headers=preflight)
    assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_slow_decodes_are_cut_off(make_client, tmp_path):
    # A real 24-megapixel PNG of noise takes far longer than a millisecond to decode.
    client = make_client(tmp_path / "data", decode_timeout_s=0.001, max_upload_bytes=100_000_000)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)).save(
        buf, "PNG", compress_level=1)
    r = client.post("/api/v1/detect", files={"image": ("big.png", buf.getvalue(), "image/png")})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "decode_timeout"
    assert r.json()["error"]["details"]["timeout_s"] == 0.001
