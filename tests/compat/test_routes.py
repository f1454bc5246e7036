"""The CompreFace-compatible routes in-process: the key's collection is the service, CompreFace's refusals and
statuses, base64 bodies, and faceshot's enrollment rules under CompreFace's verbs."""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import ADMIN

CF = "/api/v1/recognition"


@pytest.fixture
def client(make_client, tmp_path):
    c = make_client(tmp_path / "data")
    c.headers.pop("X-API-Key")  # CompreFace's clients send x-api-key
    return c


def key(client, role: str, collection: str | None = None) -> dict:
    body = {"name": f"{role} {collection}", "role": role, **({"collection": collection} if collection else {})}
    r = client.post("/api/v1/keys", json=body, headers={"x-api-key": ADMIN})
    assert r.status_code == 201, r.text
    return {"x-api-key": r.json()["key"]}


def photo(path, field: str = "file"):
    return {field: (path.name, path.read_bytes(), "image/jpeg")}


def test_a_key_of_one_collection_is_that_collections_service(client, photos):
    admin = {"x-api-key": ADMIN}
    assert client.post("/api/v1/collections", json={"name": "warehouse"}, headers=admin).status_code == 201
    warehouse = key(client, "admin", "warehouse")
    r = client.post(f"{CF}/faces", params={"subject": "Emma Watson"}, files=photo(photos["Emma_Watson"][0]),
                    headers=warehouse)
    assert r.status_code == 201, r.text
    assert client.get(f"{CF}/subjects", headers=warehouse).json() == {"subjects": ["Emma Watson"]}
    assert client.get(f"{CF}/subjects", headers=admin).json() == {"subjects": []}  # `default`: another service
    people = client.get("/api/v1/collections/warehouse/people", headers=admin).json()["items"]
    assert [(p["name"], p["face_count"]) for p in people] == [("Emma Watson", 1)]
    face = client.post(f"{CF}/recognize", files=photo(photos["Emma_Watson"][1]), headers=warehouse).json()
    assert face["result"][0]["subjects"][0]["subject"] == "Emma Watson"
    assert face["result"][0]["subjects"][0]["similarity"] >= 0.6


def test_refusals_are_compreface_s(client, photos):
    admin = {"x-api-key": ADMIN}
    recognition = key(client, "recognition")
    cases = [
        (client.get(f"{CF}/subjects"), 400, 20),  # no key
        (client.get(f"{CF}/subjects", headers={"x-api-key": "fs_wrong"}), 404, 10),
        (client.post(f"{CF}/faces", params={"subject": "Ada"}, files=photo(photos["Emma_Watson"][0]),
                     headers=recognition), 403, 1),  # changing examples needs an admin key
        (client.post(f"{CF}/faces", files=photo(photos["Emma_Watson"][0]), headers=admin), 400, 33),
        (client.post(f"{CF}/recognize", headers=admin), 400, 34),
        (client.post(f"{CF}/recognize", params={"prediction_count": 0}, files=photo(photos["Emma_Watson"][0]),
                     headers=admin), 400, 26),
        (client.post(f"{CF}/recognize", files={"file": ("x.jpg", b"not a photo")}, headers=admin), 400, 21),
        (client.delete(f"{CF}/subjects/Nobody", headers=admin), 404, 42),
        (client.delete(f"{CF}/faces/0123", headers=admin), 404, 44),
        (client.post(f"{CF}/subjects", json={}, headers=admin), 400, 5),
    ]
    for r, status, code in cases:
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert set(r.json()) == {"message", "code"}
    r = client.post(f"{CF}/recognize", files=photo(photos["Emma_Watson"][0]), headers=recognition)
    assert r.status_code == 200 and r.json()["result"][0]["subjects"] == []  # nobody enrolled: no subject


def test_examples_keep_enrollments_rules(client, photos, lfw_dir):
    admin = {"x-api-key": ADMIN}
    emma = photos["Emma_Watson"]
    first = client.post(f"{CF}/faces", params={"subject": "Emma Watson"}, files=photo(emma[0]), headers=admin).json()
    # base64 JSON, a subject spelled otherwise: the same subject, one person with two faces
    body = {"file": base64.b64encode(emma[1].read_bytes()).decode()}
    second = client.post(f"{CF}/faces", params={"subject": "emma watson"}, json=body, headers=admin)
    assert second.status_code == 201 and second.json()["subject"] == "emma watson"
    people = client.get("/api/v1/people", headers=admin).json()["items"]
    assert [(p["name"], p["face_count"]) for p in people] == [("Emma Watson", 2)]
    # a photo already enrolled: stored, with enrollment's warning
    again = client.post(f"{CF}/faces", params={"subject": "Emma Watson"}, files=photo(emma[0]), headers=admin).json()
    assert any(w["code"] for w in again["warnings"]), again
    # a photo of two faces of like size is refused, as enrollment refuses it
    two = lfw_dir / "John_Travolta" / "John_Travolta_0001.jpg"
    r = client.post(f"{CF}/faces", params={"subject": "John"}, files=photo(two), headers=admin)
    assert r.status_code in (201, 400) and (r.status_code == 201 or r.json()["code"] == 31), r.text
    # an unknown parameter is passed over, as CompreFace passes it over; det_prob_threshold filters
    r = client.post(f"{CF}/recognize", params={"face_plugins": "undefined", "whatever": "1",
                                                "det_prob_threshold": 0.8}, files=photo(emma[2]), headers=admin)
    assert r.status_code == 200 and r.json()["result"][0]["subjects"][0]["subject"] == "Emma Watson"
    page = client.get(f"{CF}/faces", params={"subject": "EMMA WATSON", "size": 2}, headers=admin).json()
    assert page["total_elements"] == 3 and page["total_pages"] == 2 and len(page["faces"]) == 2
    image = client.get(f"{CF}/faces/{first['image_id']}/img", headers=admin)
    assert image.status_code == 200 and image.content == emma[0].read_bytes()
    gone = client.post(f"{CF}/faces/delete", json=[first["image_id"], "0123"], headers=admin).json()
    assert gone == [{"image_id": first["image_id"], "subject": "Emma Watson"}]
    assert client.get(f"{CF}/faces/{first['image_id']}/img", headers=admin).content == b""
