"""Unknown visitors grouped as their events arrive (issue 29, point 4): real photos of different people posted as
unknown events with the real pipeline's embeddings, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from app.client import FaceshotAPIError, FaceshotClient
from app.core.tables import VisitorMember

from .conftest import ADMIN, upload
from .test_event_review import camera_crop

API = "/api/v1"


def unknown_event(client, photo, source="door-1", prefix=API, **extra):
    """An unknown face as a remote watcher reports it: the crop, and the embedding /embed made of it."""
    embedded = client.post(f"{API}/embed", files=[upload(photo)]).json()
    body = {"source": source, "person_id": None, "distance": 0.7, "threshold": 0.4, "quality": {"score": 0.8},
            "face": base64.b64encode(camera_crop(photo)).decode(),
            "embedding": embedded["faces"][0]["embedding"], "encoder_hash": embedded["encoder"]["content_hash"],
            **extra}
    r = client.post(f"{prefix}/events", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def groups(client, prefix=API, status="active"):
    r = client.get(f"{prefix}/visitors", params={"status": status})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def group_of(client, event_id, status="all"):
    return next(g for g in groups(client, status=status) if event_id in g["best_event_ids"])


@pytest.fixture
def kept(make_client, database_url, tmp_path):
    return make_client(tmp_path / "data", database_url=database_url, event_faces=True, event_unknown_faces=True)


def test_two_peoples_unknown_events_form_two_groups_and_naming_one_enrolls_them(kept, photos):
    emma, john = photos["Emma_Watson"], photos["John_Travolta"]
    e = [unknown_event(kept, p, source) for p, source in ((emma[0], "door-1"), (emma[1], "gate"))]
    j = [unknown_event(kept, p) for p in john[:2]]
    found = groups(kept)
    assert sorted(sorted(g["best_event_ids"]) for g in found) == sorted([sorted(e), sorted(j)])
    ann = group_of(kept, e[0])
    assert ann["label"] == f"Unknown #{ann['id']}" and ann["seen"] == 2 and ann["cameras"] == ["door-1", "gate"]
    assert ann["first_seen"] <= ann["last_seen"] and ann["best_face_urls"][0].endswith("/face")

    r = kept.post(f"{API}/visitors/{ann['id']}/name", json={"name": "Emma Watson"})
    assert r.status_code == 201, r.text
    named = r.json()
    assert named["person"]["face_count"] == 2 and sorted(named["event_ids"]) == sorted(e)
    assert [g["id"] for g in groups(kept, status="all")] == [group_of(kept, j[0])["id"]]  # the group is closed
    faces = kept.post(f"{API}/identify", files=[upload(emma[2])]).json()["faces"]
    assert faces[0]["person"]["id"] == named["person"]["id"]  # her next photo is named
    entry = kept.get(f"{API}/audit", params={"action": "visitor.name"}).json()["items"][0]
    assert entry["target"] == named["person"]["id"] and entry["details"]["visitor"] == ann["id"]
    assert kept.post(f"{API}/visitors/{ann['id']}/name", json={"name": "Emma"}).status_code == 404


def test_split_merge_dismiss_delete_and_a_split_is_never_merged_back(kept, photos):
    john, wen = photos["John_Travolta"], photos["Wen_Jiabao"]
    j = [unknown_event(kept, p) for p in john]
    w = unknown_event(kept, wen[0])
    group = group_of(kept, j[0])
    assert group["seen"] == 3

    r = kept.post(f"{API}/visitors/{group['id']}/split", json={"event_id": j[2]})
    assert r.status_code == 201, r.text
    alone = r.json()
    assert alone["seen"] == 1 and alone["best_event_ids"] == [j[2]] and alone["cannot_link"] == [group["id"]]
    assert group_of(kept, j[0])["seen"] == 2
    refused = kept.post(f"{API}/visitors/{group['id']}/merge", json={"other": alone["id"]})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "cannot_link"
    only = kept.post(f"{API}/visitors/{alone['id']}/split", json={"event_id": j[2]})
    assert only.status_code == 409 and only.json()["error"]["details"]["reason"] == "only_face"

    wen_group = group_of(kept, w)
    merged = kept.post(f"{API}/visitors/{group['id']}/merge", json={"other": wen_group["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["seen"] == 3 and wen_group["id"] not in [g["id"] for g in groups(kept, status="all")]
    # the cannot-link followed the merged group; a new face of the same people still finds its group
    assert kept.post(f"{API}/visitors/{group['id']}/merge", json={"other": alone["id"]}).status_code == 409

    dismissed = kept.post(f"{API}/visitors/{alone['id']}/dismiss")
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert alone["id"] not in [g["id"] for g in groups(kept)]
    assert [g["id"] for g in groups(kept, status="dismissed")] == [alone["id"]]

    r = kept.delete(f"{API}/visitors/{group['id']}")
    assert r.status_code == 200 and r.json() == {"id": group["id"], "events": 3}
    listed = {e["id"]: e for e in kept.get(f"{API}/events", params={"unknown": "true"}).json()["items"]}
    assert j[0] in listed and listed[j[0]]["face_url"] is None and not listed[j[0]]["embedding_kept"]
    assert listed[j[2]]["embedding_kept"]  # the dismissed group's face is kept
    assert kept.delete(f"{API}/visitors/{group['id']}").status_code == 404
    actions = {e["action"] for e in kept.get(f"{API}/audit").json()["items"]}
    assert {"visitor.split", "visitor.merge", "visitor.dismiss", "visitor.delete"} <= actions


def test_deleted_events_leave_their_groups(kept, photos):
    emma, carlos = photos["Emma_Watson"], photos["Carlos_Menem"]
    e = [unknown_event(kept, emma[0], "door-1"), unknown_event(kept, emma[1], "gate")]
    c = unknown_event(kept, carlos[0], "gate")
    assert len(groups(kept)) == 2
    assert kept.delete(f"{API}/events", params={"source": "gate"}).json()["deleted"] == 2
    left = groups(kept)
    assert [(g["best_event_ids"], g["seen"], g["cameras"]) for g in left] == [([e[0]], 1, ["door-1"])]
    assert c not in str(left)

    # retention: an event past it goes with its membership, and its group left empty goes too
    kept.app.state.service.settings.event_retention_days = 0.5
    old = unknown_event(kept, carlos[1], "door-2",
                        time=(datetime.now(timezone.utc) - timedelta(hours=13)).isoformat())
    assert any(old in g["best_event_ids"] for g in groups(kept))
    kept.app.state.service.events.purge_expired()
    assert [g["best_event_ids"] for g in groups(kept)] == [[e[0]]]
    with kept.app.state.service.sessions() as session:
        assert [m.event_id for m in session.query(VisitorMember)] == [e[0]]


def test_groups_survive_a_restart_and_another_worker_sees_them(make_client, database_url, tmp_path, photos):
    settings = {"database_url": database_url, "event_faces": True, "event_unknown_faces": True}
    one = make_client(tmp_path / "data", **settings)
    emma = photos["Emma_Watson"]
    first = unknown_event(one, emma[0])
    two = make_client(tmp_path / "data", **settings)  # a second worker on the same database
    second = unknown_event(two, emma[1])
    third = unknown_event(one, emma[2])  # the first worker's copy is stale: rebuilt from the tables
    for client in (one, two):
        [group] = groups(client)
        assert group["seen"] == 3 and set(group["best_event_ids"]) == {first, second, third}


def test_collection_scoped_and_nothing_grouped_without_kept_faces(make_client, tmp_path, photos):
    plain = make_client(tmp_path / "plain")
    unknown_event(plain, photos["Emma_Watson"][0])
    assert groups(plain) == []
    kept = make_client(tmp_path / "kept", event_faces=True, event_unknown_faces=True)
    assert kept.post(f"{API}/collections", json={"name": "warehouse"}).status_code == 201
    prefix = f"{API}/collections/warehouse"
    event = unknown_event(kept, photos["Emma_Watson"][0], prefix=prefix)
    assert [g["best_event_ids"] for g in groups(kept, prefix)] == [[event]] and groups(kept) == []
    assert kept.get(f"{API}/visitors", headers={"X-API-Key": "nope"}).status_code == 401
    assert kept.delete(f"{API}/collections/warehouse").status_code == 204  # its groups go with it
    with kept.app.state.service.sessions() as session:
        assert session.query(VisitorMember).count() == 0


def test_the_client_methods(kept, photos):
    """app/client.py against the real app (its own transport: the test client's)."""
    john = photos["John_Travolta"]
    events = [unknown_event(kept, p) for p in john]
    with FaceshotClient("http://testserver", ADMIN, transport=kept._transport) as fs:
        [group] = fs.list_visitors().items
        assert group.seen == 3 and set(group.best_event_ids) == set(events)
        alone = fs.split_visitor(group.id, events[2])
        with pytest.raises(FaceshotAPIError) as refused:
            fs.merge_visitors(group.id, alone.id)
        assert refused.value.status == 409 and refused.value.code == "cannot_link"
        assert fs.dismiss_visitor(alone.id).status == "dismissed"
        assert [g.id for g in fs.list_visitors("dismissed").items] == [alone.id]
        named = fs.name_visitor(group.id, "John Travolta")
        assert named.person.face_count == 2 and named.visitor == group.id
        assert fs.delete_visitor(alone.id).events == 1 and fs.list_visitors("all").items == []
