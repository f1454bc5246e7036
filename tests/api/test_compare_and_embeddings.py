"""Two-photo compare, and embeddings as first-class data: out of /embed, into identify, compare and enroll."""

from __future__ import annotations

import json

import numpy as np

from .conftest import png_bytes, upload

GREY = ("image_a", ("grey.png", png_bytes(np.full((200, 200, 3), 128, np.uint8)), "image/png"))


def test_compare_two_photos_of_one_person_and_of_two(client, photos):
    same = client.post("/api/v1/compare", files=[upload(photos["Emma_Watson"][0], "image_a"),
                                                 upload(photos["Emma_Watson"][1], "image_b")])
    assert same.status_code == 200, same.text
    other = client.post("/api/v1/compare", files=[upload(photos["Emma_Watson"][0], "image_a"),
                                                  upload(photos["Wen_Jiabao"][0], "image_b")]).json()
    same = same.json()
    assert same["match"] is True and other["match"] is False
    assert same["distance"] < same["threshold"] < other["distance"]
    assert same["threshold_source"] == "FACESHOT_TARGET_FAR" and 0 < same["stranger_accept_rate"] <= 0.011
    assert len(same["face_a"]["box"]) == 4 and len(same["face_b"]["box"]) == 4

    r = client.post("/api/v1/compare", files=[GREY, upload(photos["Emma_Watson"][1], "image_b")])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_face")
    r = client.post("/api/v1/compare", files=[upload(photos["Emma_Watson"][1], "image_a")])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")


def test_an_embedding_from_embed_identifies_like_its_photo_and_another_encoders_is_refused(client, photos):
    enrolled = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                           files=[upload(p, "images") for p in photos["Emma_Watson"][:2]])
    assert enrolled.status_code == 201
    probe = photos["Emma_Watson"][2]
    embedded = client.post("/api/v1/embed", files=[upload(probe)]).json()
    face, encoder = embedded["faces"][0], embedded["encoder"]
    assert len(face["embedding"]) == encoder["embedding_size"] and encoder["content_hash"]
    assert abs(np.linalg.norm(face["embedding"]) - 1) < 1e-4

    by_photo = client.post("/api/v1/identify", files=[upload(probe)]).json()["faces"][0]
    by_vector = client.post("/api/v1/identify", json={"embedding": face["embedding"],
                                                      "encoder_hash": encoder["content_hash"]}).json()["faces"][0]
    assert by_vector["person"] == by_photo["person"] and by_vector["person"]["name"] == "Emma Watson"
    assert abs(by_vector["distance"] - by_photo["distance"]) < 1e-3 and by_vector["box"] is None
    # multipart takes the same embedding as a JSON text field
    form = client.post("/api/v1/identify", data={"embedding": json.dumps(face["embedding"]),
                                                 "encoder_hash": encoder["content_hash"]}).json()["faces"][0]
    assert form["person"] == by_photo["person"]

    # compare a photo with an embedding
    pair = client.post("/api/v1/compare", files=[upload(photos["Emma_Watson"][0], "image_a")],
                       data={"embedding_b": json.dumps(face["embedding"]), "encoder_hash": encoder["content_hash"]})
    assert pair.status_code == 200 and pair.json()["match"] is True and pair.json()["face_b"] is None

    for body, code in (
        ({"embedding": face["embedding"], "encoder_hash": "f" * 64}, "encoder_mismatch"),  # another encoder's
        ({"embedding": face["embedding"][:64], "encoder_hash": encoder["content_hash"]}, "encoder_mismatch"),
        ({"embedding": face["embedding"]}, "validation_error"),  # whose?
        ({"embedding": [v * 3 for v in face["embedding"]], "encoder_hash": encoder["content_hash"]},
         "validation_error"),
        ({"embedding": ["x"] * len(face["embedding"]), "encoder_hash": encoder["content_hash"]}, "validation_error"),
        ({}, "validation_error"),
    ):
        r = client.post("/api/v1/identify", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (422, code), (list(body), r.text)
    r = client.post("/api/v1/identify", files=[upload(probe)], data={"embedding": json.dumps(face["embedding"]),
                                                                     "encoder_hash": encoder["content_hash"]})
    assert r.status_code == 422  # one or the other


def test_enroll_from_embeddings_alone_keeps_no_photo_and_reembed_says_so(client, photos):
    vectors, encoder = [], None
    for p in photos["Wen_Jiabao"][:2]:
        out = client.post("/api/v1/embed", files=[upload(p)]).json()
        vectors.append(out["faces"][0]["embedding"])
        encoder = out["encoder"]["content_hash"]
    r = client.post("/api/v1/enroll", json={"name": "Wen Jiabao", "embeddings": vectors, "encoder_hash": encoder})
    assert r.status_code == 201, r.text
    person = r.json()["person"]
    faces = client.get(f"/api/v1/people/{person['id']}/faces").json()
    assert len(faces) == 2 and all(not f["has_image"] for f in faces)
    named = client.post("/api/v1/identify", files=[upload(photos["Wen_Jiabao"][2])]).json()["faces"][0]
    assert named["person"]["name"] == "Wen Jiabao"
    r = client.post("/api/v1/enroll", json={"name": "Nobody", "embeddings": vectors, "encoder_hash": "0" * 64})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "encoder_mismatch")
    assert client.get("/api/v1/people").json()["total"] == 1

    # after an encoder change (the stored hash is not the encoder's any more), reembed names them: no photo to re-make
    from sqlalchemy import update

    from app.core.tables import Face

    service = client.app.state.service
    with service.sessions.begin() as session:
        session.execute(update(Face).values(encoder_hash="an-older-encoder"))
    summary = service.people.reembed()
    assert {(u["face_id"], u["code"]) for u in summary["unrecoverable"]} == {(f["id"], "photo_not_kept")
                                                                            for f in faces}
