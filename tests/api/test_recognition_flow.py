"""The product's main path over real HTTP requests: enroll, identify, verify, manage, delete, restart."""

import numpy as np

from .conftest import upload


def enroll(client, name, files):
    r = client.post("/api/v1/enroll", data={"name": name}, files=[upload(f, "images") for f in files])
    assert r.status_code == 201, r.text
    return r.json()


def identify(client, path, **form):
    r = client.post("/api/v1/identify", files=[upload(path)], data=form)
    assert r.status_code == 200, r.text
    return r.json()


def test_enroll_identify_known_and_stranger(client, photos):
    emma = enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    blake = enroll(client, "Robert Blake", photos["Robert_Blake"][:2])
    assert emma["person"]["face_count"] == 2 and len(emma["faces"]) == 2

    known = identify(client, photos["Emma_Watson"][2], top_k=2)
    face = known["faces"][0]
    assert face["person"] == {"id": emma["person"]["id"], "name": "Emma Watson"}
    assert face["distance"] <= face["threshold"]
    assert abs(face["similarity"] - (1 - face["distance"] ** 2 / 2)) < 1e-3
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and face["det_score"] > 0.9
    assert [c["person"]["id"] for c in face["candidates"]] == [emma["person"]["id"], blake["person"]["id"]]
    # a ported client decides by `match`, never by a similarity cut-off (issue 16, point 6)
    assert [c["match"] for c in face["candidates"]] == [True, False]
    assert known["encoder"]["name"] == "dlib-resnet-v1" and known["took_ms"] > 0

    # (Yasar Yakis is 0.343 from Robert Blake: at two people enrolled the 1% target admits that much, so the
    # stranger here is one far from both)
    stranger = identify(client, photos["Hipolito_Mejia"][0])
    assert stranger["faces"][0]["person"] is None
    assert stranger["faces"][0]["distance"] > stranger["faces"][0]["threshold"]
    assert stranger["faces"][0]["candidates"]  # the nearest people are still shown
    # ... none of them a match, though a stranger's cosine is high (a CompreFace-style "> 0.5" would accept it)
    assert not any(c["match"] for c in stranger["faces"][0]["candidates"])
    assert stranger["faces"][0]["candidates"][0]["similarity"] > 0.5

    # an explicit, very loose threshold names the stranger: the override is honoured
    loose = identify(client, photos["Hipolito_Mejia"][0], threshold="1.5")
    assert loose["faces"][0]["person"] is not None


def test_single_image_field_and_metadata(client, photos):
    r = client.post("/api/v1/enroll", data={"name": "Wen Jiabao", "metadata": '{"desk": "3F"}'},
                    files=[upload(photos["Wen_Jiabao"][0], "image")])
    assert r.status_code == 201, r.text
    assert r.json()["person"]["metadata"] == {"desk": "3F"} and r.json()["person"]["face_count"] == 1
    pid = r.json()["person"]["id"]
    r = client.post(f"/api/v1/people/{pid}/faces", files=[upload(photos["Wen_Jiabao"][1], "image")])
    assert r.status_code == 201 and r.json()["person"]["face_count"] == 2
    r = client.post("/api/v1/enroll", data={"name": "X", "metadata": "[1]"}, files=[upload(photos["Wen_Jiabao"][0])])
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_verify(client, photos):
    emma = enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    blake = enroll(client, "Robert Blake", photos["Robert_Blake"][:1])
    probe = photos["Emma_Watson"][2]
    yes = client.post("/api/v1/verify", files=[upload(probe)], data={"person_id": emma["person"]["id"]}).json()
    no = client.post("/api/v1/verify", files=[upload(probe)], data={"person_id": blake["person"]["id"]}).json()
    assert yes["match"] is True and no["match"] is False
    assert yes["distance"] < no["distance"] and yes["threshold"] > 0


def test_detect_gives_quality_hints(client, photos):
    r = client.post("/api/v1/detect", files=[upload(photos["Wen_Jiabao"][0])])
    assert r.status_code == 200
    face = r.json()["faces"][0]
    assert {"too_small", "blurry", "face_size"} <= set(face["quality"])
    assert "person" not in face


def test_people_management_and_delete(client, photos):
    emma = enroll(client, "Emma", photos["Emma_Watson"][:1])["person"]
    blake = enroll(client, "Robert Blake", photos["Robert_Blake"][:2])["person"]
    pid = emma["id"]

    page = client.get("/api/v1/people", params={"search": "rob", "limit": 10}).json()
    assert page["total"] == 1 and page["items"][0]["id"] == blake["id"]

    r = client.patch(f"/api/v1/people/{pid}", json={"name": "Emma Watson", "external_id": "E-7"})
    assert r.status_code == 200 and r.json()["name"] == "Emma Watson"
    assert identify(client, photos["Emma_Watson"][2])["faces"][0]["person"]["name"] == "Emma Watson"

    # add a second support photo, then list, fetch and delete one
    r = client.post(f"/api/v1/people/{pid}/faces", files=[upload(photos["Emma_Watson"][1], "images")])
    assert r.status_code == 201
    faces = client.get(f"/api/v1/people/{pid}/faces").json()
    assert len(faces) == 2
    img = client.get(f"/api/v1/people/{pid}/faces/{faces[1]['id']}/image")
    assert img.status_code == 200 and img.content == photos["Emma_Watson"][1].read_bytes()
    assert client.delete(f"/api/v1/people/{pid}/faces/{faces[1]['id']}").status_code == 204
    assert client.get(f"/api/v1/people/{pid}").json()["face_count"] == 1

    # deleting the person: gone from the list, the index and the data directory
    blake_faces = client.get(f"/api/v1/people/{blake['id']}/faces").json()
    assert client.delete(f"/api/v1/people/{blake['id']}").status_code == 204
    assert client.get(f"/api/v1/people/{blake['id']}").status_code == 404
    assert client.get(f"/api/v1/people/{blake['id']}/faces/{blake_faces[0]['id']}/image").status_code == 404
    after = identify(client, photos["Robert_Blake"][2])["faces"][0]
    assert after["person"] is None
    assert all(c["person"]["id"] != blake["id"] for c in after["candidates"])
    model = client.get("/api/v1/model").json()
    assert model["gallery"]["people"] == 1 and model["gallery"]["indexed_people"] == 1


