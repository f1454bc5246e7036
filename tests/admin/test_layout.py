"""The admin page's frame at every width (issue 25, point 6): a one-row header on a desktop, Events and Settings usable
on a phone, refusals as HTML pages inside the frame, and Settings naming the encoder's runtime and device."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import httpx
import pytest

from .conftest import ADMIN, SIZES, screenshot
from .test_admin_page import expect, sign_in

PASSWORD = "layout-test-password"
DEPLOYMENT = "dora.the-deployment-administrator@example.com"  # a long name, as a real e-mail address is
VIEWER = "vic"


@pytest.fixture(scope="module")
def office(server, photos):
    """Two people, a second collection (so a deployment admin gets the switcher), a viewer, a key, events."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN}, timeout=60) as api:
        people = {}
        for who in ("Emma_Watson", "Padraig_Harrington"):
            path = photos[who][0]
            r = api.post("/api/v1/enroll", data={"name": who.replace("_", " ")},
                         files=[("images", (path.name, path.read_bytes(), "image/jpeg"))])
            assert r.status_code == 201, r.text
            people[who] = r.json()["person"]["id"]
        assert api.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201
        for name, body in ((DEPLOYMENT, {"deployment_admin": True}), (VIEWER, {"rights": {"default": "viewer"}})):
            r = api.post("/api/v1/admin-accounts", json={"name": name, "password": PASSWORD, **body})
            assert r.status_code == 201, r.text
        assert api.post("/api/v1/keys", json={"name": "front door camera", "role": "recognition"}).status_code == 201
        when = datetime(2026, 3, 2, 9, 15, tzinfo=timezone.utc)
        for source, person in (("door-1", people["Emma_Watson"]), ("door-2", None), ("loading-bay", None)):
            r = api.post("/api/v1/events", json={"source": source, "person_id": person, "distance": 0.3,
                                                 "threshold": 0.4, "box": [1, 2, 3, 4], "time": when.isoformat()})
            assert r.status_code == 201, r.text
    return people


def account_sign_in(page, account: str, start: str = "/admin/people") -> None:
    page.goto(start)
    page.get_by_label("Account name").fill(account)
    page.get_by_label("Password or admin key").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def header_rows(page) -> dict:
    """Where the header's parts (and each navigation link) sit: on one row when every one of them starts above the
    bottom of every other."""
    return page.evaluate("""() => {
        const header = document.querySelector('header.top');
        const all = [...header.children, ...header.querySelectorAll('nav li')];
        const parts = all.filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect());
        return { parts: parts.length, hidden: all.length - parts.length, height: header.getBoundingClientRect().height,
                 lowestTop: Math.max(...parts.map(r => r.top)), highestBottom: Math.min(...parts.map(r => r.bottom)),
                 overflow: document.documentElement.scrollWidth - window.innerWidth };
    }""")


def pages_of(person: str) -> dict[str, str]:
    return {"people": "/admin/people", "person": f"/admin/people/{person}", "enroll": "/admin/enroll",
            "try": "/admin/try", "live": "/admin/live", "events": "/admin/events", "review": "/admin/review",
            "attendance": "/admin/attendance?day=2026-03-02", "settings": "/admin/settings",
            "confirm-delete": f"/admin/people/{person}/delete", "not-found": "/admin/people/" + "0" * 32}


@pytest.mark.parametrize("who", ["deployment admin with the switcher", "viewer"])
def test_the_header_is_one_row_on_every_page_of_a_desktop(page, server, office, who):
    if who == "viewer":
        account_sign_in(page, VIEWER)
        expect(page.locator("#collection-name")).to_contain_text("default")
    else:
        account_sign_in(page, DEPLOYMENT)
        expect(page.get_by_label("Collection", exact=True)).to_be_visible()
    for name, path in pages_of(office["Emma_Watson"]).items():
        if who == "viewer" and name in ("enroll", "confirm-delete"):
            continue  # refused to a viewer (test_refusals_are_pages_inside_the_admin_frame)
        page.goto(path)
        for width in (1280, 1920):
            page.set_viewport_size({"width": width, "height": 800})
            rows = header_rows(page)
            assert rows["parts"] >= 11 and rows["hidden"] == 0, (name, rows)  # brand, 6-7 links, collection, who...
            assert rows["lowestTop"] < rows["highestBottom"], (name, width, rows)
            assert rows["height"] < 64 and rows["overflow"] <= 0, (name, width, rows)
        if who != "viewer":  # every page at 390, 1280 and 1920 px, looked at
            screenshot(page, f"page-{name}")
    # nothing went wrong but the not-found page's own 404 (and Chromium's console line about it)
    assert len(page.problems) == 2 and all("404" in p for p in page.problems), page.problems


