"""Sign-out ends the session on the server, and a new admin password ends password sessions (issue 11, point 4)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.access.admin_sessions import COOKIE
from app.core.config import Settings
from app.main import create_app

from .conftest import ADMIN


def app_client(pipeline, data_dir, **settings) -> TestClient:
    client = TestClient(create_app(Settings(data_dir=data_dir, admin_key=ADMIN, torch_threads=1, **settings), pipeline),
                        follow_redirects=False)
    client.__enter__()
    return client


def sign_in(client: TestClient, secret: str) -> tuple[str, str]:
    """Sign in; the session cookie's value and the page's CSRF token."""
    page = client.get("/admin/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/admin/login", data={"secret": secret, "login_token": token})
    assert r.status_code == 303, r.text
    cookie = client.cookies.get(COOKIE)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/settings").text).group(1)
    return cookie, csrf


def with_cookie(client: TestClient, cookie: str, path: str = "/admin/settings"):
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie, path="/admin")
    return client.get(path)


def test_a_captured_cookie_is_worthless_after_sign_out(pipeline, tmp_path):
    client = app_client(pipeline, tmp_path / "data")
    cookie, csrf = sign_in(client, ADMIN)
    other, _ = sign_in(client, ADMIN)  # a second sign-in (another browser) is a session of its own
    assert with_cookie(client, cookie).status_code == 200
    r = client.post("/admin/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    # an attacker replays the cookie they copied before the sign-out
    r = with_cookie(client, cookie)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    r = client.post("/admin/api/detect", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert with_cookie(client, other).status_code == 200, "signing out one session leaves the others"
    client.__exit__(None, None, None)


def test_changing_the_admin_password_ends_password_sessions(pipeline, tmp_path):
    data = tmp_path / "data"
    old = app_client(pipeline, data, admin_password="the first long password")
    by_password, _ = sign_in(old, "the first long password")
    by_key, _ = sign_in(old, ADMIN)
    old.__exit__(None, None, None)

    same = app_client(pipeline, data, admin_password="the first long password")
    assert with_cookie(same, by_password).status_code == 200  # a restart alone ends nothing
    same.__exit__(None, None, None)

    new = app_client(pipeline, data, admin_password="a new long password!")
    assert with_cookie(new, by_password).status_code == 303, "the old password's session outlived it"
    assert with_cookie(new, by_key).status_code == 200, "key sessions do not depend on the password"
    new.__exit__(None, None, None)
