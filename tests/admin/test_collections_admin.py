"""The admin page within collections (issue 19): named accounts with rights per collection, the switcher,
and a collection's admin or viewer never seeing another collection's names."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.access.admin_sessions import COOKIE
from app.access.ratelimit import RateLimiter
from app.admin.scope import COLLECTION_COOKIE, COLLECTION_HEADER
from app.core.config import Settings
from app.main import create_app
from app.testing.server import FACESHOT

from .conftest import ADMIN

PASSWORD = "warehouse-pass-2026"


def _upload(path, field="images"):
    return (field, (path.name, path.read_bytes(), "image/jpeg"))


@pytest.fixture(scope="module")
def deployment(pipeline, photos, tmp_path_factory):
    """`default` holds Emma Watson (the office); `warehouse` holds Wen Jiabao; accounts of each kind."""
    data_dir = tmp_path_factory.mktemp("collections-admin")
    settings = Settings(data_dir=data_dir, admin_key=ADMIN, torch_threads=1, auth_failure_limit="8/minute")
    with TestClient(create_app(settings, pipeline), headers={"X-API-Key": ADMIN}) as api:
        assert api.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201
        emma = api.post("/api/v1/enroll", data={"name": "Emma Watson"},
                        files=[_upload(p) for p in photos["Emma_Watson"][:2]]).json()["person"]["id"]
        wen = api.post("/api/v1/collections/warehouse/enroll", data={"name": "Wen Jiabao"},
                       files=[_upload(p) for p in photos["Wen_Jiabao"][:2]]).json()["person"]["id"]
        api.post("/api/v1/events", json={"source": "office-door", "person_id": emma, "distance": 0.2,
                                         "threshold": 0.4, "box": [1, 2, 3, 4]})
        accounts = {}
        for name, body in (("ann", {"rights": {"warehouse": "admin"}}), ("vic", {"rights": {"warehouse": "viewer"}}),
                           ("dora", {"deployment_admin": True})):
            r = api.post("/api/v1/admin-accounts", json={"name": name, "password": PASSWORD, **body})
            assert r.status_code == 201, r.text
            accounts[name] = r.json()["id"]
        keys = {role: api.post("/api/v1/keys", json={"name": f"warehouse {role}", "role": role,
                                                      "collection": "warehouse"}).json()["key"]
                for role in ("admin", "recognition")}
        yield {"api": api, "emma": emma, "wen": wen, "accounts": accounts, "keys": keys, "data_dir": data_dir,
               "app": api.app}


def _browser_like(deployment, address: str = "testclient") -> TestClient:
    return TestClient(deployment["app"], follow_redirects=False, client=(address, 50000))


def sign_in(client: TestClient, secret: str, account: str = "") -> str:
    """Sign in (an account and its password, or a key); the page's CSRF token."""
    client.cookies.clear()
    form = client.get("/admin/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    r = client.post("/admin/login", data={"account": account, "secret": secret, "login_token": token})
    assert r.status_code == 303, r.text
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/people").text).group(1)


def _refused_sign_in(client: TestClient, secret: str, account: str = ""):
    client.cookies.clear()
    form = client.get("/admin/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    return client.post("/admin/login", data={"account": account, "secret": secret, "login_token": token})


PAGES = ("/admin/people", "/admin/people?search=Wats", "/admin/try", "/admin/live", "/admin/events", "/admin/review",
         "/admin/events.csv", "/admin/settings", "/admin/audit.csv")


@pytest.mark.parametrize("how", ["account", "collection admin key"])
def test_a_collection_admin_never_sees_another_collections_names(deployment, photos, how):
    client = _browser_like(deployment)
    csrf = sign_in(client, PASSWORD, "ann") if how == "account" else sign_in(client, deployment["keys"]["admin"])
    emma, wen = deployment["emma"], deployment["wen"]
    assert "Wen Jiabao" in client.get("/admin/people").text
    for path in PAGES:  # every page it can open: no office name, no office camera, no office key
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        for secret in ("Emma Watson", "office-door", ADMIN[:8]):  # ADMIN[:8]: the deployment key's listed prefix
            assert secret not in r.text, (path, secret)
    assert "collection-switch" not in client.get("/admin/people").text  # one collection: nothing to switch to
    # another collection's person is not there at all, whichever way it is asked for
    for path in (f"/admin/people/{emma}", f"/admin/people/{emma}/delete",
                 f"/admin/people/{emma}/faces/x/image?thumb=1"):
        r = client.get(path)
        assert r.status_code == 404 and "Emma" not in r.text, path
    r = client.post(f"/admin/people/{emma}/delete", data={"csrf_token": csrf})
    assert r.status_code == 404
    r = client.post(f"/admin/people/{emma}/details", data={"csrf_token": csrf, "name": "Renamed"})
    assert r.status_code == 404
    assert deployment["api"].get(f"/api/v1/people/{emma}").json()["name"] == "Emma Watson"  # untouched
    # nor can it switch, be switched by a forged cookie, or send the page's script elsewhere
    assert client.post("/admin/collection", data={"csrf_token": csrf, "collection": "default"}).status_code == 404
    client.cookies.set(COLLECTION_COOKIE, "default", path="/admin")
    assert "Emma" not in client.get("/admin/people").text and "Wen Jiabao" in client.get("/admin/people").text
    emma_photo = photos["Emma_Watson"][2]
    r = client.post("/admin/api/identify", files=[_upload(emma_photo, "image")],
                    headers={"X-CSRF-Token": csrf, COLLECTION_HEADER: "default"})
    assert r.status_code == 404
    # identify in the warehouse never names the office's Emma, even from her photo
    r = client.post("/admin/api/identify", files=[_upload(emma_photo, "image")],
                    headers={"X-CSRF-Token": csrf, COLLECTION_HEADER: "warehouse"})
    assert r.status_code == 200 and "Emma" not in r.text and r.json()["faces"][0]["person"] is None
    r = client.post("/admin/api/identify", files=[_upload(photos["Wen_Jiabao"][2], "image")],
                    headers={"X-CSRF-Token": csrf})
    assert r.json()["faces"][0]["person"]["id"] == wen
    # deployment-wide things stay out of reach
    assert client.post("/admin/collections", data={"csrf_token": csrf, "name": "mine"}).status_code == 403
    assert client.post("/admin/keys", data={"csrf_token": csrf, "name": "x", "scope": "deployment"}).status_code == 403


def test_a_recognition_key_cannot_sign_in_to_the_admin_page(deployment):
    client = _browser_like(deployment)
    r = _refused_sign_in(client, deployment["keys"]["recognition"])
    assert r.status_code == 403 and "recognition key" in r.text and COOKIE not in client.cookies


def test_a_collection_admin_enrolls_and_makes_keys_in_their_collection_only(deployment, photos):
    client = _browser_like(deployment)
    csrf = sign_in(client, PASSWORD, "ann")
    r = client.post("/admin/api/enroll", data={"name": "Yasar Yakis"}, files=[_upload(photos["Yasar_Yakis"][0])],
                    headers={"X-CSRF-Token": csrf, COLLECTION_HEADER: "warehouse"})
    assert r.status_code == 201, r.text
    person = r.json()["person"]["id"]
    api = deployment["api"]
    assert api.get(f"/api/v1/collections/warehouse/people/{person}").status_code == 200
    assert api.get(f"/api/v1/people/{person}").status_code == 404  # not in default
    r = client.post("/admin/keys", data={"csrf_token": csrf, "name": "dock camera", "role": "recognition"})
    assert r.status_code == 303
    made = [k for k in api.get("/api/v1/keys").json() if k["name"] == "dock camera"]
    assert [k["collection"] for k in made] == ["warehouse"]
    # the audit log names the account and the collection
    entries = api.get("/api/v1/audit", params={"action": "person.enroll", "collection": "warehouse"}).json()["items"]
    assert any(e["target"] == person and e["actor"] == {"kind": "account", "id": deployment["accounts"]["ann"],
                                                        "name": "ann (admin page)"} for e in entries)
    assert client.post(f"/admin/people/{person}/delete", data={"csrf_token": csrf}).status_code == 303


def test_a_viewer_looks_and_tries_but_changes_nothing(deployment, photos):
    client = _browser_like(deployment)
    csrf = sign_in(client, PASSWORD, "vic")
    wen = deployment["wen"]
    page = client.get(f"/admin/people/{wen}").text
    assert "Wen Jiabao" in page and "Save details" not in page and "(viewer)" in page
    r = client.post("/admin/api/identify", files=[_upload(photos["Wen_Jiabao"][2], "image")],
                    headers={"X-CSRF-Token": csrf})
    assert r.json()["faces"][0]["person"]["id"] == wen
    assert client.get("/admin/enroll").status_code == 403
    r = client.post("/admin/api/enroll", data={"name": "Someone"}, files=[_upload(photos["Yasar_Yakis"][0])],
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.post(f"/admin/people/{wen}/details", data={"csrf_token": csrf, "name": "X"}).status_code == 403
    assert client.post(f"/admin/people/{wen}/delete", data={"csrf_token": csrf}).status_code == 403
    assert client.post("/admin/keys", data={"csrf_token": csrf, "name": "k"}).status_code == 403
    assert deployment["api"].get(f"/api/v1/collections/warehouse/people/{wen}").json()["name"] == "Wen Jiabao"


def test_a_deployment_admin_switches_between_collections(deployment):
    client = _browser_like(deployment)
    csrf = sign_in(client, PASSWORD, "dora")
    people = client.get("/admin/people").text
    assert "Emma Watson" in people and "Wen Jiabao" not in people and "collection-switch" in people
    r = client.post("/admin/collection", data={"csrf_token": csrf, "collection": "warehouse",
                                               "next": f"/admin/people/{deployment['emma']}"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/people"  # not a person left behind
    people = client.get("/admin/people").text
    assert "Wen Jiabao" in people and "Emma Watson" not in people
    assert client.post("/admin/collection", data={"csrf_token": csrf, "collection": "nowhere"}).status_code == 404
    settings = client.get("/admin/settings").text
    assert "Admin accounts" in settings and "ann" in settings and "viewer of warehouse" in settings


def _file_bytes(folder: Path, pattern: str) -> bytes:
    """The database's files as bytes, read by another process: closing a descriptor of the file in this one would
    drop every POSIX lock this process's SQLite connections hold on it, and the next process to close the database
    would think itself the last and reset its WAL under them (sqlite.org/howtocorrupt.html, 2.2)."""
    read = "import pathlib, sys; sys.stdout.buffer.write(b''.join(p.read_bytes() for p in pathlib.Path(sys.argv[1])" \
           ".glob(sys.argv[2])))"
    return subprocess.run([sys.executable, "-c", read, str(folder), pattern], capture_output=True, check=True,
                          timeout=60).stdout


def test_account_passwords_are_hashed_and_sign_ins_end_with_them(deployment, tmp_path):
    api, accounts = deployment["api"], deployment["accounts"]
    name, password = "temp", "a long enough password"
    r = api.post("/api/v1/admin-accounts", json={"name": name, "password": password, "rights": {"warehouse": "admin"}})
    assert r.status_code == 201 and "password" not in r.text and "hash" not in r.text
    account = r.json()["id"]
    db = sqlite3.connect(deployment["data_dir"] / "faceshot.db")
    stored = db.execute("SELECT password_hash FROM admin_accounts WHERE id = ?", (account,)).fetchone()[0]
    assert stored.startswith("$argon2id$") and password not in stored
    db.close()
    assert password.encode() not in _file_bytes(deployment["data_dir"], "faceshot.db*")
    client = _browser_like(deployment)
    assert _refused_sign_in(client, "wrong password!!", name).status_code == 401
    assert _refused_sign_in(client, password, "nobody").status_code == 401  # the same answer for no such account
    sign_in(client, password, name)
    assert client.get("/admin/people").status_code == 200
    # a right taken away is gone from the next request
    assert api.patch(f"/api/v1/admin-accounts/{account}", json={"rights": {"default": "viewer"}}).status_code == 200
    people = client.get("/admin/people").text
    assert "Emma Watson" in people and "Wen Jiabao" not in people
    # a new password ends the session; so does disabling
    assert api.patch(f"/api/v1/admin-accounts/{account}", json={"password": "another long password"}).status_code == 200
    assert client.get("/admin/people").status_code == 303
    sign_in(client, "another long password", name)
    assert api.patch(f"/api/v1/admin-accounts/{account}", json={"disabled": True}).status_code == 200
    assert client.get("/admin/people").status_code == 303
    assert _refused_sign_in(client, "another long password", name).status_code == 401
    assert api.delete(f"/api/v1/admin-accounts/{account}").status_code == 204
    assert accounts["ann"] in {a["id"] for a in api.get("/api/v1/admin-accounts").json()}


def _faceshot(deployment, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESHOT_")}
    env["FACESHOT_DATA_DIR"] = str(deployment["data_dir"])
    return subprocess.run([FACESHOT, "admin-account", *args],
                          input=None if password is None else password + "\n", capture_output=True, text=True,
                          env=env, timeout=120)


def test_an_operator_makes_and_resets_an_account_from_the_command_line(deployment):
    """`faceshot admin-account` on the host, beside the running service: no key needed, the way back in."""
    api, client = deployment["api"], _browser_like(deployment)
    first, second = "olga's first password", "olga's second password"
    made = _faceshot(deployment, "Olga", "--right", "warehouse=viewer", "--password-stdin", password=first)
    assert made.returncode == 0 and "'olga' was created: warehouse (viewer)" in made.stderr, made.stderr
    assert first not in made.stdout + made.stderr
    sign_in(client, first, "olga")
    assert "Wen Jiabao" in client.get("/admin/people").text
    olga = next(a for a in api.get("/api/v1/admin-accounts").json() if a["name"] == "olga")
    assert api.patch(f"/api/v1/admin-accounts/{olga['id']}", json={"disabled": True}).status_code == 200
    # refusals change nothing: a second create, a collection that is not there, a reset that would change rights
    for args, code in ((("olga", "--right", "warehouse=admin"), "conflict"),
                       (("pat", "--right", "nowhere=admin"), "not_found"),
                       (("pat",), "validation_error"),
                       (("olga", "--reset", "--right", "default=admin"), "validation_error"),
                       (("nobody", "--reset"), "not_found")):
        refused = _faceshot(deployment, *args, "--password-stdin", password="a password of no use")
        assert refused.returncode == 1 and refused.stderr.startswith(f"faceshot: {code}: "), (args, refused.stderr)
    assert {a["name"] for a in api.get("/api/v1/admin-accounts").json()} == {"ann", "vic", "dora", "olga"}
    assert _refused_sign_in(client, first, "olga").status_code == 401  # still disabled
    reset = _faceshot(deployment, "olga", "--reset", "--password-stdin", password=second)
    assert reset.returncode == 0 and "has a new password" in reset.stderr, reset.stderr
    assert _refused_sign_in(client, first, "olga").status_code == 401
    sign_in(client, second, "olga")
    assert "Wen Jiabao" in client.get("/admin/people").text and "Emma Watson" not in client.get("/admin/people").text
    entries = api.get("/api/v1/audit", params={"limit": 100}).json()["items"]
    actions = [(e["action"], e["actor"]["kind"]) for e in entries if e.get("target") == olga["id"]]
    assert actions == [("account.update", "cli"), ("account.update", "key"), ("account.create", "cli")]
    assert api.delete(f"/api/v1/admin-accounts/{olga['id']}").status_code == 204


def _fresh_failure_count(deployment) -> None:
    settings = deployment["app"].state.service.settings
    deployment["app"].state.limiter = RateLimiter(settings.rate_limit, settings.auth_failure_limit)


def test_guessing_an_accounts_password_is_braked(deployment):
    _fresh_failure_count(deployment)  # the failures of the tests before this one
    client = _browser_like(deployment)
    for _ in range(8):  # FACESHOT_AUTH_FAILURE_LIMIT=8/minute in this deployment
        assert _refused_sign_in(client, f"guess {datetime.now(timezone.utc)}", "ann").status_code == 401
    assert _refused_sign_in(client, PASSWORD, "ann").status_code == 429  # even the right one, for a while
    sign_in(client, ADMIN)  # an admin key is never braked
    # guesses spread over many addresses still brake the account for those addresses...
    _fresh_failure_count(deployment)
    for i in range(8):
        assert _refused_sign_in(_browser_like(deployment, f"10.0.0.{i}"), "a guess", "vic").status_code == 401
    assert _refused_sign_in(_browser_like(deployment, "10.0.0.3"), PASSWORD, "vic").status_code == 429
    # ...but cannot keep its owner out (issue 26, point 9): an address without recent failures gets its try, and
    # the right password signs in; a wrong one from a new address is one more failure, and brakes that address
    sign_in(_browser_like(deployment, "10.0.1.1"), PASSWORD, "vic")
    assert _refused_sign_in(_browser_like(deployment, "10.0.1.2"), "a guess", "vic").status_code == 401
    assert _refused_sign_in(_browser_like(deployment, "10.0.1.2"), PASSWORD, "vic").status_code == 429
    sign_in(_browser_like(deployment, "10.0.1.1"), PASSWORD, "ann")
    _fresh_failure_count(deployment)  # and for the tests after it


def test_account_rules_through_the_api(deployment):
    api = deployment["api"]
    bad = [({"name": "x", "password": "short"}, 422),
           ({"name": "x", "password": "long enough pass", "rights": {"nowhere": "admin"}}, 404),
           ({"name": "x", "password": "long enough pass", "rights": {"warehouse": "owner"}}, 422),
           ({"name": "x", "password": "long enough pass"}, 422),  # no right at all
           ({"name": "ANN", "password": "long enough pass", "deployment_admin": True}, 409)]  # names are lowercase
    for body, status in bad:
        r = api.post("/api/v1/admin-accounts", json=body)
        assert r.status_code == status, (body, r.text)
    warehouse_admin = {"X-API-Key": deployment["keys"]["admin"]}
    assert api.get("/api/v1/admin-accounts", headers=warehouse_admin).status_code == 403
    sneaky = {"name": "sneaky", "password": "long enough pass", "deployment_admin": True}
    assert api.post("/api/v1/admin-accounts", headers=warehouse_admin, json=sneaky).status_code == 403


def test_the_switcher_in_a_browser(page, server, photos):
    """Chromium: a deployment admin account signs in, sees the office, switches to the warehouse; a warehouse admin
    sees the warehouse and no switcher."""
    import httpx
    from playwright.sync_api import expect

    from .conftest import screenshot
    from .test_admin_page import check_labels

    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN}, timeout=60) as api:
        assert api.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201
        for path, who in (("/api/v1/enroll", "Emma_Watson"), ("/api/v1/collections/warehouse/enroll", "Wen_Jiabao")):
            r = api.post(path, data={"name": who.replace("_", " ")}, files=[_upload(photos[who][0])])
            assert r.status_code == 201, r.text
        for name, body in (("dora", {"deployment_admin": True}), ("ann", {"rights": {"warehouse": "admin"}})):
            r = api.post("/api/v1/admin-accounts", json={"name": name, "password": PASSWORD, **body})
            assert r.status_code == 201, r.text

    def browser_sign_in(account):
        page.goto("/admin/login")
        page.get_by_label("Account name").fill(account)
        page.get_by_label("Password or admin key").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

    browser_sign_in("dora")
    people = page.locator(".person-card")
    expect(people).to_have_count(1)
    expect(people).to_contain_text("Emma Watson")
    page.get_by_label("Collection", exact=True).select_option("warehouse")
    page.get_by_role("button", name="Switch").click()
    expect(people).to_have_count(1)
    expect(people).to_contain_text("Wen Jiabao")
    expect(page.get_by_label("Collection", exact=True)).to_have_value("warehouse")
    check_labels(page)
    screenshot(page, "collections-switcher")
    page.get_by_role("button", name="Sign out").click()

    browser_sign_in("ann")
    expect(page.locator("#collection-name")).to_contain_text("warehouse")
    expect(page.get_by_label("Collection", exact=True)).to_have_count(0)
    expect(people).to_contain_text("Wen Jiabao")
    assert "Emma" not in page.content()
    assert page.problems == []


def _key_made_on_the_page(client: TestClient, csrf: str, name: str) -> str:
    r = client.post("/admin/keys", data={"csrf_token": csrf, "name": name, "role": "admin", "scope": "deployment"})
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    return re.search(r'id="new-key-secret" readonly value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("leaves_by", ["disabled", "deleted"])
def test_keys_an_account_made_stop_working_when_the_account_goes(deployment, leaves_by):
    """Issue 26, point 9: an admin key made by a named account kept working after the account was disabled or
    deleted; the leaver kept the deployment."""
    api = deployment["api"]
    r = api.post("/api/v1/admin-accounts", json={"name": f"leaver-{leaves_by}", "password": PASSWORD,
                                                   "deployment_admin": True})
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    client = _browser_like(deployment)
    secret = _key_made_on_the_page(client, sign_in(client, PASSWORD, f"leaver-{leaves_by}"), "leaver's key")
    assert api.get("/api/v1/keys", headers={"X-API-Key": secret}).status_code == 200
    if leaves_by == "disabled":
        assert api.patch(f"/api/v1/admin-accounts/{account}", json={"disabled": True}).status_code == 200
    else:
        assert api.delete(f"/api/v1/admin-accounts/{account}").status_code == 204
    assert api.get("/api/v1/keys", headers={"X-API-Key": secret}).status_code == 401
    made = [k for k in api.get("/api/v1/keys").json() if k["name"] == "leaver's key"]
    assert made and all(k["revoked_at"] for k in made)
    revoked = api.get("/api/v1/audit", params={"action": "key.revoke"}).json()["items"]
    assert any("account was disabled or deleted" in e["details"].get("reason", "") for e in revoked)


def test_password_checks_are_bounded_at_once(deployment):
    """Issue 26, point 9: each sign-in attempt costs an argon2id hash (64 MB); 40 at once from 40 addresses took
    +892 MB and slowed identify to 2.76 s. Beyond two at once a worker refuses at once (503, Retry-After)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    _fresh_failure_count(deployment)
    accounts = deployment["app"].state.service.accounts
    start = threading.Barrier(12)

    def attempt(i):
        start.wait()
        return _refused_sign_in(_browser_like(deployment, f"10.9.0.{i}"), "a guess", "ann")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(attempt, range(12)))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {401, 503} and 503 in statuses, statuses
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 503)
    assert accounts._checks._value == 2  # every place given back
    _fresh_failure_count(deployment)


def test_a_viewer_sees_no_keys_webhook_urls_or_audit_entries(deployment):
    """Issue 26, point 14: a viewer saw key names and prefixes, and webhook URLs (which may carry tokens)."""
    api = deployment["api"]
    token_url = "https://hooks.example.com/warehouse?token=s3cr3t-t0ken"
    assert api.post("/api/v1/collections/warehouse/webhooks", json={"url": token_url}).status_code == 201
    client = _browser_like(deployment)
    sign_in(client, PASSWORD, "vic")
    client.cookies.set(COLLECTION_COOKIE, "warehouse")
    settings, events = client.get("/admin/settings").text, client.get("/admin/events").text
    for page in (settings, events):
        assert "s3cr3t-t0ken" not in page and "hooks.example.com" not in page
        assert "warehouse admin" not in page and "warehouse recognition" not in page  # the keys' names
    assert "shown to the collection's admins" in settings
    assert client.get("/admin/audit.csv").status_code == 403
    # the collection's admin still sees them
    admin = _browser_like(deployment)
    sign_in(admin, PASSWORD, "ann")
    assert "hooks.example.com" in admin.get("/admin/events").text
    assert "warehouse recognition" in admin.get("/admin/settings").text


def test_a_collection_header_naming_no_collection_is_404_and_makes_no_gallery(deployment):
    """Issue 26, point 14: a deployment admin's X-Faceshot-Collection minted an empty gallery per name."""
    client = _browser_like(deployment)
    csrf = sign_in(client, PASSWORD, "dora")
    service = deployment["app"].state.service
    before = service.galleries.names()
    for name in ("nowhere", "x" * 3000):
        r = client.post("/admin/api/identify", files=[("image", ("a.jpg", b"\xff\xd8", "image/jpeg"))],
                        headers={"X-CSRF-Token": csrf, COLLECTION_HEADER: name})
        assert r.status_code == 404, r.text
    assert service.galleries.names() == before
