"""The MQTT event sink and Home Assistant discovery, against a real Mosquitto broker and the real app."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.tables import MqttMessage
from app.live.events import NewEvent
from app.live.ha_discovery import topic_level
from tests.api.conftest import ADMIN, upload
from tests.live.mqtt_helpers import Mosquitto, Subscriber


def _prefixes():
    tag = uuid.uuid4().hex[:8]
    return f"faceshot-{tag}", f"ha-{tag}"


def _event(source: str, person_id: str | None = None, distance: float = 0.7) -> NewEvent:
    return NewEvent(time=datetime.now(timezone.utc), source=source, person_id=person_id, distance=distance,
                    threshold=0.42, box=[10.0, 10.0, 90.0, 90.0], quality={"score": 0.8})


def test_a_door_event_reaches_mqtt_with_its_decision_and_home_assistant_follows_people_and_cameras(
        make_client, tmp_path, photos, broker_port):
    prefix, ha = _prefixes()
    watcher = Subscriber(broker_port, [f"{prefix}/#", f"{ha}/#"])
    client = make_client(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{broker_port}", mqtt_topic_prefix=prefix,
                         mqtt_ha_prefix=ha)
    watcher.wait(lambda ms: any(m.topic == f"{prefix}/availability" and m.payload == "online" for m in ms),
                 what="faceshot online")
    emma = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                       files=[upload(photos["Emma_Watson"][0], "images")]).json()["person"]["id"]

    # a known face at the front door (a camera name that is no topic level as it stands), then a stranger
    known = client.post("/api/v1/events", json={"source": "front door", "person_id": emma, "distance": 0.31,
                                                "threshold": 0.42}).json()
    stranger = client.post("/api/v1/events", json={"source": "front door", "person_id": None, "distance": 0.61,
                                                   "threshold": 0.42}).json()
    door = topic_level("front door")
    assert door.startswith("front_door-")
    stream = f"{prefix}/default/events/{door}"
    watcher.wait(lambda ms: len([m for m in ms if m.topic == stream]) == 2, what="both events")
    first, second = (m.json() for m in watcher.on(stream))
    assert (first["id"], first["event_type"], first["person"]["name"], first["match"]) == \
        (known["id"], "known", "Emma Watson", True)
    assert (second["id"], second["event_type"], second["person"], second["match"]) == \
        (stranger["id"], "unknown", None, False)
    # the calibrated decision, as the API recorded it: the rate is the server's, at this gallery's size
    assert known["stranger_accept_rate"] is not None and 0 < known["stranger_accept_rate"] <= 0.05
    assert (first["distance"], first["threshold"], first["stranger_accept_rate"], first["camera"]) == \
        (0.31, 0.42, known["stranger_accept_rate"], "front door")
    seen = watcher.on(f"{prefix}/default/people/{emma}/last_seen")[-1]
    assert seen.json()["camera"] == "front door" and seen.json()["event_id"] == known["id"]
    watcher.wait(lambda ms: any(m.topic == f"{prefix}/default/cameras/{door}/unknown" and m.payload == "ON"
                                for m in ms), what="the unknown-person sensor on")

    # Home Assistant's discovery: the camera's device (event, unknown-person sensor, last recognised), Emma's sensor
    node = topic_level(prefix)
    wanted = {f"{ha}/event/{node}/default_{door}_face/config",
              f"{ha}/binary_sensor/{node}/default_{door}_unknown/config",
              f"{ha}/sensor/{node}/default_{door}_last_recognised/config",
              f"{ha}/sensor/{node}/default_person_{emma}/config"}
    watcher.wait(lambda ms: wanted <= {m.topic for m in ms if m.payload}, what="the discovery configs")
    configs = {t: watcher.on(t)[-1].json() for t in wanted}
    face = configs[f"{ha}/event/{node}/default_{door}_face/config"]
    assert face["event_types"] == ["known", "unknown", "corrected", "correction_undone"]
    assert face["state_topic"] == stream
    assert face["availability_topic"] == f"{prefix}/availability" and face["device"]["name"] == "front door"
    unknown = configs[f"{ha}/binary_sensor/{node}/default_{door}_unknown/config"]
    assert unknown["off_delay"] > 0 and unknown["payload_on"] == "ON"
    person = configs[f"{ha}/sensor/{node}/default_person_{emma}/config"]
    assert person["name"] == "Emma Watson last seen"
    assert person["state_topic"] == f"{prefix}/default/people/{emma}/last_seen"
    assert len({c["unique_id"] for c in configs.values()}) == 4

    # what a newcomer (Home Assistant starting) finds retained on the broker
    late = Subscriber(broker_port, [f"{prefix}/#", f"{ha}/#"])
    late.wait(lambda ms: wanted | {f"{prefix}/default/people/{emma}/last_seen", f"{prefix}/availability"}
              <= {m.topic for m in ms if m.retain}, what="the retained configs and states")
    late.close()
    print("\n-- one door event over MQTT (mosquitto_sub -v -t '#') --")
    for m in watcher.messages:
        if m.topic.startswith(prefix) and known["id"] in m.payload or m.topic == f"{prefix}/availability":
            print(m.topic, m.payload)
    print("-- Home Assistant discovery --")
    for t in sorted(wanted):
        print(t, json.dumps(configs[t]))

    # Home Assistant restarts: every config again
    before = len(watcher.on(f"{ha}/sensor/{node}/default_person_{emma}/config"))
    watcher.client.publish(f"{ha}/status", "online", qos=1)
    watcher.wait(lambda ms: len([m for m in ms if m.topic == f"{ha}/sensor/{node}/default_person_{emma}/config"])
                 > before, what="the configs re-published")

    # Emma deleted: her sensor's config and her retained last sighting go
    assert client.delete(f"/api/v1/people/{emma}").status_code == 204
    watcher.wait(lambda ms: any(m.topic == f"{ha}/sensor/{node}/default_person_{emma}/config"
                                            and m.payload == "" for m in ms), what="Emma's config removed")
    watcher.wait(lambda ms: any(m.topic == f"{prefix}/default/people/{emma}/last_seen" and m.payload == ""
                                for m in ms), what="Emma's last sighting cleared")
    watcher.close()


def test_a_broker_outage_loses_no_event_and_keeps_each_cameras_order(make_client, tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    prefix, _ = _prefixes()
    try:
        watcher = Subscriber(broker.port, [f"{prefix}/+/events/#"], client_id=f"outage-{uuid.uuid4().hex[:6]}")
        watcher.wait(lambda _: watcher.subscribed, what="the subscription")
        client = make_client(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{broker.port}", mqtt_topic_prefix=prefix,
                             mqtt_ha_discovery=False)
        service = client.app.state.service
        recorded = {"door-1": [], "door-2": []}

        def record(n: int):
            for i in range(n):
                camera = "door-1" if i % 2 == 0 else "door-2"
                recorded[camera].append(service.events.record(_event(camera)).id)

        def arrived():
            return [m.json()["id"] for m in watcher.messages]

        def queued() -> int:
            with service.db.sessions() as session:
                return session.scalar(select(func.count()).select_from(MqttMessage))

        record(6)
        watcher.wait(lambda ms: len(ms) == 6, what="the first events")
        watcher.wait(lambda _: queued() == 0, what="their acknowledgements")
        broker.stop()
        record(10)  # the broker is down: queued in the database, nothing lost
        assert queued() == 10
        broker.start()
        watcher.wait(lambda ms: len(ms) >= 16, timeout=60, what="the events queued during the outage")
        # a marker after them: in order, any duplicate of the earlier events would have come before it
        marker = service.events.record(_event("door-1")).id
        recorded["door-1"].append(marker)
        watcher.wait(lambda ms: marker in [m.json()["id"] for m in ms], what="the marker")
        got = arrived()
        assert sorted(got) == sorted(recorded["door-1"] + recorded["door-2"])  # each once: none lost, none twice
        for camera, ids in recorded.items():
            assert [i for i in got if i in ids] == ids, f"{camera}'s events out of order"
        watcher.wait(lambda _: queued() == 0, what="the queue emptied")
        print(f"\nbroker outage: {len(got)} events sent, {len(got)} received, 0 lost, 0 twice")
        watcher.close()
    finally:
        broker.close()


@pytest.mark.parametrize("url", ["http://broker:1883", "mqtt://", "mqtt://host:0", "broker:1883"])
def test_a_broker_url_that_cannot_work_stops_the_start(url, tmp_path):
    with pytest.raises(ValueError, match="FACESHOT_MQTT_URL"):
        Settings(data_dir=tmp_path, admin_key=ADMIN, mqtt_url=url)


@pytest.mark.parametrize("prefix", ["faceshot/#", "/faceshot", "home//faceshot", "+"])
def test_a_topic_prefix_with_wildcards_or_empty_levels_is_refused(prefix, tmp_path):
    with pytest.raises(ValueError, match="FACESHOT_MQTT_TOPIC_PREFIX"):
        Settings(data_dir=tmp_path, admin_key=ADMIN, mqtt_topic_prefix=prefix)


def test_one_worker_at_a_time_publishes_and_another_takes_over(make_client, tmp_path, database_url, broker_port):
    """Workers share one database: one holds the MQTT lease and publishes every worker's events, in order; when it
    stops, another takes over with nothing lost."""
    from app.live.mqtt import MqttEvents

    prefix, _ = _prefixes()
    watcher = Subscriber(broker_port, [f"{prefix}/+/events/#"])
    watcher.wait(lambda _: watcher.subscribed, what="the subscription")
    client = make_client(tmp_path / "data", database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{broker_port}",
                         mqtt_topic_prefix=prefix, mqtt_ha_discovery=False)
    service = client.app.state.service
    first = next(s for s in service.sinks if isinstance(s, MqttEvents))
    watcher.wait(lambda _: first.connected, what="the first worker connected")
    second = MqttEvents(service.settings, service.sessions)  # another worker's sink on the same database
    second.start()
    ids = [service.events.record(_event(f"door-{i % 3}")).id for i in range(12)]
    watcher.wait(lambda ms: len(ms) == 12, what="every worker's events")
    assert not second.connected  # the lease is the first's: one connection, one last will, one order
    first.stop()  # a clean stop gives the lease up
    ids += [service.events.record(_event(f"door-{i % 3}")).id for i in range(6)]
    watcher.wait(lambda ms: len(ms) == 18, timeout=45, what="the second worker taking over")
    assert second.connected
    got = [m.json()["id"] for m in watcher.messages]
    assert got == ids  # each once, in the order recorded
    second.stop()
    watcher.close()


def test_a_lease_is_one_holders_until_released_or_expired(database_url):
    from app.core.db import Database, upgrade_database
    from app.core.leases import Lease

    upgrade_database(database_url)
    db = Database(database_url)
    try:
        a, b = Lease(db.sessions, "job", "a", 30), Lease(db.sessions, "job", "b", 30)
        assert a.acquire() and a.acquire()  # taken, then renewed
        assert not b.acquire()
        a.release()
        assert b.acquire() and not a.acquire()
        lapsed = Lease(db.sessions, "other", "a", -1)  # expired the moment it is taken
        assert lapsed.acquire() and Lease(db.sessions, "other", "b", 30).acquire()
    finally:
        db.close()


def test_an_unreachable_broker_never_slows_recording(make_client, tmp_path):
    from tests.live.mqtt_helpers import free_port

    client = make_client(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{free_port()}", mqtt_ha_discovery=False)
    service = client.app.state.service
    for _ in range(20):
        r = client.post("/api/v1/events", json={"source": "door", "person_id": None, "distance": 0.7,
                                                "threshold": 0.4})
        assert r.status_code == 201, r.text
    with service.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(MqttMessage)) == 20  # all waiting for the broker


def test_forgetting_a_camera_deletes_its_events_and_removes_its_home_assistant_device(make_client, tmp_path,
                                                                                       broker_port):
    prefix, ha = _prefixes()
    watcher = Subscriber(broker_port, [f"{ha}/#"])
    client = make_client(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{broker_port}", mqtt_topic_prefix=prefix,
                         mqtt_ha_prefix=ha)
    for source in ("door-1", "door-2", "door-2"):
        assert client.post("/api/v1/events", json={"source": source, "person_id": None, "distance": 0.7,
                                                   "threshold": 0.4}).status_code == 201
    face = f"{ha}/event/{topic_level(prefix)}/default_door-2_face/config"
    watcher.wait(lambda ms: any(m.topic == face and m.payload for m in ms), what="door-2's device")
    assert client.delete("/api/v1/events").status_code == 422  # no "delete everything" by omission
    r = client.delete("/api/v1/events", params={"source": "door-2"})
    assert r.status_code == 200 and r.json() == {"deleted": 2, "source": "door-2"}
    assert [e["source"] for e in client.get("/api/v1/events").json()["items"]] == ["door-1"]
    watcher.wait(lambda ms: any(m.topic == face and m.payload == "" for m in ms), what="door-2's device removed")
    entry = client.get("/api/v1/audit", params={"action": "events.delete_source"}).json()["items"][0]
    assert entry["details"] == {"source": "door-2", "events": 2}
    watcher.close()


@pytest.mark.slow  # a short clip through the face pipeline
def test_an_in_process_watch_publishes_its_events_before_it_exits(make_client, tmp_path, photos, broker_port,
                                                                  monkeypatch, capsys):
    """`faceshot watch FILE` (no --server) runs the event outputs itself: every event it printed is on the broker
    when it returns (it used to leave them queued for a server that might never run)."""
    from app.cli import main
    from app.testing.clips import door_clip

    prefix, _ = _prefixes()
    clip = door_clip([(photos["Emma_Watson"][-1], 0.5, 2.0), (photos["Yasar_Yakis"][-1], 2.6, 4.1)],
                     tmp_path / "door.avi", fps=10, length_s=5.0)
    data = tmp_path / "data"
    client = make_client(data)
    assert client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                       files=[upload(p, "images") for p in photos["Emma_Watson"][:2]]).status_code == 201
    client.__exit__(None, None, None)  # the CLI opens the data directory itself
    watcher = Subscriber(broker_port, [f"{prefix}/+/events/#"])
    watcher.wait(lambda _: watcher.subscribed, what="the subscription")
    for name, value in {"FACESHOT_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}", "FACESHOT_MQTT_TOPIC_PREFIX": prefix,
                        "FACESHOT_MQTT_HA_DISCOVERY": "false", "FACESHOT_ADMIN_KEY": ADMIN}.items():
        monkeypatch.setenv(name, value)
    assert main(["watch", str(clip), "--source", "door-1", "--data-dir", str(data)]) == 0
    printed = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert len(printed) == 2
    watcher.wait(lambda ms: sorted(m.json()["id"] for m in ms) == sorted(printed), timeout=5,
                 what="the watch's events")
    watcher.close()
