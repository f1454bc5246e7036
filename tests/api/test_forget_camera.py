"""Forgetting a camera (DELETE /events?source=) on both databases, with the longest name a camera may have."""

from datetime import datetime, timezone

from app.live.events import NewEvent


def test_a_camera_with_the_longest_name_is_forgotten_on_either_database(make_client, tmp_path, database_url):
    # a 100-character camera name overflowed the audit log's 64-character target on PostgreSQL: a 500
    client = make_client(tmp_path / "data", database_url=database_url)
    camera = "c" * 100
    for source in (camera, camera, "door-1"):
        client.app.state.service.events.record(NewEvent(time=datetime.now(timezone.utc), source=source, person_id=None,
                                                        distance=0.7, threshold=0.4, box=[], quality={}))
    r = client.delete("/api/v1/events", params={"source": camera})
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": 2, "source": camera}
    assert [e["source"] for e in client.get("/api/v1/events").json()["items"]] == ["door-1"]
    entry = client.get("/api/v1/audit", params={"action": "events.delete_source"}).json()["items"][0]
    assert entry["details"] == {"source": camera, "events": 2}
    assert client.delete("/api/v1/events", params={"source": "c" * 101}).status_code == 422
