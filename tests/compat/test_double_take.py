"""Double Take's CompreFace detector (jakowenko/double-take, api/src/util/detectors/compreface.js, v1.13.1) against a
real `faceshot serve`: its exact requests, replayed with httpx, and its `normalize`, ported line by line, with its
default config (api/src/constants/defaults.js: match confidence 60, unknown confidence 40, match min_area 10000,
det_prob_threshold 0.8; `face_plugins` unset, so axios sends the string "undefined").
"""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from app.testing.server import ADMIN

MATCH = {"CONFIDENCE": 60, "MIN_AREA": 10000}  # detect.match
UNKNOWN = {"CONFIDENCE": 40, "MIN_AREA": 0}  # detect.unknown
DET_PROB_THRESHOLD = 0.8  # detectors.compreface.det_prob_threshold
FACE_PLUGINS = "undefined"  # `${FACE_PLUGINS}` of an unset option


def recognize(url: str, path, test: bool = False) -> httpx.Response:
    """module.exports.recognize: POST multipart `file`, `face_plugins` in the URL, `det_prob_threshold` as a
    param (axios appends it), the form's headers plus `x-api-key`; every status is read (validateStatus)."""
    return httpx.post(f"{url}/api/v1/recognition/recognize?face_plugins={FACE_PLUGINS}",
                      params={"det_prob_threshold": 0.8 if test else DET_PROB_THRESHOLD},
                      files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                      headers={"x-api-key": ADMIN}, timeout=15)


def train(url: str, name: str, path) -> httpx.Response:
    """module.exports.train: POST multipart `file` to /faces with `subject` as a param; a status not 2xx throws."""
    r = httpx.post(f"{url}/api/v1/recognition/faces", params={"subject": name},
                   files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                   headers={"x-api-key": ADMIN}, timeout=15)
    r.raise_for_status()
    return r


def remove(url: str, name: str) -> httpx.Response:
    """module.exports.remove: DELETE /faces with `subject` as a param, the key alone as a header."""
    return httpx.delete(f"{url}/api/v1/recognition/faces", params={"subject": name}, headers={"x-api-key": ADMIN},
                        timeout=15)


def checks(name: str, confidence: float, box: dict):
    """actions.checks."""
    found = []
    if name == "unknown" and box["width"] * box["height"] < UNKNOWN["MIN_AREA"]:
        return False
    if name == "unknown" and confidence < UNKNOWN["CONFIDENCE"]:
        found.append(f"confidence too low: {confidence} < {UNKNOWN['CONFIDENCE']}")
    else:
        if confidence < MATCH["CONFIDENCE"]:
            found.append(f"confidence too low: {confidence} < {MATCH['CONFIDENCE']}")
        if box["width"] * box["height"] < MATCH["MIN_AREA"]:
            found.append(f"box area too low: {box['width'] * box['height']} < {MATCH['MIN_AREA']}")
    return found


def normalize(data: dict) -> list[dict]:
    """module.exports.normalize, as JavaScript runs it (a missing field would throw there: KeyError here)."""
    if data.get("result") is None:  # `!data.result`: an empty list is a result in JavaScript
        if data.get("code") == 28:
            return []
        raise RuntimeError(data.get("message"))
    out = []
    for obj in data["result"]:
        face = obj["subjects"][0] if obj["subjects"] else None  # const [face] = obj.subjects
        confidence = round(face["similarity"] * 100, 2) if face else 0
        box = obj["box"]
        output = {
            "name": face["subject"].lower() if face and confidence >= UNKNOWN["CONFIDENCE"] else "unknown",
            "confidence": confidence,
            "match": confidence >= MATCH["CONFIDENCE"]
            and (box["x_max"] - box["x_min"]) * (box["y_max"] - box["y_min"]) >= MATCH["MIN_AREA"],
            "box": {"top": box["y_min"], "left": box["x_min"], "width": box["x_max"] - box["x_min"],
                    "height": box["y_max"] - box["y_min"]},
        }
        found = checks(output["name"], confidence, output["box"])
        if found:
            output["checks"] = found
        if found is not False:
            out.append(output)
    return out


def blank_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.slow  # a faceshot serve process
def test_double_takes_requests_train_recognize_and_remove(server, photos, tmp_path):
    url = server.url.removesuffix("/api/v1")  # Double Take's `url`: the CompreFace address, no path
    for path in photos["Emma_Watson"][:2]:
        assert train(url, "Emma Watson", path).json()["subject"] == "Emma Watson"
    assert train(url, "Wen Jiabao", photos["Wen_Jiabao"][0]).status_code == 201

    r = recognize(url, photos["Emma_Watson"][2])
    assert r.status_code == 200, r.text
    [emma] = normalize(r.json())
    assert emma["name"] == "emma watson" and emma["match"] and "checks" not in emma, emma
    [wen] = normalize(recognize(url, photos["Wen_Jiabao"][1], test=True).json())
    assert wen["name"] == "wen jiabao" and wen["match"], wen
    for stranger in ("Yasar_Yakis", "John_Travolta", "Carlos_Menem"):  # John Travolta's photo has a second face
        faces = normalize(recognize(url, photos[stranger][0]).json())
        assert faces and all(f["name"] == "unknown" and not f["match"] and f["confidence"] < 40 for f in faces), faces

    nobody = tmp_path / "nobody.jpg"
    nobody.write_bytes(blank_jpeg())
    r = recognize(url, nobody)  # CompreFace's "no face" (400, code 28): Double Take reads it as no result
    assert (r.status_code, r.json()["code"]) == (400, 28) and normalize(r.json()) == []

    r = remove(url, "Emma Watson")
    assert (r.status_code, r.json()) == (200, {"deleted": 2})
    [emma] = normalize(recognize(url, photos["Emma_Watson"][2]).json())
    assert emma["name"] == "unknown" and not emma["match"], emma
    assert remove(url, "Emma Watson").json() == {"deleted": 0}
    assert remove(url, "Wen Jiabao").json() == {"deleted": 1}
    r = recognize(url, photos["Emma_Watson"][2])  # an empty gallery: a face, with no subject to name
    assert r.json()["result"][0]["subjects"] == []
    assert [(f["name"], f["match"]) for f in normalize(r.json())] == [("unknown", False)]