def test_gallery_survives_a_restart(make_client, tmp_path, photos):
    data = tmp_path / "data"
    first = make_client(data)
    emma = enroll(first, "Emma Watson", photos["Emma_Watson"][:2])["person"]
    first.__exit__(None, None, None)

    second = make_client(data)
    assert identify(second, photos["Emma_Watson"][2])["faces"][0]["person"]["id"] == emma["id"]
    assert second.get("/api/v1/model").json()["gallery"]["indexed_people"] == 1


def test_enrollment_warnings(client, photos):
    enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    # the same person enrolled again under another name looks like someone already enrolled
    again = enroll(client, "E. Watson", photos["Emma_Watson"][2:3])
    looks = [w for w in again["warnings"] if w["code"] == "looks_like_other_person"]
    assert looks and looks[0]["person"]["name"] == "Emma Watson"
    # a first photo has no other photos of its person to be compared with: no "distance_to_own": 0.0 (issue 16, 8)
    assert "distance_to_own" not in looks[0]
    # the exact same photo twice is a near-duplicate
    dup = enroll(client, "Wen Jiabao", [photos["Wen_Jiabao"][0], photos["Wen_Jiabao"][0]])
    assert any(w["code"] == "near_duplicate" for w in dup["warnings"])
    # a photo already enrolled as someone else is that, not a look-alike (issue 25, point 8)
    again = enroll(client, "Someone Else", photos["Emma_Watson"][:1])
    assert [w["code"] for w in again["warnings"]] == ["duplicate_photo"], again["warnings"]
    assert again["warnings"][0]["person"]["name"] == "Emma Watson" and again["warnings"][0]["distance"] < 0.01


def test_enroll_answers_carry_the_quality_warnings_the_admin_page_shows(client, photos):
    """Issue 25, point 8: a 23 px face was enrolled with 201 and no word; /detect's hints now come with enroll."""
    from PIL import Image

    from .conftest import png_bytes

    face = Image.open(photos["Javier_Solana"][0]).convert("RGB").resize((64, 64))
    canvas = Image.new("RGB", (400, 400), (128, 128, 128))
    canvas.paste(face, (168, 168))
    r = client.post("/api/v1/enroll", data={"name": "Javier Solana"},
                    files=[("images", ("small.png", png_bytes(np.asarray(canvas)), "image/png"))])
    assert r.status_code == 201, r.text
    small = [w for w in r.json()["warnings"] if w["code"] == "face_too_small"]
    assert small and small[0]["image_index"] == 0 and small[0]["quality"]["face_size"] < 60, r.json()["warnings"]
    assert "closer photo" in small[0]["message"]
    good = enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    assert not [w for w in good["warnings"] if w["code"].startswith("face_")]


def test_the_same_person_enrolled_again_is_refused_with_their_id(client, photos):
    """Issue 25, point 4: the README's Python example after its curl steps made a second Emma Watson in silence
    (a looks_like_other_person warning only), and identify then named one of the two."""
    first = enroll(client, "Emma Watson", photos["Emma_Watson"][:2])["person"]["id"]
    r = client.post("/api/v1/enroll", data={"name": "emma watson"}, files=[upload(photos["Emma_Watson"][2], "images")])
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "person_exists" and error["details"]["person_id"] == first
    assert error["details"]["distance"] <= error["details"]["threshold"] and first in error["message"]
    assert client.get("/api/v1/people").json()["total"] == 1  # nothing stored
    # the same through JSON, with the Python client's field: a person meant to be another one is enrolled
    r = client.post("/api/v1/enroll", data={"name": "Emma Watson", "new_person": "true"},
                    files=[upload(photos["Emma_Watson"][2], "images")])
    assert r.status_code == 201, r.text
    # the same name with another face is another person: enrolled, no refusal
    other = enroll(client, "Emma Watson", photos["Wen_Jiabao"][:1])["person"]["id"]
    assert len({first, other}) == 2 and client.get("/api/v1/people").json()["total"] == 3


def test_health_ready_and_openapi(client):
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    r = client.get("/api/v1/ready")
    assert r.status_code == 200 and r.json()["checks"] == {"model_loaded": True, "database": True}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/identify", "/api/v1/enroll", "/api/v1/people/{person_id}/faces"} <= set(paths)


def test_the_root_address_leads_to_the_admin_page(client):
    """Issue 25, point 5: `faceshot serve` prints http://127.0.0.1:8000 first, and it answered a JSON 404."""
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/admin"
    assert "/" not in client.get("/openapi.json").json()["paths"]