def test_events_settings_and_attendance_fit_a_phone(page, server, office):
    sign_in(page, start="/admin/events")
    phone = SIZES["phone"]
    page.set_viewport_size({"width": phone[0], "height": phone[1]})

    def fits() -> None:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= phone[0], (page.url, width)

    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(3)
    fits()
    # the filters are a column: each label above its control, each control the column's width and usable
    for label in ("Camera", "Who", "Day (UTC)"):
        control = page.get_by_label(label, exact=True)
        expect(control).to_be_visible()
        box, above = control.bounding_box(), page.locator(f"label[for='{control.get_attribute('id')}']").bounding_box()
        assert above["y"] + above["height"] <= box["y"] + 1 and box["x"] >= 0 and box["x"] + box["width"] <= phone[0]
        assert box["width"] >= phone[0] * 0.75, (label, box)
    page.get_by_label("Camera", exact=True).fill("loading-bay")
    page.get_by_label("Who", exact=True).select_option("unknown")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("loading-bay")
    fits()
    # each event is a card whose cells name their column
    cell = rows.first.locator("td").nth(1)
    assert page.evaluate("(td) => getComputedStyle(td, '::before').content", cell.element_handle()) == '"Camera"'

    page.goto("/admin/settings")
    fits()
    keys = page.locator("#key-table tbody tr")
    expect(keys).to_have_count(2)
    for i in range(2):
        box = keys.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= phone[0]
    revoke = page.get_by_role("button", name="Revoke key front door camera")
    revoke.scroll_into_view_if_needed()
    box = revoke.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= phone[0]
    revoke.click()
    expect(page.locator("p[role=status].notice.ok")).to_have_text("Key revoked.")
    fits()
    expect(page.locator("#account-table")).to_be_visible()
    expect(page.get_by_role("button", name="Create account")).to_be_visible()

    page.goto("/admin/attendance?day=2026-03-02")
    expect(page.locator("#attendance-table tbody tr")).to_have_count(1)
    fits()
    assert page.problems == []


def test_refusals_are_pages_inside_the_admin_frame(page, server, office):
    account_sign_in(page, VIEWER)
    # a viewer opening Enroll (by its address: the header offers no link) is told so on a page of the site
    response = page.goto("/admin/enroll")
    assert response.status == 403 and response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
    expect(page.locator("#error-message")).to_contain_text("a viewer's right")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert "{" not in page.locator("main").inner_text()
    screenshot(page, "error-viewer-enroll")
    # a person who is not there, and an address that is not there
    for path in ("/admin/people/" + "0" * 32, "/admin/no-such-page"):
        response = page.goto(path)
        assert response.status == 404 and response.headers["content-type"].startswith("text/html"), path
        expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    response = page.goto("/admin/people?page=0")  # a field out of range names the field
    assert response.status == 422
    expect(page.locator("#error-message")).to_have_text("The request is missing or has invalid fields: page.")
    page.get_by_role("link", name="Go to People").click()
    expect(page.locator(".person-card")).to_have_count(2)
    # the page's script still gets JSON (it asks for it), and so does any client that does not ask for HTML
    csrf = page.locator("body").get_attribute("data-csrf")
    r = page.request.post("/admin/api/enroll", headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
                          multipart={"name": "Someone", "images": {"name": "a.jpg", "mimeType": "image/jpeg",
                                                                   "buffer": b"not read"}})
    assert r.status == 403 and r.json()["error"]["code"] == "forbidden"
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False) as client:
        r = client.get("/admin/enroll")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        # a form posted from the page without its token (a stale tab): a page, with the way back
        r = client.post("/admin/keys", data={"name": "x"}, headers={"Accept": "text/html"})
        assert r.status_code == 403 and "reload the page" in r.text and 'aria-label="Main"' in r.text
    # signed out, a form post is a page that offers to sign in again
    page.get_by_role("button", name="Sign out").click()
    with httpx.Client(base_url=server.url, follow_redirects=False) as client:
        r = client.post("/admin/keys", data={"name": "x"}, headers={"Accept": "text/html"})
        assert r.status_code == 401 and "Sign in again" in r.text and 'href="/admin/login"' in r.text
    assert [p for p in page.problems if not re.search(r"\b(40[34]|422)\b", p)] == []


def test_settings_names_the_runtime_and_device_the_encoder_runs_on(page, server):
    encoder = httpx.get(f"{server.url}/api/v1/model", headers={"X-API-Key": ADMIN}).json()["encoder"]
    sign_in(page, start="/admin/settings")
    shown = page.locator("#encoder-runtime")
    expect(shown.locator("[data-device]")).to_have_text(encoder["device"])
    expect(shown.locator("[data-runtime]")).to_have_text(encoder.get("runtime") or "runtime not reported")
    assert page.problems == []
