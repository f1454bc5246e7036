"""Admin sign-in with OpenID Connect (issue 31, point 1), against a real provider (panva's oidc-provider on Node,
tests/oidc_provider): the code flow with PKCE, the ID token's checks, rights from the groups claim at every sign-in,
and every refusal as a clear page and an audit entry."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.access.admin_sessions import COOKIE
from app.core.config import Settings
from app.main import create_app
from tests.oidc_provider.provider import OidcProvider, node_available, password_for

from .conftest import ADMIN

pytestmark = pytest.mark.skipif(not node_available(), reason="Node.js is not installed: no OpenID provider to test")

CLIENT_ID, CLIENT_SECRET = "faceshot", "faceshot-test-secret"
CALLBACK = "http://testserver/admin/oidc/callback"
RIGHTS = "faceshot-admins=deployment_admin; warehouse-viewers=warehouse:viewer"


@pytest.fixture(scope="module")
def provider():
    op = OidcProvider().start(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[CALLBACK])
    yield op
    op.stop()


@pytest.fixture
def client(provider, tmp_path, pipeline):
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, torch_threads=1, oidc_issuer=provider.issuer,
                        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET, admin_group_rights=RIGHTS)
    with TestClient(create_app(settings, pipeline), follow_redirects=False) as c:
        yield c
    provider.tamper(None)
    for login, groups in (("ann", ["faceshot-admins"]), ("bob", ["warehouse-viewers"]), ("eve", [])):
        provider.set_groups(login, groups)


def at_provider(authorization_url: str, login: str) -> str:
    """A browser at the provider: its login form filled in; the URL it sends the browser back to."""
    with httpx.Client(trust_env=False, timeout=10) as browser:
        response = browser.get(authorization_url)
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(CALLBACK):
                    return location
                response = browser.get(location)
                continue
            action = re.search(r'<form[^>]*action="([^"]+)"', response.text).group(1)
            response = browser.post(urljoin(str(response.url), action),
                                    data={"login": login, "password": password_for(login)})
    raise AssertionError("the provider never sent the browser back")


def start(client, next_url="/admin/people") -> str:
    r = client.get("/admin/oidc/start", params={"next": next_url})
    assert r.status_code == 303, r.text
    return r.headers["location"]


def back(client, callback_url: str):
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def audit(client, action):
    return client.get("/api/v1/audit", params={"action": action}, headers={"X-API-Key": ADMIN}).json()["items"]


def accounts(client):
    return {a["name"]: a for a in client.get("/api/v1/admin-accounts", headers={"X-API-Key": ADMIN}).json()}


def test_a_company_sign_in_makes_an_account_with_its_groups_rights(client, provider):
    page = client.get("/admin/login").text
    assert 'id="oidc-sign-in"' in page and 'name="secret"' in page  # local sign-in stays, unless turned off
    url = start(client)
    assert url.startswith(provider.issuer) and "code_challenge_method=S256" in url
    r = back(client, at_provider(url, "ann"))
    assert r.status_code == 303 and r.headers["location"] == "/admin/people" and client.cookies.get(COOKIE)
    assert client.get("/admin/settings").status_code == 200
    assert accounts(client)["ann"]["deployment_admin"]
    assert audit(client, "admin.sign_in")[0]["details"] == {"via": "oidc", "groups": ["faceshot-admins"]}

    # another person, a viewer in one collection by another group
    assert client.post("/api/v1/collections", json={"name": "warehouse"},
                       headers={"X-API-Key": ADMIN}).status_code == 201
    client.cookies.clear()
    assert back(client, at_provider(start(client), "bob")).status_code == 303
    bob = accounts(client)["bob"]
    assert bob["rights"] == {"warehouse": "viewer"} and not bob["deployment_admin"]
    client.cookies.clear()
    assert back(client, at_provider(start(client), "ann")).status_code == 303

    # her group taken away at the provider: the next sign-in is refused, her sessions end
    cookie = client.cookies.get(COOKIE)
    provider.set_groups("ann", [])
    client.cookies.clear()
    r = back(client, at_provider(start(client), "ann"))
    assert r.status_code == 403 and "grant no right" in r.text
    client.cookies.set(COOKIE, cookie, path="/admin")
    assert client.get("/admin/settings").status_code == 303
    assert accounts(client)["ann"]["disabled"]
    assert audit(client, "admin.sign_in_refused")[0]["details"]["code"] == "forbidden"


@pytest.mark.parametrize("defect", ["expired", "wrong_key", "wrong_audience", "wrong_issuer", "wrong_nonce", "none"])
def test_a_bad_id_token_is_refused(client, provider, defect):
    url = start(client)
    provider.tamper(defect)
    r = back(client, at_provider(url, "ann"))
    assert r.status_code == 403 and "ID token" in r.text and client.cookies.get(COOKIE) is None
    assert audit(client, "admin.sign_in_refused")[0]["details"]["code"] == "token_invalid"
    assert "ann" not in accounts(client)


def test_a_wrong_state_and_a_replayed_code_are_refused(client, provider):
    callback = at_provider(start(client), "ann")
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    r = back(client, forged)
    assert r.status_code == 400 and "state" in r.text and client.cookies.get(COOKIE) is None
    assert audit(client, "admin.sign_in_refused")[0]["details"]["code"] == "state_mismatch"

    callback = at_provider(start(client), "ann")
    flow = client.cookies.get("faceshot_oidc")
    assert back(client, callback).status_code == 303  # used once
    client.cookies.clear()
    client.cookies.set("faceshot_oidc", flow, path="/admin/oidc")
    r = back(client, callback)  # the same code again (a stolen redirect)
    assert r.status_code == 403 and "code" in r.text and client.cookies.get(COOKIE) is None
    assert audit(client, "admin.sign_in_refused")[0]["details"]["code"] == "code_refused"

    # a callback this browser never started: no flow cookie
    client.cookies.clear()
    assert back(client, callback).status_code == 400


def test_the_provider_down_is_a_clear_page(tmp_path, pipeline):
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, torch_threads=1,
                        oidc_issuer="http://127.0.0.1:9", oidc_client_id=CLIENT_ID, admin_group_rights=RIGHTS)
    with TestClient(create_app(settings, pipeline), follow_redirects=False) as c:
        r = c.get("/admin/oidc/start")
        assert r.status_code == 503 and "cannot be reached" in r.text
        assert audit(c, "admin.sign_in_refused")[0]["details"]["code"] == "provider_unreachable"


def test_password_sign_in_can_be_turned_off(provider, tmp_path, pipeline):
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, torch_threads=1, oidc_issuer=provider.issuer,
                        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET, admin_group_rights=RIGHTS,
                        admin_password_signin=False)
    with TestClient(create_app(settings, pipeline), follow_redirects=False) as c:
        page = c.get("/admin/login").text
        assert 'id="oidc-sign-in"' in page and 'name="secret"' not in page
        r = c.post("/admin/login", data={"secret": ADMIN, "login_token": "x"})
        assert r.status_code == 403 and c.cookies.get(COOKIE) is None
        assert back(c, at_provider(start(c), "ann")).status_code == 303  # the company sign-in works


@pytest.mark.slow  # Chromium, the real app under uvicorn, the provider on Node
def test_a_browser_signs_in_through_the_provider(browser, pipeline, tmp_path, capsys):
    """The round trip as a person makes it: the admin page's button, the provider's form, back signed in."""
    import time

    from app.testing.tcp_proxy import free_port

    from .conftest import open_page, running_app

    port = free_port()
    with running_app(pipeline, tmp_path / "data", oidc_issuer=f"http://127.0.0.1:{port}", oidc_client_id=CLIENT_ID,
                     oidc_client_secret=CLIENT_SECRET, admin_group_rights=RIGHTS) as app, \
            OidcProvider().start(port=port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                 redirect_uris=[f"{app.url}/admin/oidc/callback"]):
        page = open_page(browser, app.url)
        try:
            page.goto("/admin/people")  # not signed in: to the sign-in page, which offers the company sign-in
            assert "/admin/login" in page.url
            t0 = time.perf_counter()
            page.click("#oidc-sign-in")
            page.fill('input[name="login"]', "ann")
            page.fill('input[name="password"]', password_for("ann"))
            page.click("#submit")
            page.wait_for_url(f"{app.url}/admin/people")
            took_ms = (time.perf_counter() - t0) * 1000
            assert any(c["name"] == COOKIE for c in page.context.cookies(f"{app.url}/admin/people"))
            assert page.locator("body").inner_text()  # the people page itself, not the sign-in form
            assert page.locator('input[name="secret"]').count() == 0
            with capsys.disabled():
                print(f"\n  OpenID sign-in round trip in Chromium: {took_ms:.0f} ms (button -> provider form -> "
                      "admin page)")
        finally:
            page.context.close()
