"""A photo over the server's per-photo limit is shrunk by the admin page before upload, not refused (issue 25,
point 5): enrolled on Enroll and named on Try it, with every upload within the limit."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import ADMIN, running_app, screenshot
from .test_admin_page import expect, nav, sign_in

LIMIT = 1_000_000  # FACESHOT_MAX_UPLOAD_BYTES for this module's server


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    with running_app(pipeline, tmp_path_factory.mktemp("small-limit"), max_upload_bytes=LIMIT) as running:
        yield running


def phone_photo(face_path, path) -> bytes:
    """An 8000x6000 (48 MP) JPEG: a colour gradient with the fixture face enlarged 8x in it, over LIMIT bytes."""
    face = Image.open(face_path).convert("RGB")
    face = face.resize((face.width * 8, face.height * 8), Image.BICUBIC)
    yy, xx = np.mgrid[0:6000:8, 0:8000:8]
    gradient = np.stack([xx * 255 // 8000, yy * 255 // 6000, np.full_like(xx, 128)], -1).astype(np.uint8)
    canvas = Image.fromarray(gradient).resize((8000, 6000))
    canvas.paste(face, (3000, 2000))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=95)
    path.write_bytes(out.getvalue())
    return out.getvalue()


@pytest.mark.slow  # a real browser against the real model, on 48 MP photos
def test_a_48_megapixel_photo_is_shrunk_then_enrolled_and_tried(page, server, photos, tmp_path):
    first, second = tmp_path / "IMG_0001.jpg", tmp_path / "IMG_0002.jpg"
    assert len(phone_photo(photos["Emma_Watson"][0], first)) > LIMIT
    assert len(phone_photo(photos["Emma_Watson"][1], second)) > LIMIT
    uploads = []
    page.on("request", lambda r: "/admin/api/" in r.url and uploads.append(len(r.post_data_buffer or b"")))

    sign_in(page, start="/admin/enroll")
    page.get_by_label("Name").fill("Emma Watson")
    page.get_by_label("Choose photos").set_input_files(str(first))
    preview = page.locator(".preview")
    expect(preview.locator(".shrunk")).to_contain_text(re.compile(r"Shrunk from 8000×6000 \(1\.\d+ MB\) to 4096×3072"))
    expect(preview.locator(".hints .ok")).to_have_text("Looks good.")
    expect(page.locator("#check-ok")).to_be_visible()
    screenshot(page, "enroll-large-photo")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Emma Watson", level=1)).to_be_visible()
    expect(page.locator(".faces > li")).to_have_count(1)
    person = page.url.split("/admin/people/")[1].split("?")[0]
    faces = httpx.get(f"{server.url}/api/v1/people/{person}/faces", headers={"X-API-Key": ADMIN}).json()
    assert len(faces) == 1

    nav(page, "Try it")
    page.get_by_label("Choose a photo").set_input_files(str(second))
    expect(page.locator(".results > li .decision").first).to_have_text("Face 1: Emma Watson")
    expect(page.locator("#try-status")).to_contain_text("Shrunk from 8000×6000")
    # every photo went up within the limit (detect, check, enroll, identify), none was refused
    assert len(uploads) >= 4 and max(uploads) < LIMIT + 10_000, uploads  # + the multipart envelope
    assert page.problems == []
