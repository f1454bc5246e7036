"""Photos as base64 in a JSON body, in every photo operation: the same answers, limits and codes as multipart."""

from __future__ import annotations

import base64

from .conftest import upload


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _count(client) -> int:
    return client.get("/api/v1/people").json()["total"]


def test_compreface_style_json_and_multipart_give_the_same_answer(client, photos):
    enrolled = client.post("/api/v1/enroll", json={"name": "Emma Watson", "images": [b64(p) for p in
                                                                                   photos["Emma_Watson"][:2]],
                                                   "external_id": "hr-1", "metadata": {"team": "film"}})
    assert enrolled.status_code == 201, enrolled.text
    person = enrolled.json()["person"]
    assert (person["external_id"], person["metadata"]) == ("hr-1", {"team": "film"})

    probe = photos["Emma_Watson"][2]
    multipart = client.post("/api/v1/identify", files=[upload(probe)], data={"top_k": "2"}).json()
    as_json = client.post("/api/v1/identify", json={"image": b64(probe), "top_k": 2}).json()
    compreface = client.post("/api/v1/identify", json={"file": "data:image/jpeg;base64," + b64(probe), "top_k": 2})
    for answer in (as_json, compreface.json()):
        assert [(f["box"], f["person"], f["distance"], len(f["candidates"])) for f in answer["faces"]] == \
               [(f["box"], f["person"], f["distance"], len(f["candidates"])) for f in multipart["faces"]]
    assert multipart["faces"][0]["person"]["name"] == "Emma Watson"
    # CompreFace's multipart field name too
    renamed = client.post("/api/v1/identify", files=[upload(probe, "file")]).json()
    assert renamed["faces"][0]["person"] == multipart["faces"][0]["person"]

    verify = client.post("/api/v1/verify", json={"image": b64(probe), "person_id": person["id"]}).json()
    assert verify["match"] is True
    detect = client.post("/api/v1/detect", json={"image": b64(probe)}).json()
    assert len(detect["faces"]) == 1
    added = client.post(f"/api/v1/people/{person['id']}/faces", json={"images": [b64(probe)]})
    assert added.status_code == 201, added.text


def test_json_bodies_are_refused_with_the_usual_codes_and_store_nothing(client, photos):
    good = b64(photos["Wen_Jiabao"][0])
    cases = [
        ({"name": "X", "images": ["not base64 at all!"]}, 400, "invalid_image"),
        ({"name": "X", "images": [base64.b64encode(b"GIF89a but not really").decode()]}, 400, "invalid_image"),
        ({"name": "X", "images": [good], "nmae": "typo"}, 422, "validation_error"),
        ({"name": "X", "images": [good] * 11}, 422, "too_many_images"),
        ({"name": "X", "images": [123]}, 422, "validation_error"),
        ({"name": "X", "images": [good], "metadata": [1, 2]}, 422, "validation_error"),
        ({"name": "X\u0000", "images": [good]}, 422, "validation_error"),
        ({"images": [good]}, 422, "validation_error"),  # no name
        (["not", "an", "object"], 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/enroll", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body if len(str(body)) < 200 else
                                                                                str(body)[:200], r.text)
    assert _count(client) == 0

    big = base64.b64encode(b"\xff" * (16 * 1024 * 1024)).decode()
    r = client.post("/api/v1/identify", json={"image": big})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "image_too_large")
    r = client.post("/api/v1/identify", content=b'{"image": "' + good.encode() + b'"', headers={
        "content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")
    # a JSON body on a route without photos keeps its small limit
    r = client.post("/api/v1/people", json={"name": "Y", "metadata": {"pad": "x" * 70_000}})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")
