"""The Attendance tab (GET /presence's sheet, for viewers too) and every time on the admin page read in the browser's
own time zone, here Tokyo's (issue 25, point 6)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from .conftest import ADMIN, open_page, screenshot
from .test_admin_page import expect, nav, sign_in

TOKYO = "Asia/Tokyo"  # UTC+9 all year: 08:05 UTC is 17:05 there, 23:30 UTC is 08:30 the next day
PASSWORD = "attendance-viewer-pass"
DAY = "2026-03-02"


@pytest.fixture(scope="module")
def seen(server, photos):
    """Emma Watson passes door-2 and, late in the UTC day, door-1; Wen Jiabao door-1; a stranger door-1."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN}, timeout=60) as api:
        people = {}
        for who in ("Emma_Watson", "Wen_Jiabao"):
            path = photos[who][0]
            r = api.post("/api/v1/enroll", data={"name": who.replace("_", " ")},
                         files=[("images", (path.name, path.read_bytes(), "image/jpeg"))])
            assert r.status_code == 201, r.text
            people[who] = r.json()["person"]["id"]
        r = api.post("/api/v1/admin-accounts", json={"name": "vic", "password": PASSWORD,
                                                     "rights": {"default": "viewer"}})
        assert r.status_code == 201, r.text
        for when, source, person in ((f"{DAY}T08:05:00Z", "door-2", people["Emma_Watson"]),
                                     (f"{DAY}T23:30:00Z", "door-1", people["Emma_Watson"]),
                                     (f"{DAY}T09:15:00Z", "door-1", people["Wen_Jiabao"]),
                                     (f"{DAY}T10:00:00Z", "door-1", None)):
            r = api.post("/api/v1/events", json={"source": source, "person_id": person, "distance": 0.3,
                                                 "threshold": 0.4, "box": [1, 2, 3, 4], "time": when})
            assert r.status_code == 201, r.text
        sheet = api.get("/api/v1/presence", params={"since": DAY}).json()["rows"]
    return people, sheet


@pytest.fixture
def tokyo(browser, server):
    page = open_page(browser, server.url, timezone_id=TOKYO)
    yield page
    page.context.close()


def in_tokyo(iso: str, precision: str = "second") -> str:
    shape = {"day": "%Y-%m-%d", "minute": "%Y-%m-%d %H:%M"}.get(precision, "%Y-%m-%d %H:%M:%S")
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(TOKYO)).strftime(shape)


def times_on(page) -> list[dict]:
    return page.locator("time[datetime]").evaluate_all(
        "ts => ts.map(t => ({iso: t.getAttribute('datetime'), precision: t.dataset.precision, text: t.textContent,"
        " title: t.title}))")


def test_attendance_lists_who_was_seen_with_first_and_last_times_for_a_viewer(tokyo, server, seen):
    people, sheet = seen
    page = tokyo
    page.goto("/admin/attendance")
    page.get_by_label("Account name").fill("vic")
    page.get_by_label("Password or admin key").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("Attendance"))).to_be_visible()
    expect(page.locator("#attendance-day")).to_contain_text("(today)")
    # someone passing now is on today's sheet
    r = httpx.post(f"{server.url}/api/v1/events", headers={"X-API-Key": ADMIN},
                   json={"source": "door-3", "person_id": people["Wen_Jiabao"], "distance": 0.3, "threshold": 0.4,
                         "box": [1, 2, 3, 4]})
    assert r.status_code == 201
    nav(page, "Attendance")
    rows = page.locator("#attendance-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Wen Jiabao")
    expect(rows.first).to_contain_text("door-3")

    page.get_by_label("Day (UTC)").fill(DAY)
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    assert [r["person"]["name"] for r in sheet] == ["Emma Watson", "Wen Jiabao"]  # the API's sheet, first seen first
    emma, wen = rows.nth(0), rows.nth(1)
    expect(emma.locator("td").nth(0)).to_have_text("Emma Watson")
    expect(emma.locator("td").nth(1)).to_have_text(f"{DAY} 17:05:00")  # 08:05 UTC
    expect(emma.locator("td").nth(2)).to_have_text("2026-03-03 08:30:00")  # 23:30 UTC, next morning in Tokyo
    expect(emma.locator("td").nth(3)).to_have_text("door-2, door-1")
    expect(emma.locator("td time").first).to_have_attribute("title", f"{DAY} 08:05:00 UTC")
    expect(wen.locator("td").nth(1)).to_have_text(f"{DAY} 18:15:00")
    for row, api_row in zip((emma, wen), sheet):  # the page shows the API's times, not others
        shown = row.locator("time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))")
        assert [datetime.fromisoformat(t) for t in shown] == [datetime.fromisoformat(api_row[k])
                                                              for k in ("first_seen", "last_seen")]
    expect(page.locator("#attendance-table")).not_to_contain_text("Unknown")
    screenshot(page, "attendance")
    # a camera filter, and the day before (nobody)
    page.get_by_label("Camera").fill("door-2")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Previous day").click()
    expect(page.locator("#attendance-empty")).to_contain_text("No enrolled person was seen on this day at door-2")
    expect(page.get_by_label("Day (UTC)")).to_have_value("2026-03-01")
    assert page.problems == []


def test_every_time_is_shown_in_the_browsers_time_zone_with_utc_in_its_title(tokyo, server, seen):
    people, _ = seen
    page = tokyo
    sign_in(page, start="/admin/events")
    # the stranger at 10:00 UTC passed at 19:00 in Tokyo
    stranger = page.locator("table.events tbody tr", has_text="Unknown")
    expect(stranger).to_have_count(1)
    expect(stranger.locator("time")).to_have_text(f"{DAY} 19:00:00")
    expect(stranger.locator("time")).to_have_attribute("title", f"{DAY} 10:00:00 UTC")
    for path in ("/admin/events", "/admin/settings", f"/admin/people/{people['Emma_Watson']}",
                 f"/admin/attendance?day={DAY}"):
        page.goto(path)
        expect(page.locator("#tz-note")).to_have_text(re.compile(rf"your time zone \({TOKYO}\)"))
        times = times_on(page)
        assert len(times) >= 2, path  # events; keys and recent changes; enrolled and each photo; first and last
        for t in times:
            assert t["text"] == in_tokyo(t["iso"], t["precision"]), (path, t)
            utc = datetime.fromisoformat(t["iso"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            assert t["title"] == f"{utc} UTC", (path, t)
    assert page.problems == []
