"""FACESHOT_ADMIN_PASSWORD sign-in and the Secure cookie flag (no browser needed)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

from .conftest import ADMIN


def test_password_sign_in_and_secure_cookie(pipeline, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, admin_password="correct horse battery",
                        admin_cookie_secure=True, torch_threads=1)
    with TestClient(create_app(settings, pipeline), base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/admin/login")
        assert "or the shared password" in page.text and "Secure" in page.headers["set-cookie"]

        def attempt(page, secret):
            token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
            return client.post("/admin/login", data={"secret": secret, "login_token": token, "next": "/admin/try"})

        refused = attempt(page, "correct horse")
        assert refused.status_code == 401
        r = attempt(refused, "correct horse battery")
        assert r.status_code == 303 and r.headers["location"] == "/admin/try"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        assert client.get("/admin/try").status_code == 200
        # The signing secret is generated once into the database (every replica signs alike), never a file.
        assert not (tmp_path / "data" / "admin_session_secret").exists()
