"""The Review page (issue 29, point 6) in Chromium against the real app keeping event faces: a suggested addition
accepted with the keyboard, an unknown visitor named, and a viewer who sees the queue but no buttons (and whose
posts are refused)."""

from __future__ import annotations

import base64
import io
import re
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from PIL import Image

from app.live.suggestions import MIN_DISTANCE_FRACTION
from app.live.tracking import quality_score
from app.live.watch import crop_around, jpeg

from .conftest import ADMIN, open_page, running_app, screenshot
from .test_admin_page import check_labels, expect, nav, sign_in

API = "/api/v1"
PASSWORD = "review-viewer-pass-2026"


def _upload(photo: bytes, field: str = "image"):
    return (field, ("frame.jpg", photo, "image/jpeg"))


def camera_jpeg(path) -> bytes:
    """A fixture photo as a poor camera sends it (JPEG quality 15): far from the badge photo, still the person."""
    out = io.BytesIO()
    Image.open(path).convert("RGB").save(out, "JPEG", quality=15)
    return out.getvalue()


def post_event(api: httpx.Client, photo: bytes, named: bool) -> dict:
    """What ``faceshot watch --server`` sends for one track: the service's own embedding and decision (/embed,
    /identify), the tracker's quality score, the crop (as tests/api/test_suggestions.py does)."""
    embedded = api.post(f"{API}/embed", files=[_upload(photo)]).json()
    face = embedded["faces"][0]
    decided = api.post(f"{API}/identify", data={"top_k": 5}, files=[_upload(photo)]).json()["faces"][0]
    person = (decided["person"] or {}).get("id") if named else None
    distance = next((c["distance"] for c in decided["candidates"] if c["person"]["id"] == person), 0.7)
    score = quality_score(SimpleNamespace(quality=face["quality"], landmarks=np.asarray(face["landmarks"]),
                                          score=face["det_score"]))
    image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    body = {"source": "door-1", "person_id": person, "distance": distance, "threshold": decided["threshold"],
            "box": face["box"], "quality": {"score": round(score, 3), **face["quality"]},
            "face": base64.b64encode(jpeg(crop_around(image, face["box"]))).decode(),
            "embedding": face["embedding"], "encoder_hash": embedded["encoder"]["content_hash"]}
    r = api.post(f"{API}/events", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def corrected(api: httpx.Client, event_id: str) -> dict | None:
    """The event's "not this person" mark, as GET /events shows it."""
    return next(e for e in api.get(f"{API}/events").json()["items"] if e["id"] == event_id)["corrected"]


@pytest.fixture(scope="module")
def kept_server(pipeline, tmp_path_factory):
    """The admin tests' server, keeping event faces and unknown faces (FACESHOT_EVENT_FACES,
    FACESHOT_EVENT_UNKNOWN_FACES)."""
    with running_app(pipeline, tmp_path_factory.mktemp("review-data"), event_faces=True,
                     event_unknown_faces=True) as running:
        yield running


@pytest.mark.slow  # a real browser against the real model
def test_review_page_accepts_with_the_keyboard_names_a_visitor_and_a_viewer_only_looks(browser, kept_server, photos):
    javier, emma = photos["Javier_Solana"], photos["Emma_Watson"]
    with httpx.Client(base_url=kept_server.url, headers={"X-API-Key": ADMIN}, timeout=120) as api:
        r = api.post(f"{API}/enroll", data={"name": "Javier Solana"},
                     files=[("images", (javier[0].name, javier[0].read_bytes(), "image/jpeg"))])
        assert r.status_code == 201, r.text
        javier_id = r.json()["person"]["id"]
        seen = [post_event(api, photo, named=True) for photo in (camera_jpeg(javier[2]), javier[2].read_bytes())]
        for event in seen:  # the premise: far from his badge photo, within the threshold
            assert event["person"]["id"] == javier_id, event
            assert MIN_DISTANCE_FRACTION * event["threshold"] <= event["distance"] <= event["threshold"], event
        queue = [s["event_id"] for s in api.get(f"{API}/suggestions").json()["items"]]  # best first
        assert sorted(queue) == sorted(e["id"] for e in seen)
        for p in emma[:2]:  # a stranger seen twice: one unknown visitor
            assert post_event(api, p.read_bytes(), named=False)["person"] is None
        visitors = api.get(f"{API}/visitors").json()["items"]
        assert len(visitors) == 1 and visitors[0]["seen"] == 2, visitors
        label = visitors[0]["label"]
        r = api.post(f"{API}/admin-accounts", json={"name": "vera", "password": PASSWORD,
                                                     "rights": {"default": "viewer"}})
        assert r.status_code == 201, r.text

        # a viewer sees the queue and the visitor, and no button to act with; the server refuses them anyway
        viewer = open_page(browser, kept_server.url)
        viewer.goto("/admin/login")
        viewer.get_by_label("Account name").fill("vera")
        viewer.get_by_label("Password or admin key").fill(PASSWORD)
        viewer.get_by_role("button", name="Sign in").click()
        nav(viewer, "Review")
        expect(viewer.locator("#suggestions .review-item")).to_have_count(2)
        expect(viewer.locator("#suggestions")).to_contain_text("Javier Solana")
        expect(viewer.locator("#visitors")).to_contain_text(f"{label} — seen 2 times, at door-1")
        expect(viewer.locator("main button, main input:not([type=hidden])")).to_have_count(0)
        expect(viewer.locator("#review-keys")).not_to_contain_text("accept")
        viewer.keyboard.press("a")  # no form to submit: nothing happens
        csrf = viewer.evaluate("document.body.dataset.csrf")
        refused = viewer.request.post(f"/admin/review/suggestions/{queue[0]}/accept",
                                      form={"csrf_token": csrf, "person_id": javier_id})
        assert refused.status == 403
        refused = viewer.request.post(f"/admin/review/visitors/{visitors[0]['id']}/name",
                                      form={"csrf_token": csrf, "name": "Someone"})
        assert refused.status == 403
        assert api.get(f"{API}/people/{javier_id}").json()["face_count"] == 1
        assert viewer.problems == []
        viewer.context.close()

        # an admin: the first suggestion is current; `s` skips to the next, `n` says it was not Javier
        page = open_page(browser, kept_server.url)
        sign_in(page, start="/admin/review")
        expect(page.get_by_role("heading", name="Review", level=1)).to_be_visible()
        items = page.locator("#suggestions .review-item")
        expect(items.first).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("#review-keys")).to_contain_text("a accept, n not this person, s skip to the next, "
                                                             "d dismiss")
        check_labels(page)
        screenshot(page, "review")
        page.keyboard.press("s")
        expect(items.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
        expect(items.first).not_to_have_class(re.compile(r"\bcurrent\b"))
        page.keyboard.press("n")
        expect(page.locator("p[role=status].notice.ok")).to_have_text("Marked: not this person.")
        assert corrected(api, queue[1])["kind"] == "not_this_person"
        expect(page.locator("#corrections")).to_contain_text("Javier Solana")
        expect(page.locator("#corrected .review-item")).to_have_count(1)

        # `a` accepts the one left: the face joins Javier's photos
        expect(items).to_have_count(1)
        expect(items.first).to_have_attribute("data-event", queue[0])
        page.keyboard.press("a")
        expect(page.locator("p[role=status].notice.ok")).to_have_text("Face added to the person.")
        assert api.get(f"{API}/people/{javier_id}").json()["face_count"] == 2

        # the correction taken back: it counts again, and is offered again; `d` dismisses it
        page.get_by_role("button", name="Undo: it was Javier Solana").click()
        expect(page.locator("p[role=status].notice.ok")).to_have_text("Correction taken back.")
        assert corrected(api, queue[1]) is None
        expect(items).to_have_count(1)
        expect(items.first).to_have_attribute("data-event", queue[1])
        page.keyboard.press("d")
        expect(page.locator("p[role=status].notice.ok")).to_have_text("Suggestion dismissed.")
        expect(page.locator("#suggestions-empty")).to_be_visible()
        assert api.get(f"{API}/suggestions").json()["items"] == []

        # the unknown visitor named: one new person enrolled from their faces
        page.get_by_label(f"Name for {label}").fill("Emma Watson")
        page.get_by_role("button", name=f"Name {label}").click()
        expect(page.locator("p[role=status].notice.ok")).to_have_text("Enrolled from the unknown visitor's faces.")
        found = api.get(f"{API}/people", params={"search": "Emma Watson"}).json()["items"]
        assert [p["name"] for p in found] == ["Emma Watson"] and found[0]["face_count"] >= 1
        expect(page.locator("#visitors-empty")).to_be_visible()
        assert page.problems == []
        page.context.close()
