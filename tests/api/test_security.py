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


def test_guessing_keys_is_braked_per_address(make_client, tmp_path):
    client = make_client(tmp_path / "data", auth_failure_limit="3/minute")
    for guess in ("a", "b", "c"):
        r = client.get("/api/v1/people", headers={"X-API-Key": f"fs_guess_{guess}"})
        assert r.status_code == 401
    r = client.get("/api/v1/people", headers={"X-API-Key": ADMIN})
    assert r.status_code == 429, "even the right key waits once this address has guessed too often"
    assert r.json()["error"]["code"] == "rate_limited"
    # the admin page's sign-in counts the same failures
    page = client.get("/admin/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/admin/login", data={"secret": ADMIN, "login_token": token})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text


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
