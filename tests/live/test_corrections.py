"""A corrected event ("not this person", or that taken back) reaches every output again, marked, so a receiver can
take back what it did with the first message; never as a new match."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from app.live.events import NewEvent
from tests.api.conftest import upload
from tests.api.test_watch import Receiver
from tests.live.mqtt_helpers import Subscriber
from tests.live.test_mqtt import _prefixes


def _known(client, photos):
    person = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                         files=[upload(photos["Emma_Watson"][0], "images")]).json()["person"]["id"]
    event = client.post("/api/v1/events", json={"source": "door-1", "person_id": person, "distance": 0.3,
                                                "threshold": 0.42}).json()
    return person, event["id"]


def test_a_correction_is_published_on_the_event_stream_and_never_as_a_match(make_client, tmp_path, photos,
                                                                            broker_port):
    prefix, _ = _prefixes()
    watcher = Subscriber(broker_port, [f"{prefix}/#"])
    client = make_client(tmp_path / "data", mqtt_url=f"mqtt://127.0.0.1:{broker_port}", mqtt_topic_prefix=prefix,
                         mqtt_ha_discovery=False)
    person, event_id = _known(client, photos)
    stream, seen = f"{prefix}/default/events/door-1", f"{prefix}/default/people/{person}/last_seen"
    watcher.wait(lambda ms: any(m.topic == seen for m in ms), what="the sighting")
    assert client.post(f"/api/v1/events/{event_id}/not-this-person").status_code == 200
    # a message is built from the event as it is when sent: the undo waits for the correction's own message
    watcher.wait(lambda ms: len([m for m in ms if m.topic == stream]) == 2, what="the correction")
    assert client.delete(f"/api/v1/events/{event_id}/not-this-person").status_code == 200
    watcher.wait(lambda ms: len([m for m in ms if m.topic == stream]) == 3, what="the correction and its undo")
    first, corrected, undone = (m.json() for m in watcher.on(stream))
    assert [first["event_type"], corrected["event_type"], undone["event_type"]] == \
        ["known", "corrected", "correction_undone"]
    assert {first["id"], corrected["id"], undone["id"]} == {event_id}
    assert (first["match"], corrected["match"], undone["match"]) == (True, False, False)  # no automation fires twice
    assert corrected["corrected"]["kind"] == "not_this_person" and undone["corrected"] is None
    assert len(watcher.on(seen)) == 1  # the person's last sighting is not re-published
    watcher.close()


def test_a_correction_is_delivered_to_webhooks_with_its_type(make_client, tmp_path, photos):
    receiver = Receiver()
    client = make_client(tmp_path / "data", webhook_allow_private="127.0.0.1/32")
    service = client.app.state.service
    service.webhooks.stop()  # this test drives the delivery passes itself
    service.webhooks.create(receiver.url)
    _, event_id = _known(client, photos)
    service.events.record(NewEvent(time=datetime.now(timezone.utc), source="door-2", person_id=None, distance=0.8,
                                   threshold=0.4, box=[], quality={}))
    assert client.post(f"/api/v1/events/{event_id}/not-this-person").status_code == 200
    while service.webhooks.deliver_due():
        pass
    bodies = [json.loads(r["body"]) for r in receiver.accepted()]
    assert sorted((b["type"], b["event"]["source"]) for b in bodies) == \
        [("event.corrected", "door-1"), ("event.recorded", "door-1"), ("event.recorded", "door-2")]
    corrected = next(b for b in bodies if b["type"] == "event.corrected")
    assert corrected["event"]["id"] == event_id and corrected["event"]["corrected"]["kind"] == "not_this_person"
    assert len({r["headers"]["webhook-id"] for r in receiver.accepted()}) == 3  # each its own delivery
