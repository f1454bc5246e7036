"""Learning from the camera (issue 29, points 1-3): an event keeps its embedding only as its crop is kept, its face
is enrolled through the same checks as any photo, and "not this person" takes it out of presence and names the
support photo that pulled the match."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image

from app.core.tables import RecognitionEvent
from app.live.watch import RemoteRecognizer, crop_around, jpeg

from .conftest import upload

API = "/api/v1"


def camera_crop(path) -> bytes:
    """What a watcher keeps of a face: the square crop around it, as ``faceshot watch`` makes it."""
    image = np.asarray(Image.open(path).convert("RGB"))
    return jpeg(crop_around(image, [62, 62, 188, 188]))


def enroll(client, name, paths):
    r = client.post(f"{API}/enroll", data={"name": name}, files=[upload(p, "images") for p in paths])
    assert r.status_code == 201, r.text
    return r.json()["person"]["id"]


def post_event(client, photo, person_id=None, prefix=API, **extra):
    """An event as a remote watcher sends it: the crop, and the embedding /embed made of the face."""
    embedded = client.post(f"{API}/embed", files=[upload(photo)]).json()
    body = {"source": "door-1", "person_id": person_id, "distance": 0.3, "threshold": 0.4,
            "face": base64.b64encode(camera_crop(photo)).decode(),
            "embedding": embedded["faces"][0]["embedding"], "encoder_hash": embedded["encoder"]["content_hash"],
            **extra}
    r = client.post(f"{prefix}/events", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def distance_to(client, photo, person_id):
    faces = client.post(f"{API}/identify", data={"top_k": 5}, files=[upload(photo)]).json()["faces"]
    return next(c["distance"] for c in faces[0]["candidates"] if c["person"]["id"] == person_id)


@pytest.fixture
def kept(make_client, database_url, tmp_path):
    return make_client(tmp_path / "data", database_url=database_url, event_faces=True, event_unknown_faces=True)


def test_an_events_face_strengthens_a_person_and_is_removed_like_any_face(kept, photos):
    emma = photos["Emma_Watson"]
    person = enroll(kept, "Emma Watson", emma[:1])
    event = post_event(kept, emma[1], person)
    assert event["embedding_kept"] and event["face_url"]
    before = distance_to(kept, emma[2], person)

    r = kept.post(f"{API}/events/{event['id']}/enroll", json={"person_id": person})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["person"]["face_count"] == 2 and len(added["faces"]) == 1
    after = distance_to(kept, emma[2], person)
    assert after < before, (before, after)  # the prototype followed: her other photo is nearer
    entry = kept.get(f"{API}/audit", params={"action": "face.add"}).json()["items"][0]
    assert entry["details"]["event_id"] == event["id"] and entry["target"] == person

    # the same face again: the same warning as the same photo uploaded again
    again = kept.post(f"{API}/events/{event['id']}/enroll", json={"person_id": person}).json()
    uploaded = kept.post(f"{API}/people/{person}/faces", files=[
        ("images", ("crop.jpg", camera_crop(emma[1]), "image/jpeg"))]).json()
    assert {w["code"] for w in again["warnings"]} == {w["code"] for w in uploaded["warnings"]} != set()
    for face in (again["faces"][0], uploaded["faces"][0], added["faces"][0]):  # reversible: ordinary faces
        assert kept.delete(f"{API}/people/{person}/faces/{face['id']}").status_code == 204
    assert kept.get(f"{API}/people/{person}").json()["face_count"] == 1
    assert distance_to(kept, emma[2], person) == pytest.approx(before, abs=1e-4)


def test_an_unknown_events_face_is_named_as_a_new_person(kept, photos):
    john = photos["John_Travolta"]
    enroll(kept, "Emma Watson", photos["Emma_Watson"][:1])
    event = post_event(kept, john[0])
    assert event["person"] is None and event["embedding_kept"]
    r = kept.post(f"{API}/events/{event['id']}/enroll", json={"name": "John Travolta"})
    assert r.status_code == 201, r.text
    new = r.json()["person"]
    named = kept.post(f"{API}/identify", files=[upload(john[1])]).json()["faces"][0]
    assert named["person"]["id"] == new["id"]
    # named twice: refused as a second enrollment of one person would be
    r = kept.post(f"{API}/events/{event['id']}/enroll", json={"name": "John Travolta"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "person_exists", r.text


def test_enrolling_from_an_event_is_refused_as_a_photo_would_be(kept, photos, database_url):
    person = enroll(kept, "Emma Watson", photos["Emma_Watson"][:1])
    blank = io.BytesIO()
    Image.new("RGB", (160, 160), (128, 128, 128)).save(blank, "JPEG")
    event = kept.post(f"{API}/events", json={"source": "door-1", "person_id": person,
                                             "face": base64.b64encode(blank.getvalue()).decode()}).json()
    r = kept.post(f"{API}/events/{event['id']}/enroll", json={"person_id": person})
    as_photo = kept.post(f"{API}/people/{person}/faces", files=[("images", ("b.jpg", blank.getvalue(), "image/jpeg"))])
    assert r.status_code == as_photo.status_code == 422
    assert r.json()["error"]["code"] == as_photo.json()["error"]["code"] == "no_face", r.text

    two = io.BytesIO()  # two faces of one size: the one-face rule asks which
    a, b = (Image.open(p).convert("RGB").resize((160, 160)) for p in (photos["Emma_Watson"][1],
                                                                      photos["Wen_Jiabao"][0]))
    pair = Image.new("RGB", (320, 160))
    pair.paste(a, (0, 0))
    pair.paste(b, (160, 0))
    pair.save(two, "JPEG")
    service = kept.app.state.service
    with service.sessions.begin() as session:  # a crop as a wide camera frame might leave it
        session.get(RecognitionEvent, event["id"]).face_crop = two.getvalue()
    r = kept.post(f"{API}/events/{event['id']}/enroll", json={"person_id": person})
    as_photo = kept.post(f"{API}/people/{person}/faces", files=[("images", ("2.jpg", two.getvalue(), "image/jpeg"))])
    assert r.status_code == as_photo.status_code and r.status_code >= 400
    assert r.json()["error"]["code"] == as_photo.json()["error"]["code"], r.text

    for body, status, code in (({"person_id": "0" * 32}, 404, "not_found"),
                               ({"person_id": person, "name": "Both"}, 422, "validation_error"),
                               ({}, 422, "validation_error")):
        r = kept.post(f"{API}/events/{event['id']}/enroll", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    r = kept.post(f"{API}/events/{'f' * 32}/enroll", json={"person_id": person})
    assert r.status_code == 404 and r.json()["error"]["details"]["reason"] == "event_not_found"
    assert kept.post(f"{API}/collections", json={"name": "dock"}).status_code == 201
    r = kept.post(f"{API}/collections/dock/events/{event['id']}/enroll", json={"person_id": person})
    assert r.status_code == 404 and r.json()["error"]["details"]["reason"] == "event_not_found"
    no_crop = kept.post(f"{API}/events", json={"source": "door-1", "person_id": person}).json()
    r = kept.post(f"{API}/events/{no_crop['id']}/enroll", json={"person_id": person})
    assert r.status_code == 409 and r.json()["error"]["details"]["reason"] == "no_face_kept"
    assert kept.get(f"{API}/people/{person}").json()["face_count"] == 1  # nothing refused was stored


def test_not_this_person_leaves_presence_and_names_the_photo_that_pulled_the_match(kept, photos):
    wen, emma = photos["Wen_Jiabao"], photos["Emma_Watson"]
    person = enroll(kept, "Emma Watson", emma[:2])
    faces = kept.get(f"{API}/people/{person}/faces").json()
    # a bad enrollment photo: Wen Jiabao's, among Emma's
    bad = kept.post(f"{API}/people/{person}/faces", files=[upload(wen[0], "images")]).json()["faces"][0]["id"]
    wrong = post_event(kept, wen[1], person)
    right = post_event(kept, emma[2], person)
    day = datetime.now(timezone.utc).date().isoformat()
    assert kept.get(f"{API}/presence", params={"since": day}).json()["rows"][0]["events"] == 2

    r = kept.post(f"{API}/events/{wrong['id']}/not-this-person")
    assert r.status_code == 200, r.text
    corrected = r.json()["corrected"]
    assert corrected["kind"] == "not_this_person" and corrected["by"]["kind"] == "key"
    assert kept.post(f"{API}/events/{wrong['id']}/not-this-person").json()["corrected"] == corrected  # once
    assert kept.get(f"{API}/presence", params={"since": day}).json()["rows"][0]["events"] == 1
    listed = {e["id"]: e for e in kept.get(f"{API}/events").json()["items"]}
    assert listed[wrong["id"]]["corrected"] == corrected and listed[right["id"]]["corrected"] is None
    counts = kept.get(f"{API}/corrections").json()["items"]
    assert [(c["person"]["id"], c["corrections"]) for c in counts] == [(person, 1)]
    assert kept.get(f"{API}/corrections", params={"person_id": "0" * 32}).json()["items"] == []
    assert kept.post(f"{API}/collections", json={"name": "dock"}).status_code == 201
    assert kept.get(f"{API}/collections/dock/corrections").json()["items"] == []  # another collection's: its own
    assert kept.post(f"{API}/collections/dock/events/{wrong['id']}/not-this-person").status_code == 404
    audit = kept.get(f"{API}/audit", params={"action": "event.not_this_person"}).json()["items"]
    assert [a["target"] for a in audit] == [wrong["id"]]

    distances = kept.get(f"{API}/events/{wrong['id']}/support-distances").json()
    assert distances["person"]["id"] == person and distances["corrected"] is True
    ranked = [f["face_id"] for f in distances["faces"]]
    assert ranked[0] == bad and set(ranked) == {bad, *(f["id"] for f in faces)}
    assert [f["distance"] for f in distances["faces"]] == sorted(f["distance"] for f in distances["faces"])

    r = kept.delete(f"{API}/events/{wrong['id']}/not-this-person")
    assert r.status_code == 200 and r.json()["corrected"] is None
    assert kept.get(f"{API}/presence", params={"since": day}).json()["rows"][0]["events"] == 2
    assert kept.get(f"{API}/corrections").json()["items"] == []
    unknown = post_event(kept, wen[2])
    r = kept.post(f"{API}/events/{unknown['id']}/not-this-person")
    assert r.status_code == 409 and r.json()["error"]["details"]["reason"] == "event_unknown"


def test_nothing_is_kept_by_default_and_unknown_faces_only_when_allowed(make_client, tmp_path, photos):
    emma = photos["Emma_Watson"]
    for settings, known_kept, unknown_kept in (({}, False, False), ({"event_faces": True}, True, False)):
        client = make_client(tmp_path / str(len(settings)), **settings)
        person = enroll(client, "Emma Watson", emma[:1])
        known, unknown = post_event(client, emma[1], person), post_event(client, emma[2])
        with client.app.state.service.sessions() as session:
            for event, kept in ((known, known_kept), (unknown, unknown_kept)):
                row = session.get(RecognitionEvent, event["id"])
                assert (row.embedding is not None, row.face_crop is not None, event["embedding_kept"]) == (kept,) * 3
                assert row.encoder_hash == (client.app.state.service.pipeline.encoder.content_hash if kept else None)
        r = client.get(f"{API}/events/{known['id']}/support-distances")
        assert r.status_code == (200 if known_kept else 409), r.text
        if not known_kept:
            assert r.json()["error"]["details"]["reason"] == "no_embedding_kept"


def test_a_malformed_or_foreign_embedding_is_refused(client, photos):
    embedded = client.post(f"{API}/embed", files=[upload(photos["Emma_Watson"][0])]).json()
    vector, encoder = embedded["faces"][0]["embedding"], embedded["encoder"]["content_hash"]
    for body, code in (({"embedding": vector}, "validation_error"),  # no encoder_hash
                       ({"embedding": vector, "encoder_hash": "0" * 64}, "encoder_mismatch"),
                       ({"embedding": vector[:-1], "encoder_hash": encoder}, "encoder_mismatch"),
                       ({"embedding": [v * 2 for v in vector], "encoder_hash": encoder}, "validation_error"),
                       ({"embedding": ["a"] * len(vector), "encoder_hash": encoder}, "validation_error")):
        r = client.post(f"{API}/events", json={"source": "door-1", **body})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body.keys(), r.text)
    assert client.get(f"{API}/events").json()["total"] == 0  # refused even where it would not have been kept


def test_the_remote_watcher_sends_the_tracks_embedding():
    sent = []

    class Client:
        def post_event(self, body):
            sent.append(body)
            from app.core.schemas import EventOut
            return EventOut(id="e", time=datetime.now(timezone.utc), source="door-1", person=None, distance=None,
                            threshold=None, box=[], quality={}, frames=1, duration_s=0, face_url=None)

    from app.live.events import NewEvent

    recognizer = RemoteRecognizer.__new__(RemoteRecognizer)
    recognizer.client = Client()
    vector = np.full(128, 128 ** -0.5, dtype=np.float32)
    recognizer.record(NewEvent(time=datetime.now(timezone.utc), source="door-1", person_id=None, distance=None,
                               threshold=None, box=[], quality={}, embedding=vector, encoder_hash="abc"))
    assert sent[0]["encoder_hash"] == "abc" and sent[0]["embedding"] == pytest.approx(vector.tolist())


def test_an_in_process_watch_keeps_the_tracks_embedding_as_it_keeps_the_crop(make_client, tmp_path, photos):
    from app.live.watch import watch
    from app.live.watch_local import LocalRecognizer
    from app.testing.clips import door_clip

    client = make_client(tmp_path / "data", event_faces=True)
    person = enroll(client, "Emma Watson", photos["Emma_Watson"][:2])
    clip = door_clip([(photos["Emma_Watson"][2], 0.3, 1.5), (photos["Yasar_Yakis"][0], 2.0, 3.2)],
                     tmp_path / "door.avi", fps=5)
    events = []
    assert watch(str(clip), LocalRecognizer(client.app.state.service), name="door-1", fps=5,
                 on_event=events.append) == 2
    known, stranger = events
    assert known["person"]["id"] == person and known["embedding_kept"] and known["face_url"]
    assert stranger["person"] is None and not stranger["embedding_kept"]  # unknown faces: not allowed here
    distances = client.get(f"{API}/events/{known['id']}/support-distances").json()
    assert len(distances["faces"]) == 2 and distances["faces"][0]["distance"] <= distances["faces"][1]["distance"]
    r = client.post(f"{API}/events/{known['id']}/enroll", json={"person_id": person})
    assert r.status_code == 201 and r.json()["person"]["face_count"] == 3, r.text


def test_a_face_from_the_camera_holds_its_person_to_a_capture_class(kept, photos):
    """A face added from an event is a camera capture: its person is held to the with_camera threshold (a badge
    photo and a capture) and a person named from an event alone to camera_only's, both measured against camera-seen
    strangers; the face says where it came from."""
    emma, john = photos["Emma_Watson"], photos["John_Travolta"]
    person = enroll(kept, "Emma Watson", emma[:1])
    model = kept.get(f"{API}/model").json()["operating_point"]
    assert {"with_camera", "camera_only"} <= set(model["thresholds"])
    assert model["thresholds"]["with_camera"] < model["thresholds"]["2"]  # camera-seen strangers come nearer

    event = post_event(kept, emma[1], person)
    added = kept.post(f"{API}/events/{event['id']}/enroll", json={"person_id": person}).json()
    assert added["faces"][0]["origin"] == "camera"
    faces = kept.get(f"{API}/people/{person}/faces").json()
    assert sorted(f["origin"] for f in faces) == ["camera", "upload"]
    thresholds = kept.get(f"{API}/model").json()["operating_point"]["thresholds"]
    found = kept.post(f"{API}/identify", files=[upload(emma[2])]).json()["faces"][0]
    assert found["person"]["id"] == person and found["threshold"] == thresholds["with_camera"]

    unknown = post_event(kept, john[0])
    named = kept.post(f"{API}/events/{unknown['id']}/enroll", json={"name": "John Travolta"}).json()["person"]
    found = kept.post(f"{API}/identify", files=[upload(john[1])]).json()["faces"][0]
    thresholds = kept.get(f"{API}/model").json()["operating_point"]["thresholds"]
    assert found["person"]["id"] == named["id"] and found["threshold"] == thresholds["camera_only"]

    # removed, the capture no longer holds her: back to one photo's threshold
    camera_face = next(f["id"] for f in faces if f["origin"] == "camera")
    assert kept.delete(f"{API}/people/{person}/faces/{camera_face}").status_code == 204
    found = kept.post(f"{API}/identify", files=[upload(emma[2])]).json()["faces"][0]
    assert found["threshold"] == kept.get(f"{API}/model").json()["operating_point"]["thresholds"]["1"]
