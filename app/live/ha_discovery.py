"""Home Assistant MQTT discovery: which entities faceshot announces, and what changes when people and cameras do.

Follows Home Assistant's MQTT discovery (one retained config per entity at
``<discovery prefix>/<component>/<node id>/<object id>/config``; an empty retained config removes it):

- a device per camera source (per collection) with an ``event`` entity "Face" (event types ``known`` and
  ``unknown``, the event's fields as its attributes), a ``binary_sensor`` "Unknown person" (on for an unknown
  face, off by itself after :data:`UNKNOWN_OFF_DELAY_S`) and a ``sensor`` "Last recognised" (who, with the
  calibrated decision fields as attributes);
- a device per collection with a ``sensor`` per enrolled person: where they were last seen (the camera), and when
  with the distance, threshold and stated stranger-accept rate as attributes.

Every entity is available while faceshot's availability topic says ``online`` (its MQTT last will says
``offline``). Pure functions and a small record of what was published: the MQTT sink (:mod:`app.live.mqtt`) owns
the connection. Not ha-mqtt-discoverable: it opens an MQTT connection per entity (hundreds at 5,000 people) and
has no notion of removing the entities of people who were deleted, which is most of the work here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

# an event is known or unknown when recorded; corrected or correction_undone when an admin later says so
EVENT_TYPES = ["known", "unknown", "corrected", "correction_undone"]
UNKNOWN_OFF_DELAY_S = 30  # the "unknown person" sensor turns off by itself this long after the last unknown face
ORIGIN = {"name": "faceshot"}


def topic_level(name: str) -> str:
    """A name as one MQTT topic level and Home Assistant object id: [A-Za-z0-9_-] only, and a short hash when
    anything had to change, so "door 1" and "door_1" stay two cameras."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "_"
    return safe if safe == name else f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Topics:
    """Where faceshot publishes under its prefix (FACESHOT_MQTT_TOPIC_PREFIX)."""

    prefix: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    def events(self, collection: str, camera: str) -> str:
        """Every event of one camera, not retained: subscribe to ``<prefix>/<collection>/events/#`` for all."""
        return f"{self.prefix}/{collection}/events/{topic_level(camera)}"

    def last_seen(self, collection: str, person_id: str) -> str:
        return f"{self.prefix}/{collection}/people/{person_id}/last_seen"

    def last_recognised(self, collection: str, camera: str) -> str:
        return f"{self.prefix}/{collection}/cameras/{topic_level(camera)}/last_recognised"

    def unknown(self, collection: str, camera: str) -> str:
        return f"{self.prefix}/{collection}/cameras/{topic_level(camera)}/unknown"

    @property
    def node_id(self) -> str:
        return topic_level(self.prefix.replace("/", "_"))


def configs(topics: Topics, ha_prefix: str, people: list[tuple[str, str, str]], cameras: list[tuple[str, str]],
            version: str) -> dict[str, str]:
    """Every discovery config faceshot wants retained now, by topic: ``people`` as (collection, id, name),
    ``cameras`` as (collection, source)."""
    node, avail = topics.node_id, topics.availability
    origin = {**ORIGIN, "sw_version": version}
    out: dict[str, dict] = {}

    def entity(component: str, object_id: str, body: dict) -> None:
        out[f"{ha_prefix}/{component}/{node}/{object_id}/config"] = {
            **body, "unique_id": f"{node}_{object_id}", "availability_topic": avail, "origin": origin}

    def gallery(collection: str) -> dict:
        return {"identifiers": [f"{node}_{collection}"], "name": f"faceshot {collection}", "manufacturer": "faceshot",
                "model": "face gallery", "sw_version": version}

    for collection, source in cameras:
        cam = topic_level(source)
        device = {"identifiers": [f"{node}_{collection}_camera_{cam}"], "name": source, "manufacturer": "faceshot",
                  "model": "camera source", "sw_version": version, "via_device": f"{node}_{collection}"}
        entity("event", f"{collection}_{cam}_face", {
            "name": "Face", "state_topic": topics.events(collection, source), "event_types": EVENT_TYPES,
            "icon": "mdi:face-recognition", "device": device})
        entity("binary_sensor", f"{collection}_{cam}_unknown", {
            "name": "Unknown person", "state_topic": topics.unknown(collection, source), "payload_on": "ON",
            "payload_off": "OFF", "off_delay": UNKNOWN_OFF_DELAY_S, "device_class": "occupancy", "device": device})
        entity("sensor", f"{collection}_{cam}_last_recognised", {
            "name": "Last recognised", "state_topic": topics.last_recognised(collection, source),
            "value_template": "{{ value_json.person.name }}",
            "json_attributes_topic": topics.last_recognised(collection, source), "icon": "mdi:account-check",
            "device": device})
    for collection, person_id, name in people:
        entity("sensor", f"{collection}_person_{person_id}", {
            "name": f"{name} last seen", "state_topic": topics.last_seen(collection, person_id),
            "value_template": "{{ value_json.camera }}",
            "json_attributes_topic": topics.last_seen(collection, person_id), "icon": "mdi:account-eye",
            "device": gallery(collection)})
    return {topic: json.dumps(body, sort_keys=True) for topic, body in out.items()}


def retained_state(config: str) -> str | None:
    """The retained state topic an entity's config names (its sensor's last-seen or last-recognised), to clear with
    it: a deleted person's last sighting is not left on the broker."""
    try:
        body = json.loads(config)
    except ValueError:
        return None
    topic = body.get("state_topic") if isinstance(body, dict) else None
    retained = isinstance(topic, str) and (topic.endswith("/last_seen") or topic.endswith("/last_recognised"))
    return topic if retained else None


@dataclass
class Announced:
    """What faceshot has retained on the broker: configs it published, and its own configs found there (left by an
    earlier run, for people deleted since)."""

    configs: dict[str, str] = field(default_factory=dict)

    def seen(self, topic: str, payload: str) -> None:
        """A retained config of this node on the broker (an empty one: removed)."""
        if payload:
            self.configs[topic] = payload
        else:
            self.configs.pop(topic, None)

    def changes(self, wanted: dict[str, str], *, everything: bool = False) -> list[tuple[str, str]]:
        """(topic, payload) to publish retained so the broker holds ``wanted``: new or changed configs (all of them
        with ``everything``: Home Assistant restarted), and empty payloads for the configs no longer wanted and
        their retained states."""
        out = [(t, p) for t, p in wanted.items() if everything or self.configs.get(t) != p]
        for topic, payload in list(self.configs.items()):
            if topic not in wanted:
                if (state := retained_state(payload)) is not None:
                    out.append((state, ""))
                out.append((topic, ""))
        return out

    def published(self, changes: list[tuple[str, str]]) -> None:
        for topic, payload in changes:
            if topic.endswith("/config"):
                self.seen(topic, payload)
