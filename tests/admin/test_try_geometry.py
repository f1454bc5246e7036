"""Try it draws each face's box on the face, for photos of any size and aspect, at any window width."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from .conftest import ADMIN, screenshot
from .test_admin_page import api_enroll, expect, sign_in

# Window widths: the desktop one of the bug report, a wide one and a phone.
WIDTHS = (1280, 1920, 390)


def _landscape(photos, path):
    """A 2400x1350 photo with one face enlarged 2x, well right of centre (the stage scales it down a lot)."""
    face = Image.open(photos["Emma_Watson"][0]).convert("RGB")
    face = face.resize((face.width * 2, face.height * 2))
    canvas = Image.new("RGB", (2400, 1350), (120, 130, 140))
    where = (1700, 400)
    canvas.paste(face, where)
    canvas.save(path, quality=92)
    return [(where[0], where[1], where[0] + face.width, where[1] + face.height)]


def _group(photos, path):
    """Three people side by side on a wide strip, as in a team photo."""
    people = [Image.open(photos[who][0]).convert("RGB") for who in ("Carlos_Menem", "Leonid_Kuchma", "Wen_Jiabao")]
    canvas = Image.new("RGB", (sum(p.width for p in people) + 200, max(p.height for p in people) + 100), (40, 40, 40))
    regions, x = [], 50
    for p in people:
        canvas.paste(p, (x, 50))
        regions.append((x, 50, x + p.width, 50 + p.height))
        x += p.width + 50
    canvas.save(path, quality=92)
    return regions


def _drawn_boxes(page) -> list[list[float]]:
    """Each drawn rectangle mapped back into the photo's pixels through where the image is on screen."""
    return page.evaluate("""() => {
        const img = document.querySelector('#try-result .stage img');
        const at = img.getBoundingClientRect();
        const sx = img.naturalWidth / at.width, sy = img.naturalHeight / at.height;
        return Array.from(document.querySelectorAll('#try-result .stage svg rect.face')).map(r => {
            const b = r.getBoundingClientRect();
            return [(b.left - at.left) * sx, (b.top - at.top) * sy, (b.right - at.left) * sx, (b.bottom - at.top) * sy];
        });
    }""")


@pytest.mark.slow  # a real browser against the real model
@pytest.mark.parametrize("kind", ["landscape", "group"])
def test_try_it_boxes_sit_on_the_api_boxes(page, server, photos, tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    regions = (_landscape if kind == "landscape" else _group)(photos, path)
    api = httpx.post(f"{server.url}/api/v1/identify", headers={"X-API-Key": ADMIN},
                     files={"image": (path.name, path.read_bytes(), "image/jpeg")}, timeout=60).json()
    api_boxes = [f["box"] for f in api["faces"]]
    assert len(api_boxes) == len(regions)
    # Each API box is on one of the faces we pasted (so the comparison below is against the truth).
    for x1, y1, x2, y2 in api_boxes:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        assert any(a <= cx <= c and b <= cy <= d for a, b, c, d in regions)

    sign_in(page, start="/admin/try")
    page.get_by_label("Choose a photo").set_input_files(str(path))
    expect(page.locator("#try-result .stage svg .box")).to_have_count(len(regions))
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        drawn = _drawn_boxes(page)
        # The stroke straddles the edge: allow half of it (and rounding) in the photo's pixels.
        tolerance = max(6.0, Image.open(path).width / 160)
        for want, got in zip(api_boxes, drawn):
            assert max(abs(w - g) for w, g in zip(want, got)) <= tolerance, (width, want, got)
        # The image is shown whole: its box is inside the window.
        inside = page.evaluate("""() => { const r = document.querySelector('#try-result .stage img')
            .getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth + 0.5; }""")
        assert inside, width
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, f"try-{kind}")
    assert page.problems == []


