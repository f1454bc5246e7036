"""Sign-in by a signing-in reverse proxy's headers (issue 31, point 2): believed only with the shared secret and only
from the proxy's own address (not one X-Forwarded-For names); the user's rights follow their groups at every sign-in;
otherwise the headers are ignored, and that is logged."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.access.admin_sessions import COOKIE
from app.core.config import Settings
from app.main import create_app
from app.testing.server import Server
from models.errors import FaceshotError

from .conftest import ADMIN

SECRET = "proxy-secret-0123456789abcdef"
RIGHTS = "faceshot-admins=deployment_admin; warehouse-team=warehouse:viewer"
PROXY = ("10.20.0.2", 40000)


def app_client(tmp_path, client=PROXY, **settings) -> TestClient:
    base = {"data_dir": tmp_path / "data", "admin_key": ADMIN, "torch_threads": 1,
            "proxy_auth_secret": SECRET, "proxy_auth_addresses": "10.20.0.0/24", "admin_group_rights": RIGHTS}
    c = TestClient(create_app(Settings(**{**base, **settings})), client=client, follow_redirects=False)
    c.__enter__()
    return c


def via_proxy(user: str, groups: str, secret: str = SECRET) -> dict:
    return {"Remote-User": user, "Remote-Groups": groups, "X-Proxy-Secret": secret}


def sign_in(client, headers, next_url="/admin/people"):
    client.cookies.clear()
    return client.get("/admin/login", params={"next": next_url}, headers=headers)


def test_a_believed_proxy_user_gets_an_account_with_their_groups_rights(tmp_path, pipeline):
    client = app_client(tmp_path)
    try:
        r = sign_in(client, via_proxy("ann", "faceshot-admins, staff"))
        assert r.status_code == 303 and r.headers["location"] == "/admin/people" and client.cookies.get(COOKIE)
        assert client.get("/admin/settings").status_code == 200  # a deployment admin's page
        accounts = client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json()
        assert [(a["name"], a["deployment_admin"], a["disabled"]) for a in accounts] == [("ann", True, False)]
        entry = client.get("/api/v1/audit", params={"action": "admin.sign_in"},
                           headers={"X-API-Key": ADMIN}).json()["items"][0]
        assert entry["details"] == {"via": "proxy", "groups": ["faceshot-admins", "staff"]}

        # viewer rights in one collection, from another group
        assert client.post("/api/v1/collections", json={"name": "warehouse"},
                           headers={"X-API-Key": ADMIN}).status_code == 201
        assert sign_in(client, via_proxy("bob", "warehouse-team")).status_code == 303
        bob = next(a for a in client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json()
                   if a["name"] == "bob")
        assert bob["rights"] == {"warehouse": "viewer"} and not bob["deployment_admin"]
    finally:
        client.__exit__(None, None, None)


def test_a_user_who_lost_their_group_is_refused_and_their_sessions_end(tmp_path, pipeline):
    client = app_client(tmp_path)
    try:
        assert sign_in(client, via_proxy("ann", "faceshot-admins")).status_code == 303
        cookie = client.cookies.get(COOKIE)
        r = sign_in(client, via_proxy("ann", "staff"))  # the company took her out of the group
        assert r.status_code == 403 and "grant no right" in r.text and client.cookies.get(COOKIE) is None
        client.cookies.set(COOKIE, cookie, path="/admin")
        assert client.get("/admin/settings").status_code == 303  # her earlier session is over
        ann = client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json()[0]
        assert ann["disabled"]
        refused = client.get("/api/v1/audit", params={"action": "admin.sign_in_refused"},
                             headers={"X-API-Key": ADMIN}).json()["items"][0]
        assert refused["details"]["code"] == "forbidden" and refused["details"]["groups"] == ["staff"]
        # back in the group: signed in again, enabled again
        assert sign_in(client, via_proxy("ann", "faceshot-admins")).status_code == 303
        assert not client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json()[0]["disabled"]
    finally:
        client.__exit__(None, None, None)


def test_headers_without_the_secret_or_from_elsewhere_are_ignored_and_logged(tmp_path, pipeline, caplog):
    caplog.set_level(logging.WARNING, logger="app.access.proxy_sign_in")
    client = app_client(tmp_path)
    stranger = app_client(tmp_path / "s", client=("192.168.7.7", 40000))
    off = app_client(tmp_path / "o", proxy_auth_secret=None, proxy_auth_addresses="")
    try:
        wrong = via_proxy("ann", "faceshot-admins", secret="wrong" * 6)
        bare = {"Remote-User": "ann", "Remote-Groups": "faceshot-admins"}
        for c, headers, why in [(client, wrong, "wrong or missing"),
                                (client, bare, "wrong or missing"),
                                (stranger, via_proxy("ann", "faceshot-admins"), "not one of"),
                                (off, via_proxy("ann", "faceshot-admins"), "proxy sign-in is off")]:
            r = sign_in(c, headers)
            assert r.status_code == 200 and 'name="secret"' in r.text and c.cookies.get(COOKIE) is None  # the form
            assert any(why in rec.message for rec in caplog.records), why
        assert client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json() == []
    finally:
        for c in (client, stranger, off):
            c.__exit__(None, None, None)


def test_a_local_account_is_never_taken_over_by_a_proxy_user_of_its_name(tmp_path, pipeline):
    client = app_client(tmp_path)
    try:
        made = client.post("/api/v1/admin-accounts", json={"name": "carol", "password": "carol's long password",
                                                           "deployment_admin": True}, headers={"X-API-Key": ADMIN})
        assert made.status_code == 201
        r = sign_in(client, via_proxy("carol", "faceshot-admins"))
        assert r.status_code == 409 and client.cookies.get(COOKIE) is None
    finally:
        client.__exit__(None, None, None)


def test_half_a_proxy_setting_or_a_bad_rights_mapping_stops_the_start(tmp_path):
    with pytest.raises(ValidationError, match="go together"):
        Settings(data_dir=tmp_path, proxy_auth_secret=SECRET)
    with pytest.raises(ValidationError, match="go together"):
        Settings(data_dir=tmp_path, proxy_auth_addresses="10.0.0.1")
    with pytest.raises(ValidationError, match="24 characters"):
        Settings(data_dir=tmp_path, proxy_auth_secret="short", proxy_auth_addresses="10.0.0.1")
    with pytest.raises(FaceshotError, match="FACESHOT_ADMIN_GROUP_RIGHTS"), TestClient(create_app(Settings(
            data_dir=tmp_path / "data", admin_key=ADMIN, admin_group_rights="admins=root"))):
        pass


@pytest.mark.slow  # a real server: the proxy's own address is the connection's, whatever X-Forwarded-For says
def test_x_forwarded_for_cannot_make_a_request_the_proxys(tmp_path):
    server = Server(tmp_path / "data")
    env = {"FACESHOT_PROXY_AUTH_SECRET": SECRET, "FACESHOT_ADMIN_GROUP_RIGHTS": RIGHTS,
           "FORWARDED_ALLOW_IPS": "*"}  # as compose: every X-Forwarded-For believed for the client's address
    try:
        server.start(env={**env, "FACESHOT_PROXY_AUTH_ADDRESSES": "10.20.0.0/24"})
        base = server.url.removesuffix("/api/v1")
        forged = {**via_proxy("ann", "faceshot-admins"), "X-Forwarded-For": "10.20.0.2"}
        r = httpx.get(f"{base}/admin/login", headers=forged, follow_redirects=False)
        assert r.status_code == 200 and COOKIE not in r.cookies  # from 127.0.0.1: not the proxy, whatever it says
        server.stop()
        server.start(env={**env, "FACESHOT_PROXY_AUTH_ADDRESSES": "127.0.0.1"})
        r = httpx.get(f"{base}/admin/login", headers={**forged, "X-Forwarded-For": "203.0.113.9"},
                      follow_redirects=False)
        assert r.status_code == 303 and COOKIE in r.cookies  # the connection is the proxy's
    finally:
        server.stop()
