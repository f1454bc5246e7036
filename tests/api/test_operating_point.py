"""The service's gallery-aware decision (issue 13): thresholds follow the gallery, overrides are said, workers agree,
and HTTP decides exactly as `faceshot eval-openset` does for the same gallery."""

from __future__ import annotations

import numpy as np

from models.evaluation.gallery_sweep import gallery_aware
from models.evaluation.openset import EmbeddedPhotos, Split, nearest
from models.imageio import load_image

from .conftest import upload

ONE_PHOTO = ["Carlos_Menem", "Emma_Watson", "Javier_Solana", "John_Travolta", "Leonid_Kuchma", "Padraig_Harrington",
             "Robert_Blake", "Wen_Jiabao"]


def enroll(client, name, files):
    r = client.post("/api/v1/enroll", data={"name": name}, files=[upload(f, "images") for f in files])
    assert r.status_code == 201, r.text
    return r.json()["person"]["id"]


def operating(client) -> dict:
    return client.get("/api/v1/model").json()["operating_point"]


def test_thresholds_follow_the_gallery_as_people_come_and_go(client, photos):
    ids = [enroll(client, ONE_PHOTO[0], photos[ONE_PHOTO[0]][:1])]
    small = operating(client)
    assert small["source"] == "FACESHOT_TARGET_FAR" and small["target_far"] == 0.01 and small["gallery_size"] == 1
    assert small["stranger_accept_rate"] == 0.01
    assert set(small["thresholds"]) == {"1", "2", "3", "with_camera", "camera_only"}
    ids += [enroll(client, n, photos[n][:1]) for n in ONE_PHOTO[1:]]
    big = operating(client)
    assert big["gallery_size"] == 8 and big["thresholds"]["1"] < small["thresholds"]["1"]
    assert big["per_person_rate"] < small["per_person_rate"]
    assert 0 < big["expected_recognition"]["1"] <= small["expected_recognition"]["1"]
    answer = client.post("/api/v1/identify", files=[upload(photos["Yasar_Yakis"][0])]).json()
    assert answer["operating_point"] == big
    assert answer["faces"][0]["threshold"] == big["thresholds"]["1"]
    assert answer["faces"][0]["stranger_accept_rate"] == 0.01
    for person_id in ids[1:]:
        assert client.delete(f"/api/v1/people/{person_id}").status_code == 204
    assert operating(client)["thresholds"] == small["thresholds"]
    # a second photo moves a person to the two-photo class: the same gallery size, its own threshold
    client.post(f"/api/v1/people/{ids[0]}/faces", files=[upload(photos[ONE_PHOTO[0]][1], "images")])
    r = client.post("/api/v1/identify", files=[upload(photos[ONE_PHOTO[0]][2])]).json()["faces"][0]
    assert r["threshold"] == operating(client)["thresholds"]["2"]


def test_overrides_are_honoured_and_said(make_client, tmp_path, photos):
    configured = make_client(tmp_path / "fixed", threshold=0.3)
    enroll(configured, "Emma Watson", photos["Emma_Watson"][:1])
    op = operating(configured)
    assert op["source"] == "FACESHOT_THRESHOLD" and op["thresholds"] == {"1": 0.3, "2": 0.3, "3": 0.3}
    assert op["target_far"] is None and 0 < op["stranger_accept_rate"] < 0.01  # what 0.3 stands for at K=1
    client = make_client(tmp_path / "target", target_far=0.001)
    enroll(client, "Emma Watson", photos["Emma_Watson"][:1])
    answer = client.post("/api/v1/identify", data={"threshold": "0.5"}, files=[upload(photos["Yasar_Yakis"][0])])
    answer = answer.json()
    assert answer["operating_point"]["source"] == "request" and answer["faces"][0]["threshold"] == 0.5
    assert answer["faces"][0]["stranger_accept_rate"] > 0.001, "a loose threshold says it lets more strangers in"
    assert operating(client)["source"] == "FACESHOT_TARGET_FAR" and operating(client)["target_far"] == 0.001
    verify = client.post("/api/v1/verify", data={"person_id": client.get("/api/v1/people").json()["items"][0]["id"]},
                         files=[upload(photos["Emma_Watson"][1])]).json()
    assert verify["threshold"] == operating(client)["thresholds"]["1"]
    assert 0 < verify["stranger_accept_rate"] <= 0.001


def test_two_workers_agree_on_the_thresholds_after_a_change(make_client, tmp_path, photos):
    a = make_client(tmp_path / "data")
    b = make_client(tmp_path / "data")  # a second worker on the same data directory and database
    enroll(a, "Emma Watson", photos["Emma_Watson"][:1])
    assert operating(b) == operating(a)
    for name in ONE_PHOTO[2:6]:
        enroll(a, name, photos[name][:1])
    assert operating(b) == operating(a) and operating(b)["gallery_size"] == 5


def test_http_decides_as_the_evaluation_does(client, photos, pipeline):
    """Same gallery, same photos: every answer of the service equals the open-set protocol's decision."""
    ids = {enroll(client, n, photos[n][:1]): n for n in ONE_PHOTO}
    probes = [f for n in photos for f in (photos[n][1:] if n in ONE_PHOTO else photos[n])]
    served = []
    for f in probes:
        face = client.post("/api/v1/identify", files=[upload(f)]).json()["faces"][0]
        served.append(face["person"]["name"] if face["person"] else None)
        assert ids.get(face["person"]["id"] if face["person"] else None, None) == served[-1]

    embed = lambda f: pipeline.analyze(load_image(f.read_bytes()))[0].embedding  # noqa: E731  (the served face)
    support = [photos[n][0] for n in ONE_PHOTO]
    data = EmbeddedPhotos({f"{i}": [i] for i in range(len(support) + len(probes))},
                          np.stack([embed(f) for f in support + probes]), np.ones(len(support) + len(probes), bool))
    split = Split(known=[str(i) for i in range(len(support))], support={str(i): [i] for i in range(len(support))},
                  queries=[], strangers=[])
    best, dist = nearest(data, split, 1, np.arange(len(support), len(support) + len(probes)))
    threshold = gallery_aware(pipeline.encoder.calibration, 0.01)(len(ONE_PHOTO), 1)
    evaluated = [ONE_PHOTO[b] if d <= threshold else None for b, d in zip(best, dist)]
    assert served == evaluated
    assert any(served) and None in served  # both kinds of decision were exercised
