"""The enroll and person pages as a newcomer meets them (issue 16, point 10): they say why Save waits,
offer to add a look-alike's photo to the enrolled person, refuse an oversized photo before sending it,
show external id and metadata, and a reload after creating a key creates no second key."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from .conftest import ADMIN, screenshot
from .test_admin_page import api_enroll, expect, nav, sign_in


def _person(server, name):
    people = httpx.get(f"{server.url}/api/v1/people", params={"search": name},
                       headers={"X-API-Key": ADMIN}).json()["items"]
    return next(p for p in people if p["name"] == name)


@pytest.mark.slow  # a real browser against the real model
def test_enroll_says_why_it_waits_and_offers_the_enrolled_look_alike(page, server, photos, tmp_path):
    api_enroll(server, "Padraig Harrington", photos["Padraig_Harrington"][:1])
    sign_in(page, start="/admin/enroll")
    save, why = page.get_by_role("button", name="Save"), page.locator("#save-why")
    expect(save).to_be_disabled()
    expect(why).to_have_text("Enter a name to save.")
    page.get_by_label("Name").fill("P. Harrington")
    expect(why).to_have_text("Add a photo (upload, drop or camera) to save.")

    # An oversized photo is refused here: no byte of it is sent
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff" * (16 * 1024 * 1024))
    sent = []
    page.on("request", lambda r: "/admin/api/" in r.url and sent.append(r.url))
    page.get_by_label("Choose photos").set_input_files(str(big))
    expect(page.locator("#enroll-status")).to_have_text(re.compile(r"huge\.jpg is 16 MB; the limit is 15 MB"))
    assert sent == [] and page.locator(".preview").count() == 0

    # The same person again, under another name: the warning offers to add the photo to them instead
    page.get_by_label("Choose photos").set_input_files(str(photos["Padraig_Harrington"][1]))
    offer = page.get_by_role("button", name="Add this photo to Padraig Harrington instead")
    expect(offer).to_be_visible()
    expect(why).to_have_text("")
    screenshot(page, "enroll-look-alike")
    offer.click()
    expect(page).to_have_url(re.compile(r"done=faces_added"))
    expect(page.get_by_role("heading", name="Padraig Harrington", level=1)).to_be_visible()
    expect(page.locator("p[role=status].notice.ok")).to_have_text("Photos added.")
    expect(page.locator(".faces > li")).to_have_count(2)
    assert page.problems == []


@pytest.mark.slow  # a real browser against the real model
def test_person_page_previews_added_photos_and_edits_external_id_and_metadata(page, server, photos):
    sign_in(page, start="/admin/enroll")
    page.get_by_label("Name").fill("Wen Jiabao")
    page.get_by_text("External id and metadata (optional)").click()
    page.get_by_label("External id").fill("hr-0042")
    page.get_by_label("Metadata (a JSON object)").fill('{"desk": 7}')
    page.get_by_label("Choose photos").set_input_files(str(photos["Wen_Jiabao"][0]))
    expect(page.locator(".preview .hints .ok", has_text="Looks good.")).to_have_count(1)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Wen Jiabao", level=1)).to_be_visible()
    expect(page.get_by_label("External id")).to_have_value("hr-0042")
    assert json.loads(page.get_by_label("Metadata (a JSON object)").input_value()) == {"desk": 7}

    # add a photo on the person page: the same preview with the face boxed before anything is stored
    page.get_by_label("Choose photos to add").set_input_files(str(photos["Wen_Jiabao"][1]))
    expect(page.locator(".preview svg .box.chosen")).to_have_count(1)
    expect(page.locator("#check-ok, #check-warnings")).to_be_visible()
    screenshot(page, "person-add-photo")
    page.get_by_role("button", name="Add photos").click()
    expect(page).to_have_url(re.compile(r"done=faces_added"))
    expect(page.locator("p[role=status].notice.ok")).to_have_text("Photos added.")
    expect(page.locator(".faces > li")).to_have_count(2)

    page.get_by_label("External id").fill("hr-0043")
    page.get_by_label("Metadata (a JSON object)").fill('{"desk": 8, "team": "board"}')
    page.get_by_role("button", name="Save details").click()
    expect(page).to_have_url(re.compile(r"done=details_saved"))
    expect(page.locator("p[role=status].notice.ok")).to_have_text("Details saved.")
    person = _person(server, "Wen Jiabao")
    assert (person["external_id"], person["metadata"]) == ("hr-0043", {"desk": 8, "team": "board"})
    page.get_by_label("Metadata (a JSON object)").fill("[1, 2]")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator(".notice.bad")).to_contain_text("metadata must be a JSON object")
    assert _person(server, "Wen Jiabao")["metadata"] == {"desk": 8, "team": "board"}
    # the refusal above is the page's 422 (and Chromium's console line about it); nothing else went wrong
    assert [p for p in page.problems if "/details" not in p and "422" not in p] == []


def test_a_reload_after_creating_a_key_creates_no_second_key(page, server):
    sign_in(page, start="/admin/settings")
    page.get_by_label("Key name").fill("reception tablet")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Key", exact=True).input_value()
    assert secret.startswith("fs_")
    expect(page).to_have_url(re.compile(r"/admin/settings$"))
    page.reload()
    expect(page.get_by_label("Key", exact=True)).to_have_count(0)  # shown once
    keys = httpx.get(f"{server.url}/api/v1/keys", headers={"X-API-Key": ADMIN}).json()
    assert [k["name"] for k in keys].count("reception tablet") == 1
    assert httpx.get(f"{server.url}/api/v1/model", headers={"X-API-Key": secret}).status_code == 200
    nav(page, "People")
    assert page.problems == []


@pytest.mark.slow  # a real browser against the real model
def test_enrolling_someone_enrolled_already_offers_to_add_the_photo_or_a_new_person(page, server, photos):
    """Issue 25, point 4 on the admin page: the server's 409 person_exists is a choice, not an API message."""
    api_enroll(server, "Robert Blake", photos["Robert_Blake"][:1])
    sign_in(page, start="/admin/enroll")
    page.get_by_label("Name").fill("Robert Blake")
    page.get_by_label("Choose photos").set_input_files(str(photos["Robert_Blake"][1]))
    expect(page.locator(".preview svg .box.chosen")).to_have_count(1)
    page.get_by_role("button", name="Save").click()
    status = page.locator("#enroll-status")
    expect(status).to_contain_text("Robert Blake is already enrolled, and photo 1 is their face")
    expect(status).not_to_contain_text("POST")  # the API's advice is not the page's
    screenshot(page, "enroll-person-exists")
    add = page.get_by_role("button", name="Add this photo to Robert Blake", exact=True)
    expect(page.get_by_role("button", name="Enroll another person named Robert Blake")).to_be_visible()
    add.click()
    expect(page).to_have_url(re.compile(r"done=faces_added"))
    expect(page.locator(".faces > li")).to_have_count(2)
    people = httpx.get(f"{server.url}/api/v1/people", params={"search": "Robert Blake"},
                       headers={"X-API-Key": ADMIN}).json()
    assert people["total"] == 1
    # the browser logs the 409 it was answered (the refusal this test is about), and nothing else
    assert [p for p in page.problems if "409 (Conflict)" not in p] == []
