"""Suggested additions (issue 29, point 5): named events the camera saw unlike the person's badge photo -- far within
the threshold they were decided on, well seen, not corrected -- are offered, a few per person, never added; accepting
one is the usual enrollment from the event, after which it is offered no more."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from app.live.suggestions import MIN_DISTANCE_FRACTION, MIN_QUALITY, PER_PERSON
from app.live.tracking import quality_score
from app.live.watch import crop_around, jpeg

from .conftest import upload

API = "/api/v1"


def camera(path, look: str = "none") -> bytes:
    """A fixture photo as a camera might see it (the transforms are the camera's, the face is the person's)."""
    image = Image.open(path).convert("RGB")
    if look == "grey":  # a night camera: grey, half the contrast
        image = ImageEnhance.Contrast(ImageOps.grayscale(image).convert("RGB")).enhance(0.5)
    elif look == "dark":
        image = Image.fromarray((255 * (np.asarray(image) / 255.0) ** 1.8).astype(np.uint8))
    elif look == "mirror":
        image = ImageOps.mirror(image)
    elif look == "rotated":
        image = image.rotate(12, resample=Image.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=15 if look == "jpeg" else 90)
    return out.getvalue()


def enroll(client, name, path):
    r = client.post(f"{API}/enroll", data={"name": name}, files=[upload(path, "images")])
    assert r.status_code == 201, r.text
    return r.json()["person"]["id"]


def post_event(client, photo: bytes, person_id=None, **extra) -> dict:
    """What ``faceshot watch --server`` sends for one track: the service's own embedding and decision (/embed,
    /identify), the tracker's quality score of the face, its crop."""
    files = [("image", ("frame.jpg", photo, "image/jpeg"))]
    embedded = client.post(f"{API}/embed", files=files).json()
    face = embedded["faces"][0]
    decided = client.post(f"{API}/identify", data={"top_k": 5}, files=files).json()["faces"][0]
    named = person_id or (decided["person"] or {}).get("id")
    distance = next((c["distance"] for c in decided["candidates"] if c["person"]["id"] == named), None)
    score = quality_score(SimpleNamespace(quality=face["quality"], landmarks=np.asarray(face["landmarks"]),
                                          score=face["det_score"]))
    image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    body = {"source": "door-1", "person_id": named, "distance": distance, "threshold": decided["threshold"],
            "box": face["box"], "quality": {"score": round(score, 3), **face["quality"]},
            "face": base64.b64encode(jpeg(crop_around(image, face["box"]))).decode(),
            "embedding": face["embedding"], "encoder_hash": embedded["encoder"]["content_hash"], **extra}
    r = client.post(f"{API}/events", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def far(event) -> bool:
    return MIN_DISTANCE_FRACTION * event["threshold"] <= event["distance"] <= event["threshold"]


def good(event) -> bool:
    q = event["quality"]
    return q["score"] >= MIN_QUALITY and not (q["too_small"] or q["blurry"] or q["low_confidence"])


def suggested(client, prefix=API) -> list[str]:
    r = client.get(f"{prefix}/suggestions")
    assert r.status_code == 200, r.text
    return [s["event_id"] for s in r.json()["items"]]


@pytest.fixture
def kept(make_client, database_url, tmp_path):
    return make_client(tmp_path / "data", database_url=database_url, event_faces=True, event_unknown_faces=True)


def test_far_well_seen_named_events_are_suggested_and_accepting_one_is_an_enrollment(kept, photos):
    emma, javier, wen, leonid = (photos[n] for n in ("Emma_Watson", "Javier_Solana", "Wen_Jiabao", "Leonid_Kuchma"))
    ids = {n: enroll(kept, n.replace("_", " "), photos[n][0])
           for n in ("Emma_Watson", "Javier_Solana", "Leonid_Kuchma")}

    # Javier's other photos through several cameras: far from his badge photo, within the threshold
    javier_far = [post_event(kept, camera(p, look)) for p, look in
                  ((javier[1], "rotated"), (javier[2], "none"), (javier[2], "jpeg"), (javier[2], "dark"),
                   (javier[1], "mirror"))]
    emma_far = post_event(kept, camera(emma[2], "jpeg"))
    leonid_far = post_event(kept, camera(leonid[1], "jpeg"))
    for event in (*javier_far, emma_far, leonid_far):  # the premise, with this encoder's real distances
        assert event["person"]["id"] and far(event) and good(event), event
    close = post_event(kept, camera(emma[0], "mirror"))  # the badge photo itself, mirrored: nothing new
    assert close["person"]["id"] == ids["Emma_Watson"] and not far(close), close
    blurry = post_event(kept, camera(emma[1], "grey"))  # far, but a poor view
    assert blurry["person"]["id"] == ids["Emma_Watson"] and far(blurry) and not good(blurry), blurry
    corrected = post_event(kept, camera(leonid[2], "jpeg"))
    assert far(corrected) and good(corrected), corrected
    assert kept.post(f"{API}/events/{corrected['id']}/not-this-person").status_code == 200
    unknown = post_event(kept, camera(wen[1]))  # a stranger: unknown, kept (FACESHOT_EVENT_UNKNOWN_FACES)
    assert unknown["person"] is None and unknown["embedding_kept"]
    # named, but beyond the threshold it was decided against (a watcher with a looser threshold of its own)
    beyond = post_event(kept, camera(wen[2]), ids["Emma_Watson"])
    assert beyond["distance"] > beyond["threshold"], beyond

    r = kept.get(f"{API}/suggestions")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["rule"] == {"min_distance_fraction": MIN_DISTANCE_FRACTION, "min_quality": MIN_QUALITY,
                              "per_person": PER_PERSON}
    rows = answer["items"]
    score = {e["id"]: e["distance"] * e["quality"]["score"] for e in (*javier_far, emma_far, leonid_far)}
    best_javier = sorted((e["id"] for e in javier_far), key=lambda i: -score[i])[:PER_PERSON]
    assert {s["event_id"] for s in rows} == {*best_javier, emma_far["id"], leonid_far["id"]}
    assert [s["event_id"] for s in rows] == sorted((s["event_id"] for s in rows), key=lambda i: -score[i])
    first = rows[0]
    event = next(e for e in (*javier_far, emma_far, leonid_far) if e["id"] == first["event_id"])
    assert first["person"] == event["person"] and first["source"] == "door-1"
    assert (first["distance"], first["threshold"], first["quality"]) == (
        event["distance"], event["threshold"], event["quality"]["score"])
    assert first["face_url"] == event["face_url"] and kept.get(first["face_url"]).status_code == 200
    assert kept.get(f"{API}/people/{ids['Javier_Solana']}").json()["face_count"] == 1  # never added by itself

    # accepted: the usual enrollment from the event; then it is offered no more
    top = best_javier[0]
    r = kept.post(f"{API}/events/{top}/enroll", json={"person_id": ids["Javier_Solana"]})
    assert r.status_code == 201, r.text
    assert kept.get(f"{API}/people/{ids['Javier_Solana']}").json()["face_count"] == 2
    after = suggested(kept)
    assert top not in after and {emma_far["id"], leonid_far["id"]} <= set(after)
    assert set(after) - {emma_far["id"], leonid_far["id"]} <= {e["id"] for e in javier_far} - {top}

    # a face already among the person's (uploaded as a photo, not from the event) is not offered either
    assert kept.post(f"{API}/people/{ids['Emma_Watson']}/faces",
                     files=[("images", ("e.jpg", camera(emma[2], "jpeg"), "image/jpeg"))]).status_code == 201
    assert emma_far["id"] not in suggested(kept)

    # dismissed: no longer offered, audit-logged once; the event keeps its face
    r = kept.post(f"{API}/suggestions/{leonid_far['id']}/dismiss")
    assert r.status_code == 204, r.text
    assert kept.post(f"{API}/suggestions/{leonid_far['id']}/dismiss").status_code == 204
    assert leonid_far["id"] not in suggested(kept)
    entries = kept.get(f"{API}/audit", params={"action": "suggestion.dismiss"}).json()["items"]
    assert [e["target"] for e in entries] == [leonid_far["id"]]
    assert kept.get(leonid_far["face_url"]).status_code == 200
    r = kept.post(f"{API}/suggestions/{'f' * 32}/dismiss")
    assert r.status_code == 404 and r.json()["error"]["details"]["reason"] == "event_not_found"

    # a person deleted: their events are offered no more
    javier_left = suggested(kept)
    assert javier_left and kept.delete(f"{API}/people/{ids['Javier_Solana']}").status_code == 204
    assert not set(suggested(kept)) & {e["id"] for e in javier_far}

    # per collection: another collection's queue is its own
    assert kept.post(f"{API}/collections", json={"name": "dock"}).status_code == 201
    assert suggested(kept, f"{API}/collections/dock") == []
    assert kept.post(f"{API}/collections/dock/suggestions/{emma_far['id']}/dismiss").status_code == 404


def test_only_events_within_retention_whose_faces_were_kept(make_client, tmp_path, photos):
    javier = photos["Javier_Solana"]
    quiet = make_client(tmp_path / "quiet")  # FACESHOT_EVENT_FACES off: nothing kept, nothing to suggest
    enroll(quiet, "Javier Solana", javier[0])
    event = post_event(quiet, camera(javier[2]))
    assert far(event) and good(event) and not event["embedding_kept"]
    assert suggested(quiet) == []

    # a retention of 36 minutes: an event of an hour ago is past it (until the hourly purge deletes it)
    short = make_client(tmp_path / "short", event_faces=True, event_retention_days=0.025)
    enroll(short, "Javier Solana", javier[0])
    old = post_event(short, camera(javier[2]), time=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())
    new = post_event(short, camera(javier[2], "jpeg"))
    assert suggested(short) == [new["id"]] and short.get(f"{API}/events/{old['id']}/face").status_code == 200