def _team(photos, path):
    """Six colleagues cropped to their faces and packed into a 2x3 grid with 5 px between them, two of them at the
    picture's top and left edges: the labels have nowhere easy to go."""
    who = ("Padraig_Harrington", "Dale_Earnhardt_Jr", "Emma_Watson", "Javier_Solana", "Robert_Kocharian",
           "Carlos_Menem")
    canvas = Image.new("RGB", (3 * 135 - 5, 2 * 155 - 5), (60, 60, 60))
    for i, name in enumerate(who):
        face = Image.open(photos[name][0]).convert("RGB").crop((60, 50, 190, 200))
        canvas.paste(face, ((i % 3) * 135, (i // 3) * 155))
    canvas.save(path, quality=92)
    return who


def _label_geometry(page) -> dict:
    """The picture, each label's background and each label's text, in screen pixels."""
    return page.evaluate("""() => {
        const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        const labels = Array.from(document.querySelectorAll('#try-result .stage svg .box .label'));
        return { img: box(document.querySelector('#try-result .stage img')),
                 backgrounds: labels.map(l => box(l.querySelector('rect.label-bg'))),
                 texts: labels.map(l => box(l.querySelector('text'))),
                 words: labels.map(l => l.querySelector('text').textContent) };
    }""")


@pytest.mark.slow  # a real browser against the real model
def test_try_it_labels_a_group_photo_without_collisions_and_decides_by_the_answer(page, server, photos, tmp_path):
    path = tmp_path / "team.jpg"
    team = _team(photos, path)
    enrolled = [n for n in team if len(photos[n]) > 1]  # from another photo; the labels carry names of every length
    for name in enrolled:
        api_enroll(server, name.replace("_", " "), photos[name][1:2])
    api = httpx.post(f"{server.url}/api/v1/identify", headers={"X-API-Key": ADMIN},
                     files={"image": (path.name, path.read_bytes(), "image/jpeg")}, timeout=60).json()
    faces = api["faces"]
    assert len(faces) == len(team)
    assert {f["person"]["name"] for f in faces if f["person"]} == {n.replace("_", " ") for n in enrolled}

    sign_in(page, start="/admin/try")
    page.get_by_label("Choose a photo").set_input_files(str(path))
    expect(page.locator("#try-result .stage svg .box .label")).to_have_count(len(faces))
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        g = _label_geometry(page)
        left, top, right, bottom = g["img"]
        rects = g["backgrounds"]
        for i, (x1, y1, x2, y2) in enumerate(rects):
            assert left - 0.5 <= x1 and top - 0.5 <= y1 and x2 <= right + 0.5 and y2 <= bottom + 0.5, (width, i)
            tx1, ty1, tx2, ty2 = g["texts"][i]  # the words sit inside their background
            assert x1 - 0.5 <= tx1 and y1 - 0.5 <= ty1 and tx2 <= x2 + 0.5 and ty2 <= y2 + 0.5, (width, i)
            for j in range(i):
                a, b = rects[j], rects[i]
                apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
                assert apart, (width, g["words"][j], g["words"][i])
    page.set_viewport_size({"width": 1280, "height": 800})

    # each face is named or Unknown as the answer's `person` says, explained by distance against threshold
    results = page.locator(".results > li")
    expect(results).to_have_count(len(faces))
    for i, f in enumerate(faces):
        item = results.nth(i)
        name = f["person"]["name"] if f["person"] else "Unknown"
        expect(item.locator(".decision")).to_have_text(f"Face {i + 1}: {name}")
        verdict = "within" if f["person"] else "beyond"
        rate = f"{f['stranger_accept_rate'] * 100:#.3g}"  # JavaScript's toPrecision(3)
        expect(item.locator(".numbers")).to_contain_text(
            f"distance {f['distance']:.4f} {verdict} the threshold {f['threshold']:.4f} (stranger-accept rate {rate}")
        expect(page.locator(".stage .label text").nth(i)).to_have_text(f"{i + 1}. {name}")
    expect(page.locator("#try-result")).not_to_contain_text("imilarity")
    screenshot(page, "try-team")
    assert page.problems == []
