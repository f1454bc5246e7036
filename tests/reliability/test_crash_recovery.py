"""kill -9 in the middle of an enrollment: no half person, and the index rebuilt from the database
equals the one the service held before."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from app.testing.server import Server
from tests.data.conftest import make_service


def snapshots_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and a[k][1] == b[k][1] and np.allclose(a[k][2], b[k][2], atol=1e-6) for k in a)


def assert_no_half_people(client: httpx.Client) -> list[dict]:
    people = client.get("/people", params={"limit": 100}).json()["items"]
    for p in people:
        assert p["face_count"] >= 1, f"{p['name']} was left without faces"
    return people


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_kill_mid_enrollment(point, database_url, tmp_path, pipeline, photos, server_factory):
    data = tmp_path / "data"
    # Two people enrolled by a service that updates its index write by write.
    before = make_service(database_url, tmp_path, pipeline)
    for name in ("Emma_Watson", "Wen_Jiabao"):
        before.people.enroll(name, [before.people.prepare(f.read_bytes()) for f in photos[name][:2]])
    snapshot_before = before.gallery.snapshot()
    assert len(snapshot_before) == 2

    server: Server = server_factory(data, database_url)
    server.start(crash_at=point)
    files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos["John_Travolta"][:2]]
    with server.client() as c, pytest.raises(httpx.TransportError):
        c.post("/enroll", data={"name": "John Travolta"}, files=files)
    assert server.proc.wait(timeout=30) == -9, "the worker was SIGKILLed in the middle of the write"

    server.start()
    with server.client() as c:
        people = assert_no_half_people(c)
        names = sorted(p["name"] for p in people)
        probe = photos["John_Travolta"][2].read_bytes()
        r = c.post("/identify", files={"image": ("q.jpg", probe, "image/jpeg")}).json()["faces"][0]
    committed = point == "after_commit"
    assert names == sorted(["Emma_Watson", "Wen_Jiabao"] + (["John Travolta"] if committed else []))
    if committed:
        serena = next(p for p in people if p["name"] == "John Travolta")
        assert serena["face_count"] == 2  # all of the enrollment, not part of it
        assert r["person"] and r["person"]["name"] == "John Travolta"
    else:
        assert r["person"] is None

    rebuilt = make_service(database_url, tmp_path, pipeline).gallery.snapshot()
    if committed:
        before.gallery_sync.sync()  # the old service catches up incrementally; the rebuilt one read it all at once
        assert len(before.gallery.snapshot()) == 3
    assert snapshots_equal(rebuilt, before.gallery.snapshot())
    assert snapshots_equal({k: v for k, v in rebuilt.items() if k in snapshot_before}, snapshot_before)

    # A crash before the commit leaves the photos it had written, named in the photo journal; the
    # start-up sweep quarantines them once they are old enough to belong to no write in flight.
    orphans = 0 if committed else 2
    assert before.photos.sweep(before.settings.data_dir, min_age_s=0).quarantined == orphans
    with before.sessions() as s:
        from app.core.tables import Face
        stored = {f.image_file for f in s.query(Face)}
    assert {p.name for p in before.settings.images_dir.glob("*.img")} == stored


@pytest.mark.slow
def test_kill_during_a_stream_of_enrollments_loses_nothing_acknowledged(tmp_path, photos, server_factory):
    server: Server = server_factory(tmp_path / "data")
    server.start()
    names = [n for n, files in photos.items() if len(files) >= 2][:8]
    acknowledged: dict[str, str] = {}
    kill_now = threading.Event()
    killed = threading.Event()

    def enroll_all():
        with server.client() as c:
            for i, name in enumerate(names):
                files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[name][:2]]
                try:
                    r = c.post("/enroll", data={"name": name, "external_id": f"emp-{i}"}, files=files)
                except httpx.TransportError:
                    killed.wait(60)
                    continue  # in flight when the server died: the retry below settles it
                assert r.status_code == 201, r.text
                acknowledged[name] = r.json()["person"]["id"]
                if len(acknowledged) == 3:
                    kill_now.set()

    worker = threading.Thread(target=enroll_all)
    worker.start()
    assert kill_now.wait(300)
    server.kill()  # the 4th enrollment is on its way or in flight
    killed.set()
    worker.join(300)
    server.start()
    with server.client() as c:
        people = {p["name"]: p for p in assert_no_half_people(c)}
        for name, pid in acknowledged.items():
            assert people[name]["id"] == pid and people[name]["face_count"] == 2, f"lost {name}"
        # whatever was lost in flight can be enrolled again (external_id: at most once)
        for i, name in enumerate(names):
            if name not in people:
                files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[name][:2]]
                assert c.post("/enroll", data={"name": name, "external_id": f"emp-{i}"}, files=files).status_code == 201
        final = assert_no_half_people(c)
        assert sorted(p["name"] for p in final) == sorted(names)
        assert c.get("/model").json()["gallery"]["indexed_people"] == len(names)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_kill_mid_enrollment_with_photos_in_the_database(point, database_url, tmp_path, photos, server_factory):
    """FACESHOT_PHOTO_STORE=database (issue 30): the photos commit or vanish with their faces, nothing to sweep."""
    from sqlalchemy import select

    from app.core.db import Database
    from app.core.tables import Face, StoredPhoto

    server: Server = server_factory(tmp_path / "data", database_url)
    env = {"FACESHOT_PHOTO_STORE": "database"}
    server.start(crash_at=point, env=env)
    files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos["John_Travolta"][:2]]
    with server.client() as c, pytest.raises(httpx.TransportError):
        c.post("/enroll", data={"name": "John Travolta"}, files=files)
    assert server.proc.wait(timeout=30) == -9
    server.start(env=env)
    with server.client() as c:
        people = assert_no_half_people(c)
    db = Database(database_url)
    try:
        with db.sessions() as session:
            faces = set(session.execute(select(Face.image_file)).scalars())
            rows = set(session.execute(select(StoredPhoto.name)).scalars())
    finally:
        db.close()
    assert len(people) == (1 if point == "after_commit" else 0)
    assert rows == faces and len(rows) == (2 if point == "after_commit" else 0)  # never a half-stored photo
    assert not list((tmp_path / "data" / "images").glob("*.img"))
