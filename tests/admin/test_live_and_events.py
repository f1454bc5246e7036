"""The Live page on Chromium's fake camera (a clip of an enrolled person), and the Events page with its webhooks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from app.live.events import NewEvent

from .conftest import ADMIN, CAMERA_PHOTO, screenshot
from .test_admin_page import api_enroll, expect, nav, sign_in


@pytest.mark.slow  # a real browser against the real model
def test_live_page_names_the_enrolled_person_on_camera(page, server, photos):
    who, index = CAMERA_PHOTO  # the photo the fake camera shows; enrolled from the person's other photos
    api_enroll(server, who.replace("_", " "), [p for i, p in enumerate(photos[who]) if i != index][:2])
    sign_in(page, start="/admin/live")
    page.get_by_role("button", name="Start camera").click()
    face = page.locator("#live-faces li").first
    expect(face.locator(".decision")).to_have_text(who.replace("_", " "))
    expect(page.locator("#live-overlay .box.known")).to_have_count(1)
    expect(page.locator("#live-status")).to_contain_text("frames/s")
    screenshot(page, "live")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#live-status")).to_have_text("Stopped.")
    assert page.problems == []


def test_events_page_lists_filters_exports_and_manages_webhooks(page, server):
    service = server.app.state.service
    when = datetime.now(timezone.utc) - timedelta(hours=1)  # within FACESHOT_EVENT_MAX_AGE_H of the clock
    for source in ("door-1", "door-2"):
        service.events.record(NewEvent(time=when, source=source, person_id=None, distance=0.81, threshold=0.42,
                                      box=[1, 2, 3, 4], quality={}, frames=9, duration_s=1.8))
    sign_in(page, start="/admin/events")
    nav(page, "Events")
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.events")).to_contain_text("Unknown")
    page.get_by_label("Camera").fill("door-2")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("door-2")
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    csv_text = page.request.get(href).text()
    assert csv_text.count("\n") == 2 and "door-2" in csv_text and "door-1" not in csv_text

    page.get_by_label("Webhook URL").fill("https://hr.example.com/faceshot")
    page.get_by_role("button", name="Add webhook").click()
    expect(page).to_have_url(re.compile(r"/admin/events$"))
    secret = page.get_by_label("Secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.locator("ul.hooks")).to_contain_text("Standard Webhooks signature")  # its format, beside its counts
    screenshot(page, "events")
    page.reload()  # the secret is shown once, and a reload adds no second webhook
    expect(page.get_by_label("Secret")).to_have_count(0)
    hooks = httpx.get(f"{server.url}/api/v1/webhooks", headers={"X-API-Key": ADMIN}).json()
    assert [h["url"] for h in hooks] == ["https://hr.example.com/faceshot"]
    page.get_by_role("button", name="Remove webhook https://hr.example.com/faceshot").click()
    expect(page.locator("p[role=status].notice.ok")).to_have_text("Webhook removed.")
    assert httpx.get(f"{server.url}/api/v1/webhooks", headers={"X-API-Key": ADMIN}).json() == []
    assert page.problems == []
