"""The admin page in a real browser (Debian's Chromium via Playwright) against the real app, and its refusals."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from .conftest import ADMIN, CAMERA_PHOTO, screenshot


def expect(*args, **kwargs):
    from playwright.sync_api import expect as _expect

    return _expect(*args, **kwargs)


def sign_in(page, key: str = ADMIN, start: str = "/admin/people") -> None:
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def check_labels(page) -> None:
    """Every visible form control has an accessible name (label, aria-label or legend'd radio)."""
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea, button'))
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !(e.tagName === 'BUTTON' && e.textContent.trim()))
        .map(e => e.outerHTML)""")
    assert unnamed == []


def api_enroll(server, name: str, paths) -> None:
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    r = httpx.post(f"{server.url}/api/v1/enroll", headers={"X-API-Key": ADMIN}, data={"name": name}, files=files,
                   timeout=60)
    assert r.status_code == 201, r.text


@pytest.mark.slow  # a real browser against the real model
def test_enroll_identify_manage_sign_out(page, server, photos):
    # Two colleagues already enrolled through the API, so the list and the warnings have company.
    api_enroll(server, "Wen Jiabao", photos["Wen_Jiabao"][:1])
    api_enroll(server, "Padraig Harrington", photos["Padraig_Harrington"][:1])

    sign_in(page)
    expect(page.get_by_role("heading", name=re.compile("People"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Wen Jiabao"))).to_be_visible()

    # Enroll from two fixture photos: each previewed with its face box and "Looks good".
    nav(page, "Enroll")
    page.get_by_label("Name").fill("Emma Watson")
    page.get_by_label("Choose photos").set_input_files([str(p) for p in photos["Emma_Watson"][:2]])
    previews = page.locator(".preview")
    expect(previews).to_have_count(2)
    expect(previews.locator(".hints .ok", has_text="Looks good.")).to_have_count(2)
    expect(previews.locator("svg .box.chosen")).to_have_count(2)
    expect(page.locator("#check-ok")).to_have_text("No conflicts with the people already enrolled.")
    check_labels(page)
    screenshot(page, "enroll")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(r"/admin/people/[0-9a-f]{32}\?done=enrolled"))
    expect(page.get_by_role("heading", name="Emma Watson", level=1)).to_be_visible()
    expect(page.locator(".faces > li")).to_have_count(2)
    person_url = page.url.split("?")[0]
    screenshot(page, "person")

    # The list: thumbnails, names, photo counts; search.
    nav(page, "People")
    card = page.get_by_role("link", name=re.compile("Emma Watson"))
    expect(card).to_contain_text("2 photos")
    expect(page.locator(".people > li")).to_have_count(3)
    assert page.locator(".people img").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "people")
    page.get_by_label("Search by name or external id").fill("emma")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".people > li")).to_have_count(1)

    # Try it: a third photo of her is named; a stranger is Unknown.
    nav(page, "Try it")
    page.get_by_label("Choose a photo").set_input_files(str(photos["Emma_Watson"][2]))
    face = page.locator(".results > li").first
    expect(face.locator(".decision")).to_have_text("Face 1: Emma Watson")
    expect(face).to_have_class(re.compile("known"))
    expect(face.locator(".numbers")).to_contain_text("within the threshold")
    expect(face.locator("tbody tr").first).to_contain_text("Emma Watson")
    expect(page.locator(".stage svg .box.known")).to_have_count(1)
    screenshot(page, "try-known")
    page.get_by_label("Choose a photo").set_input_files(str(photos["Yasar_Yakis"][0]))
    face = page.locator(".results > li").first
    expect(face.locator(".decision")).to_have_text("Face 1: Unknown")
    expect(face.locator(".numbers")).to_contain_text("beyond the threshold")
    expect(face.locator("tbody tr")).to_have_count(3)  # the three enrolled people, nearest first
    screenshot(page, "try-unknown")

    # Settings: model facts; a key created (shown once) and revoked.
    nav(page, "Settings")
    expect(page.locator(".facts")).to_contain_text("dlib")
    expect(page.locator(".facts")).to_contain_text("3 people, 4 photos")
    page.get_by_label("Key name").fill("front door")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Key", exact=True).input_value()
    assert secret.startswith("fs_")
    check_labels(page)
    screenshot(page, "settings")
    assert httpx.get(f"{server.url}/api/v1/model", headers={"X-API-Key": secret}).status_code == 200
    page.get_by_role("button", name="Revoke key front door").click()
    expect(page.locator(".notice.ok")).to_have_text("Key revoked.")
    # the audit log names the admin page's key for what was done here
    expect(page.locator("table.audit tbody tr").first).to_contain_text("key.revoke")
    expect(page.locator("table.audit")).to_contain_text("person.enroll")
    assert httpx.get(f"{server.url}/api/v1/model", headers={"X-API-Key": secret}).status_code == 401

    # Person page: delete a support photo, rename, then delete the person after confirming.
    page.goto(person_url)
    page.get_by_role("button", name="Delete support photo 2").click()
    expect(page.locator(".notice.ok")).to_have_text("Photo deleted.")
    expect(page.locator(".faces > li")).to_have_count(1)
    page.get_by_label("Name", exact=True).fill("Emma C. Watson")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("heading", name="Emma C. Watson", level=1)).to_be_visible()
    check_labels(page)
    page.get_by_role("link", name="Delete Emma C. Watson…").click()
    expect(page.get_by_role("heading", name="Delete Emma C. Watson?")).to_be_visible()
    screenshot(page, "confirm-delete")
    page.get_by_role("button", name="Yes, delete Emma C. Watson").click()
    expect(page.locator(".notice.ok")).to_have_text("Person deleted.")
    expect(page.get_by_role("link", name=re.compile("Emma"))).to_have_count(0)
    expect(page.locator(".people > li")).to_have_count(2)

    # Sign out: the cookie is gone and pages send us back to sign in.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    screenshot(page, "login")
    page.goto("/admin/settings")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fsettings"))
    assert page.problems == []


@pytest.mark.slow  # a real browser against the real model
def test_camera_enroll(page, server, photos):
    """Chromium's fake camera plays a clip of a fixture face; a captured frame enrolls them."""
    sign_in(page, start="/admin/enroll")
    page.get_by_label("Name").fill("Camera Person")
    page.get_by_role("button", name="Use the camera").click()
    expect(page.locator("[data-video]")).to_be_visible()
    take = page.get_by_role("button", name="Take photo")
    expect(take).to_be_enabled()  # once the video plays
    take.click()
    expect(page.locator("[data-video]")).to_be_hidden()
    expect(page.locator(".preview .hints .ok")).to_have_text("Looks good.")
    expect(page.locator(".preview svg .box.chosen")).to_have_count(1)
    expect(page.locator("#check-ok, #check-warnings")).to_be_visible()
    screenshot(page, "enroll-camera")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Camera Person", level=1)).to_be_visible()
    expect(page.locator(".faces > li")).to_have_count(1)

    # The captured frame is a usable enrollment: another photo of the same man is named.
    who, index = CAMERA_PHOTO
    nav(page, "Try it")
    page.get_by_label("Choose a photo").set_input_files(str(photos[who][index + 1]))
    expect(page.locator(".results > li .decision").first).to_have_text("Face 1: Camera Person")
    assert page.problems == []


