"""Many clients enrolling, deleting and identifying at once, against two workers: an identify sent after
a delete was answered never returns the deleted person; one sent after an enrollment was answered
always has that person among its candidates."""

from __future__ import annotations

import threading
import time

import pytest

from app.testing.server import Server


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_concurrent_enroll_delete_identify(tmp_path, photos, server_factory):
    server: Server = server_factory(tmp_path / "data", workers=2)
    server.start()
    stable = ["Carlos_Menem", "Javier_Solana", "Leonid_Kuchma", "Robert_Blake"]
    churned = "Emma_Watson"  # enrolled and deleted again and again
    probes = {n: photos[n][2].read_bytes() for n in stable + [churned]}
    enrolled_at: dict[str, tuple[float, str]] = {}  # name -> (answered at, id)
    deleted_at: dict[str, float] = {}  # id -> answered at
    errors: list[str] = []
    observations: list[tuple[float, str, set[str]]] = []  # (sent at, probe name, every id in the answer)
    writers_done = threading.Event()

    def enroll(c, name, label):
        files = [("images", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[name][:2]]
        r = c.post("/enroll", data={"name": label}, files=files)
        if r.status_code != 201:
            errors.append(f"enroll {label}: {r.status_code} {r.text[:200]}")
            return None
        return r.json()["person"]["id"]

    def stable_writer():
        with server.client() as c:
            for name in stable:
                pid = enroll(c, name, name)
                if pid:
                    enrolled_at[name] = (time.monotonic(), pid)

    def churn_writer():
        with server.client() as c:
            for round_ in range(4):
                pid = enroll(c, churned, f"{churned} #{round_}")
                if pid is None:
                    continue
                r = c.delete(f"/people/{pid}")
                if r.status_code != 204:
                    errors.append(f"delete: {r.status_code} {r.text[:200]}")
                deleted_at[pid] = time.monotonic()

    def identifier(offset: int):
        names = list(probes)
        with server.client() as c:
            i = offset
            # bounded: until the writers are done, then one more pass over every probe
            while i < offset + 200 and not (writers_done.is_set() and i >= offset + len(names) * 3):
                name = names[i % len(names)]
                sent = time.monotonic()
                r = c.post("/identify", data={"top_k": 50}, files={"image": ("q.jpg", probes[name], "image/jpeg")})
                i += 1
                if r.status_code != 200:
                    errors.append(f"identify: {r.status_code} {r.text[:200]}")
                    continue
                face = r.json()["faces"][0]
                ids = {cand["person"]["id"] for cand in face["candidates"]}
                if face["person"]:
                    ids.add(face["person"]["id"])
                observations.append((sent, name, ids))

    writers = [threading.Thread(target=stable_writer), threading.Thread(target=churn_writer)]
    readers = [threading.Thread(target=identifier, args=(k * 7,)) for k in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(300)
    writers_done.set()
    for t in readers:
        t.join(300)

    assert not errors, errors
    assert len(enrolled_at) == len(stable) and len(deleted_at) == 4
    assert len(observations) >= 30
    for sent, _probe, ids in observations:
        for pid, gone in deleted_at.items():
            assert not (sent > gone and pid in ids), "an identify sent after a delete returned the deleted person"
        for name, (answered, pid) in enrolled_at.items():
            assert not (sent > answered and pid not in ids), f"{name} went missing from an identify after enrolling"
    # and what is left is exactly the stable people, whole
    with server.client() as c:
        people = c.get("/people", params={"limit": 100}).json()["items"]
        assert sorted(p["name"] for p in people) == sorted(stable)
        assert all(p["face_count"] == 2 for p in people)
        assert c.get("/model").json()["gallery"]["indexed_people"] == len(stable)
