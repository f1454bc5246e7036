"""One rule for photos with several faces, in every operation and every surface (API and CLI).

Operations about one face (enroll, add photos, verify, compare) take the only face, the largest
when it is at least twice the next, or the one ``box`` names, and refuse several faces of
similar size with every box; operations about every face (identify, detect) answer for each,
and a photo without a face is an empty list there but ``no_face`` where one face is meant.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main

from .conftest import png_bytes, upload


@pytest.fixture(scope="module")
def pair(photos, tmp_path_factory):
    """Two people of the same size side by side: Carlos Menem on the left, Leonid Kuchma on the right."""
    left, right = (Image.open(photos[who][0]).convert("RGB") for who in ("Carlos_Menem", "Leonid_Kuchma"))
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    path = tmp_path_factory.mktemp("pair") / "two_people.jpg"
    canvas.save(path, quality=92)
    return path, left.width


def _boxes_by_side(details, split):
    faces = details["faces"]
    assert len(faces) == 2
    return {("right" if f["box"][0] >= split - 10 else "left"): f["box"] for f in faces}


NO_FACE = png_bytes(np.full((200, 200, 3), 128, np.uint8))


def test_verify_takes_the_one_face_or_the_box_and_refuses_to_guess(client, photos, pair):
    path, split = pair
    r = client.post("/api/v1/enroll", data={"name": "Leonid Kuchma"}, files=[upload(photos["Leonid_Kuchma"][1],
                                                                                     "images")])
    assert r.status_code == 201, r.text
    person = r.json()["person"]["id"]

    r = client.post("/api/v1/verify", data={"person_id": person}, files=[upload(path)])
    assert r.status_code == 422 and r.json()["error"]["code"] == "multiple_faces", r.text
    sides = _boxes_by_side(r.json()["error"]["details"], split)

    right = client.post("/api/v1/verify", data={"person_id": person, "box": ",".join(map(str, sides["right"]))},
                        files=[upload(path)]).json()
    left = client.post("/api/v1/verify", data={"person_id": person, "box": ",".join(map(str, sides["left"]))},
                       files=[upload(path)]).json()
    assert right["match"] is True and right["face"]["box"][0] >= split - 10
    assert left["match"] is False and left["face"]["box"][0] < split

    r = client.post("/api/v1/verify", data={"person_id": person}, files=[("image", ("grey.png", NO_FACE, "image/png"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"

    # enroll follows the same rule (and lists the same boxes)
    r = client.post("/api/v1/enroll", data={"name": "Who"}, files=[upload(path, "images")])
    assert r.status_code == 422 and r.json()["error"]["code"] == "multiple_faces"
    assert _boxes_by_side(r.json()["error"]["details"], split) == sides


def test_identify_and_detect_answer_for_every_face_and_for_none(client, pair):
    path, _ = pair
    assert len(client.post("/api/v1/identify", files=[upload(path)]).json()["faces"]) == 2
    assert len(client.post("/api/v1/detect", files=[upload(path)]).json()["faces"]) == 2
    for route in ("/api/v1/identify", "/api/v1/detect"):
        r = client.post(route, files=[("image", ("grey.png", NO_FACE, "image/png"))])
        assert r.status_code == 200 and r.json()["faces"] == []


@pytest.mark.slow  # loads the encoder in-process for the CLI
def test_cli_compare_follows_the_same_rule(photos, pair, capsys):
    path, split = pair
    leonid = str(photos["Leonid_Kuchma"][1])
    assert main(["compare", str(path), leonid, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "multiple_faces" in err and "--box-a" in err

    right_box = None
    for token in err.split("Faces: ")[1].split(". Say")[0].split("; "):
        box = [float(v) for v in token.split(",")]
        if box[0] >= split - 10:
            right_box = token
    assert main(["compare", str(path), leonid, "--box-a", right_box, "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["match"] is True and out["box_a"][0] >= split - 10