SIGN_IN_ROUTES = ("/admin/login", "/admin/oidc/start", "/admin/oidc/callback")


def _admin_routes(app):
    """Every route of the admin routers (FastAPI includes routers lazily, so read them, not app.routes)."""
    from app.admin import api, pages

    out = []
    for route in pages.router.routes + api.router.routes + pages.fallback.routes:
        # the sign-in's own routes: the form, and the company sign-in's start and callback (tests/admin/test_oidc_*)
        if isinstance(route, APIRoute) and route.path.startswith("/admin") and route.path not in SIGN_IN_ROUTES:
            path = re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", route.path)
            out += [(method, path) for method in sorted(route.methods)]
    return out


def _session(server) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=60)
    form = client.get("/admin/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    r = client.post("/admin/login", data={"secret": ADMIN, "login_token": token, "next": "/admin/settings"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/settings"
    csrf = re.search(r'data-csrf="([^"]+)"', client.get("/admin/settings").text).group(1)
    return client, csrf


def test_every_admin_route_refuses_without_a_session(server):
    routes = _admin_routes(server.app)
    assert len(routes) >= 20, routes
    forged = "eyJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5LCJieSI6InBhc3N3b3JkIn0.AAAA"
    for cookies, headers in [({}, {}), ({"faceshot_admin": forged}, {}), ({}, {"X-API-Key": ADMIN})]:
        with httpx.Client(base_url=server.url, follow_redirects=False, cookies=cookies, headers=headers) as client:
            for method, path in routes:
                r = client.request(method, path)
                if method == "GET" and not path.startswith("/admin/api/"):
                    assert r.status_code == 303, (method, path, r.status_code)
                    assert r.headers["location"].startswith("/admin/login?next="), (method, path)
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.json()["error"]["code"] == "unauthorized"
                assert r.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_state_changes_need_the_csrf_token(server, photos):
    client, csrf = _session(server)
    try:
        for method, path in _admin_routes(server.app):
            if method == "POST":
                r = client.post(path, data={"csrf_token": "wrong"}, headers={"X-CSRF-Token": "also-wrong"})
                assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", (path, r.status_code)
        jpg = photos["Carlos_Menem"][0]
        r = client.post("/admin/api/detect", files={"image": (jpg.name, jpg.read_bytes(), "image/jpeg")})
        assert r.status_code == 403
        r = client.post("/admin/api/detect", files={"image": (jpg.name, jpg.read_bytes(), "image/jpeg")},
                        headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and len(r.json()["faces"]) == 1
        # Signing out clears the cookie; the same CSRF token then does nothing.
        r = client.post("/admin/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and 'faceshot_admin=""' in r.headers["set-cookie"]
        assert client.get("/admin/settings").status_code == 303
    finally:
        client.close()


def test_sign_in_refusals_and_cookie_flags(server):
    recognition = httpx.post(f"{server.url}/api/v1/keys", headers={"X-API-Key": ADMIN},
                             json={"name": "cam", "role": "recognition"}).json()["key"]
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        form = client.get("/admin/login")
        assert "HttpOnly" in form.headers["set-cookie"] and "SameSite=strict" in form.headers["set-cookie"]

        def attempt(page, secret, next_url="", token=None):
            token = token or re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
            return client.post("/admin/login", data={"secret": secret, "login_token": token, "next": next_url})

        r = attempt(form, "nope")
        assert r.status_code == 401 and "not valid" in r.text
        r = attempt(r, recognition)
        assert r.status_code == 403 and "recognition key" in r.text
        # Without the sign-in form's own token (login CSRF) even the right key is refused.
        r = attempt(r, ADMIN, token="forged")
        assert r.status_code == 403 and "expired" in r.text
        # ?next= cannot redirect off the admin page.
        r = attempt(r, ADMIN, next_url="//evil.example/")
        assert r.status_code == 303 and r.headers["location"] == "/admin/people"
        cookie = r.headers["set-cookie"]
        assert "faceshot_admin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/admin" in cookie and "Secure" not in cookie  # FACESHOT_ADMIN_COOKIE_SECURE is off here


def test_revoking_the_key_ends_its_sessions(server):
    created = httpx.post(f"{server.url}/api/v1/keys", headers={"X-API-Key": ADMIN},
                         json={"name": "second admin", "role": "admin"}).json()
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        token = re.search(r'name="login_token" value="([^"]+)"', client.get("/admin/login").text).group(1)
        assert client.post("/admin/login", data={"secret": created["key"], "login_token": token}).status_code == 303
        assert client.get("/admin/people").status_code == 200
        httpx.delete(f"{server.url}/api/v1/keys/{created['id']}", headers={"X-API-Key": ADMIN})
        assert client.get("/admin/people").status_code == 303


@pytest.mark.slow  # a real browser against the real model
def test_enroll_picks_the_face_the_user_clicks(page, server, photos, tmp_path):
    """A photo of two people of the same size: nothing is chosen until the user says which face."""
    from PIL import Image

    left, right = (Image.open(photos[who][0]).convert("RGB") for who in ("Carlos_Menem", "Leonid_Kuchma"))
    pair = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    path = tmp_path / "two_people.jpg"
    pair.save(path, quality=92)

    sign_in(page, start="/admin/enroll")
    page.get_by_label("Name").fill("Leonid Kuchma")
    page.get_by_label("Choose photos").set_input_files(str(path))
    choose = page.get_by_role("group", name="2 faces: which one is this person?")
    expect(choose).to_be_visible()
    expect(page.locator(".preview .hints .warn")).to_contain_text("Several faces")
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    boxes = page.locator(".preview svg .box.other")
    expect(boxes).to_have_count(2)
    # Faces come largest first; pick the one on the right by its box.
    xs = boxes.locator("rect.face").evaluate_all("rs => rs.map(r => Number(r.getAttribute('x')))")
    right_face = max(range(2), key=lambda i: xs[i])
    page.get_by_label(f"Face {right_face + 1}").check()
    expect(page.locator(".preview svg .box.chosen")).to_have_count(1)
    expect(page.locator("#check-ok, #check-warnings")).to_be_visible()
    screenshot(page, "enroll-choose-face")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Leonid Kuchma", level=1)).to_be_visible()
    person_id = page.url.split("/admin/people/")[1].split("?")[0]
    faces = httpx.get(f"{server.url}/api/v1/people/{person_id}/faces", headers={"X-API-Key": ADMIN}).json()
    assert len(faces) == 1 and faces[0]["box"][0] >= left.width - 10  # the right-hand face was enrolled
    assert page.problems == []
