"""Collections: galleries of their own in one deployment, keys bound to one, today's routes as `default`'s."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .conftest import ADMIN, upload

ROOT = Path(__file__).resolve().parents[2]


def _key(client, collection, role="recognition"):
    r = client.post("/api/v1/keys", json={"name": f"{role} of {collection}", "role": role, "collection": collection})
    assert r.status_code == 201, r.text
    assert r.json()["collection"] == collection
    return {"X-API-Key": r.json()["key"]}


def _enroll(client, collection, who, photos, n=2, headers=None):
    path = "/api/v1/enroll" if collection == "default" else f"/api/v1/collections/{collection}/enroll"
    r = client.post(path, data={"name": who.replace("_", " ")}, headers=headers,
                    files=[upload(p, "images") for p in photos[who][:n]])
    assert r.status_code == 201, r.text
    return r.json()["person"]["id"]


def _named(client, collection, photo, headers=None):
    r = client.post(f"/api/v1/collections/{collection}/identify", files=[upload(photo)], headers=headers)
    assert r.status_code == 200, r.text
    person = r.json()["faces"][0]["person"]
    return person and person["id"]


def test_keys_of_one_collection_never_reach_another(client, photos):
    for name in ("warehouse", "office"):
        assert client.post("/api/v1/collections", json={"name": name}).status_code == 201
    emma = _enroll(client, "office", "Emma_Watson", photos)
    wen = _enroll(client, "warehouse", "Wen_Jiabao", photos)
    door, warehouse_admin = _key(client, "warehouse"), _key(client, "warehouse", "admin")

    probe = photos["Emma_Watson"][2]
    assert _named(client, "office", probe) == emma
    for headers in (door, warehouse_admin):
        r = client.post("/api/v1/collections/office/identify", files=[upload(probe)], headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
        r = client.post("/api/v1/identify", files=[upload(probe)], headers=headers)  # today's = default's
        assert r.status_code == 403
    r = client.get("/api/v1/collections/office/people", headers=warehouse_admin)
    assert r.status_code == 403 and "Emma" not in r.text
    assert [p["id"] for p in client.get("/api/v1/collections/warehouse/people",
                                        headers=warehouse_admin).json()["items"]] == [wen]
    r = client.get(f"/api/v1/collections/warehouse/people/{emma}", headers=warehouse_admin)
    assert r.status_code == 404  # another collection's person does not exist here
    for path in ("/api/v1/collections", "/api/v1/keys", "/api/v1/events"):  # deployment-wide lists
        assert client.get(path, headers=warehouse_admin).status_code == 403
    # the warehouse's door key identifies in the warehouse
    assert _named(client, "warehouse", photos["Wen_Jiabao"][2], door) == wen
    # (the admin page within one collection: tests/admin/test_collections_admin.py)
    # an unknown collection: 404 after the key is checked, 401 without one
    assert client.post("/api/v1/collections/nowhere/identify", files=[upload(probe)]).status_code == 404
    assert client.post("/api/v1/collections/nowhere/identify", files=[upload(probe)],
                       headers={"X-API-Key": "fs_wrong"}).status_code == 401


def test_identify_in_one_collection_never_names_a_person_of_another(client, photos):
    assert client.post("/api/v1/collections", json={"name": "lab"}).status_code == 201
    probe = photos["Emma_Watson"][2]
    in_lab = _enroll(client, "lab", "Emma_Watson", photos)
    assert _named(client, "default", probe) is None  # the same face is only in lab
    assert _named(client, "lab", probe) == in_lab
    in_default = _enroll(client, "default", "Emma_Watson", photos)
    assert _named(client, "default", probe) == in_default and _named(client, "lab", probe) == in_lab
    # each collection has its own operating point (its own gallery size)
    sizes = {c: client.get(f"/api/v1/collections/{c}/model").json()["operating_point"]["gallery_size"]
             for c in ("default", "lab")}
    assert sizes == {"default": 1, "lab": 1}
    _enroll(client, "lab", "Wen_Jiabao", photos)
    assert client.get("/api/v1/collections/lab/model").json()["gallery"]["people"] == 2
    assert client.get("/api/v1/model").json()["gallery"]["people"] == 1  # today's route: default's


def test_move_and_copy_between_collections(client, photos):
    assert client.post("/api/v1/collections", json={"name": "north"}).status_code == 201
    probe = photos["Emma_Watson"][2]
    emma = _enroll(client, "default", "Emma_Watson", photos)
    r = client.post(f"/api/v1/people/{emma}/move", json={"to": "north"})
    assert r.status_code == 200 and r.json()["id"] == emma
    assert _named(client, "default", probe) is None and _named(client, "north", probe) == emma
    r = client.post(f"/api/v1/collections/north/people/{emma}/move", json={"to": "default", "mode": "copy"})
    assert r.status_code == 200 and r.json()["id"] != emma and r.json()["face_count"] == 2
    copy_id = r.json()["id"]
    assert _named(client, "default", probe) == copy_id and _named(client, "north", probe) == emma
    faces = client.get(f"/api/v1/people/{copy_id}/faces").json()
    assert all(f["has_image"] for f in faces)  # the photos were copied too


def test_deleting_a_collection_removes_exactly_its_people_photos_keys_and_index(client, photos, tmp_path):
    assert client.post("/api/v1/collections", json={"name": "temp"}).status_code == 201
    kept = _enroll(client, "default", "Wen_Jiabao", photos)
    gone = [_enroll(client, "temp", who, photos) for who in ("Emma_Watson", "Leonid_Kuchma")]
    door = _key(client, "temp")
    images = tmp_path / "data" / "images"
    before = {p.name for p in images.iterdir()}
    gone_files = {f"{f['id']}.img" for pid in gone
                  for f in client.get(f"/api/v1/collections/temp/people/{pid}/faces").json()}
    assert gone_files <= before
    assert client.delete("/api/v1/collections/temp").status_code == 204
    assert {p.name for p in images.iterdir()} == before - gone_files
    assert [p["id"] for p in client.get("/api/v1/people").json()["items"]] == [kept]
    assert client.post("/api/v1/collections/temp/identify", files=[upload(photos["Emma_Watson"][2])],
                       headers={"X-API-Key": ADMIN}).status_code == 404
    assert client.get("/api/v1/model", headers=door).status_code == 401  # its keys are gone
    assert client.delete("/api/v1/collections/default").status_code == 409
    assert [c["name"] for c in client.get("/api/v1/collections").json()] == ["default"]


def test_events_and_webhooks_belong_to_their_collection(make_client, tmp_path, photos):
    """A warehouse camera's events are the warehouse's: its webhooks get them, the office's do not; deleting the
    warehouse deletes them."""
    client = make_client(tmp_path / "data", webhook_allow_private="127.0.0.1/32")  # webhooks to this host
    assert client.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201
    wen = _enroll(client, "warehouse", "Wen_Jiabao", photos)
    emma = _enroll(client, "default", "Emma_Watson", photos)
    door, warehouse_admin = _key(client, "warehouse"), _key(client, "warehouse", "admin")
    office_hook = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/office"}).json()
    r = client.post("/api/v1/collections/warehouse/webhooks", json={"url": "http://127.0.0.1:9/dock"},
                    headers=warehouse_admin)
    assert r.status_code == 201 and r.json()["collection"] == "warehouse"
    dock_hook = r.json()
    event = {"source": "dock-1", "distance": 0.2, "threshold": 0.4, "box": [1, 2, 3, 4]}
    # a warehouse key posts warehouse events; an office person's id is not the warehouse's to name
    assert client.post("/api/v1/events", json=event, headers=door).status_code == 403
    assert client.post("/api/v1/collections/warehouse/events", json={**event, "person_id": emma},
                       headers=door).status_code == 404
    r = client.post("/api/v1/collections/warehouse/events", json={**event, "person_id": wen}, headers=door)
    assert r.status_code == 201 and r.json()["collection"] == "warehouse"
    warehouse_events = client.get("/api/v1/collections/warehouse/events", headers=warehouse_admin).json()
    assert [e["person"]["name"] for e in warehouse_events["items"]] == ["Wen Jiabao"]
    assert client.get("/api/v1/events").json()["total"] == 0  # today's path: default's events only
    assert client.get("/api/v1/events", headers=warehouse_admin).status_code == 403
    assert [h["id"] for h in client.get("/api/v1/collections/warehouse/webhooks", headers=warehouse_admin).json()] \
        == [dock_hook["id"]]
    deliveries = {h["id"]: h["deliveries"] for h in client.get("/api/v1/webhooks").json()}
    assert set(deliveries) == {office_hook["id"]} and sum(deliveries[office_hook["id"]].values()) == 0
    dock = client.get(f"/api/v1/collections/warehouse/webhooks/{dock_hook['id']}/deliveries",
                      headers=warehouse_admin).json()
    assert [d["event_id"] for d in dock] == [r.json()["id"]]
    assert client.get(f"/api/v1/webhooks/{dock_hook['id']}/deliveries").status_code == 404  # not default's
    assert client.delete("/api/v1/collections/warehouse").status_code == 204
    assert client.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201  # a new, empty one
    assert client.get("/api/v1/collections/warehouse/events").json()["total"] == 0
    assert client.get("/api/v1/collections/warehouse/webhooks").json() == []
    assert [h["id"] for h in client.get("/api/v1/webhooks").json()] == [office_hook["id"]]


def test_a_watcher_in_a_collection_names_its_people_and_records_there(client, photos):
    """`faceshot watch --collection warehouse` in-process: decided against the warehouse, stored in it."""
    from datetime import datetime, timezone

    from app.live.events import NewEvent
    from app.live.watch_local import LocalRecognizer
    from models.imageio import load_image

    assert client.post("/api/v1/collections", json={"name": "warehouse"}).status_code == 201
    wen = _enroll(client, "warehouse", "Wen_Jiabao", photos)
    _enroll(client, "default", "Emma_Watson", photos)
    service = client.app.state.service
    recognizer = LocalRecognizer(service, "warehouse")
    seen = {}
    for who in ("Wen_Jiabao", "Emma_Watson"):
        face = recognizer.observe(load_image(photos[who][2]), 0.0)[0]
        seen[who] = recognizer.decide(face.embedding)
    assert seen["Wen_Jiabao"].person_id == wen and seen["Emma_Watson"].person_id is None
    event = recognizer.record(NewEvent(time=datetime.now(timezone.utc), source="dock-1", person_id=wen,
                                       distance=0.2, threshold=0.4, box=[1, 2, 3, 4], quality={}))
    assert event["collection"] == "warehouse"
    assert client.get("/api/v1/collections/warehouse/events").json()["total"] == 1
    assert client.get("/api/v1/events").json()["total"] == 0


def test_another_worker_sees_a_collections_people(make_client, tmp_path, photos):
    a = make_client(tmp_path / "data")
    b = make_client(tmp_path / "data")
    assert a.post("/api/v1/collections", json={"name": "site2"}).status_code == 201
    emma = _enroll(a, "site2", "Emma_Watson", photos)
    assert _named(b, "site2", photos["Emma_Watson"][2]) == emma
    assert _named(b, "default", photos["Emma_Watson"][2]) is None


def test_the_migration_keeps_every_person_face_and_photo_in_default(database_url):
    """A database of 0004 (before collections), with a person, a face and a key: all there after the upgrade,
    on SQLite and on PostgreSQL (where the collection columns get foreign keys)."""
    from alembic import command
    from alembic.config import Config

    url = database_url
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["sqlalchemy_url"] = url
    command.upgrade(cfg, "0004")
    engine = create_engine(url)
    embedding = bytes(range(256)) * 2
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO people (id, name, metadata, created_at, updated_at) VALUES "
                          "('p1', 'Ada', '{}', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO faces (id, person_id, embedding, encoder_hash, box, det_score, image_file, "
                          "created_at) VALUES ('f1', 'p1', :e, 'h', '[1,2,3,4]', 0.9, 'f1.img', '2026-01-01')"),
                     {"e": embedding})
        conn.execute(text("INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at) VALUES "
                          "('k1', 'door', 'recognition', 'fs_', 'x', '2026-01-01')"))
        conn.execute(text("INSERT INTO recognition_events (id, time, source, person_id, person_name, box, quality, "
                          "frames, duration_s, created_at) VALUES ('e1', '2026-01-01', 'door-1', 'p1', 'Ada', '[]', "
                          "'{}', 3, 1.0, '2026-01-01')"))
        conn.execute(text("INSERT INTO webhooks (id, url, secret, created_at) VALUES "
                          "('w1', 'https://example.com/h', 's', '2026-01-01')"))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT collection FROM people WHERE id='p1'")).scalar_one() == "default"
        assert conn.execute(text("SELECT embedding FROM faces WHERE id='f1'")).scalar_one() == embedding
        assert conn.execute(text("SELECT image_file FROM faces WHERE id='f1'")).scalar_one() == "f1.img"
        assert conn.execute(text("SELECT collection FROM api_keys WHERE id='k1'")).scalar_one() is None
        assert [r[0] for r in conn.execute(text("SELECT name FROM collections"))] == ["default"]
        # the one gallery's events and webhooks are `default`'s (0007)
        assert conn.execute(text("SELECT collection FROM recognition_events WHERE id='e1'")).scalar_one() == "default"
        assert conn.execute(text("SELECT collection FROM webhooks WHERE id='w1'")).scalar_one() == "default"
    command.downgrade(cfg, "0004")  # and back, nothing lost
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM faces")).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize("bad", ["UPPER", "-dash", "a" * 65, "sp ace"])
def test_collection_names_are_checked(client, bad):
    r = client.post("/api/v1/collections", json={"name": bad})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_error")


def test_only_deployment_admin_keys_list_the_collections_and_an_empty_gallery_is_size_0(client):
    """Issue 26, point 14: any unscoped recognition key listed every collection's name and size; an empty
    gallery reported gallery_size 1."""
    assert client.get("/api/v1/model").json()["operating_point"]["gallery_size"] == 0
    camera = client.post("/api/v1/keys", json={"name": "camera", "role": "recognition"}).json()["key"]
    assert client.post("/api/v1/collections", json={"name": "secret-site"}).status_code == 201
    r = client.get("/api/v1/collections", headers={"X-API-Key": camera})
    assert r.status_code == 403 and "secret-site" not in r.text
    assert "secret-site" in client.get("/api/v1/collections").text
