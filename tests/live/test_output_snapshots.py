"""A correction's message says what the correction was when it was queued, not what the event says when it leaves:
a correction undone before its own message went out is still sent as a correction (who, when), then its undo."""

from __future__ import annotations

import json
from datetime import datetime

from app.live.mqtt import MqttEvents
from tests.api.test_watch import Receiver
from tests.live.mqtt_helpers import Subscriber
from tests.live.test_corrections import _known
from tests.live.test_mqtt import _prefixes


def _same(sent: dict | None, said: dict) -> bool:
    """A correction as an output carried it is the one the API answered (its time however each writes it)."""
    return sent is not None and {**sent, "at": datetime.fromisoformat(sent["at"])} == \
        {**said, "at": datetime.fromisoformat(said["at"])}


def test_a_correction_undone_before_it_was_sent_is_still_sent_as_it_was(database_url, make_client, tmp_path, photos,
                                                                       broker_port):
    prefix, _ = _prefixes()
    watcher = Subscriber(broker_port, [f"{prefix}/+/events/#"])
    watcher.wait(lambda _: watcher.subscribed, what="the subscription")
    receiver = Receiver()
    client = make_client(tmp_path / "data", database_url=database_url, webhook_allow_private="127.0.0.1/32",
                         mqtt_url=f"mqtt://127.0.0.1:{broker_port}", mqtt_topic_prefix=prefix,
                         mqtt_ha_discovery=False)
    service = client.app.state.service
    service.webhooks.stop()  # this test drives the delivery passes itself
    first = next(s for s in service.sinks if isinstance(s, MqttEvents))
    watcher.wait(lambda _: first.connected, what="the MQTT worker connected")
    first.stop()  # nothing is published until another worker starts: the queue waits in the database
    service.webhooks.create(receiver.url)

    _, event_id = _known(client, photos)
    said = client.post(f"/api/v1/events/{event_id}/not-this-person")
    assert said.status_code == 200
    correction = said.json()["corrected"]
    assert correction["kind"] == "not_this_person" and correction["by"]["kind"] and correction["at"]
    assert client.delete(f"/api/v1/events/{event_id}/not-this-person").status_code == 200  # before either was sent

    # webhooks: recorded, corrected, then undone, each as it was when queued
    while service.webhooks.deliver_due():
        pass
    bodies = {b["type"]: b["event"] for b in (json.loads(r["body"]) for r in receiver.accepted())}
    assert sorted(bodies) == ["event.corrected", "event.correction_undone", "event.recorded"]
    assert bodies["event.recorded"]["corrected"] is None  # the event as it is now: the correction was taken back
    assert _same(bodies["event.corrected"]["corrected"], correction)
    assert bodies["event.correction_undone"]["corrected"] is None

    # MQTT: the same, published by a worker started only now
    second = MqttEvents(service.settings, service.sessions)
    second.start()
    try:
        stream = f"{prefix}/default/events/door-1"
        watcher.wait(lambda ms: len([m for m in ms if m.topic == stream]) == 3, what="the event, its correction "
                     "and the undo")
    finally:
        second.stop()
    published = [m.json() for m in watcher.on(stream)]
    assert [m["event_type"] for m in published] == ["known", "corrected", "correction_undone"]
    assert {m["id"] for m in published} == {event_id}
    assert _same(published[1]["corrected"], correction) and published[1]["match"] is False
    assert published[0]["corrected"] is None and published[2]["corrected"] is None
    watcher.close()
