"""The MQTT event sink: every recognition event published to the broker of FACESHOT_MQTT_URL, none lost when it is down.

An event is queued in its own transaction (a row of ``mqtt_messages``, :class:`app.live.sinks.EventSink`), so a
crash or a broker outage loses nothing; one worker at a time (the holder of the ``mqtt`` lease,
:mod:`app.core.leases`) keeps the connection and publishes the queue in order (so in order per camera), QoS 1, and
deletes each row once the broker acknowledged it. paho-mqtt keeps an unacknowledged message and sends it again
after a reconnect (backoff 1 s to 30 s), so a message is published once by this process; a process killed between
the broker's acknowledgement and the delete sends it again (QoS 1 is at least once: deduplicate on the event id).

Topics, under FACESHOT_MQTT_TOPIC_PREFIX (default ``faceshot``; :class:`app.live.ha_discovery.Topics`):

- ``<prefix>/availability``: ``online`` (retained) while connected; the last will says ``offline``;
- ``<prefix>/<collection>/events/<camera>``: every event, JSON, not retained;
- ``<prefix>/<collection>/people/<person id>/last_seen``: retained, a known person's latest sighting;
- ``<prefix>/<collection>/cameras/<camera>/last_recognised``: retained, the camera's latest known person;
- ``<prefix>/<collection>/cameras/<camera>/unknown``: ``ON`` for each unknown face (Home Assistant's sensor).

Each payload carries the calibrated decision: ``distance``, ``threshold``, ``match`` and ``stranger_accept_rate``
(the share of strangers' faces the collection's thresholds name as someone, at its size, when the event was
recorded), so an automation can require, say, a rate of at most 1% before it opens a door. With
FACESHOT_MQTT_HA_DISCOVERY (default on), Home Assistant's discovery configs follow the people and cameras
(:mod:`app.live.ha_discovery`), re-published when Home Assistant's status topic says ``online``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from importlib.metadata import PackageNotFoundError, version

import paho.mqtt.client as mqtt
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.broker import Broker
from app.core.config import Settings
from app.core.leases import Lease
from app.core.tables import MqttMessage, Person, RecognitionEvent
from app.live import ha_discovery
from app.live.events import queued_correction, sent_event_dict
from app.live.sinks import RECORDED

log = logging.getLogger(__name__)
BATCH = 100  # messages in flight at once (paho's inflight window is 20; the rest wait in its queue, in order)
LEASE_S = 30.0  # the publishing worker renews every LEASE_S / 3; another takes over once it lapses
RECONCILE_S = 5.0  # how often the discovery configs are compared with the people and cameras in the database
KEEPALIVE_S = 30
STOP_WAIT_S = 5.0  # a stopping worker waits this long for the broker to acknowledge what it sent


def _version() -> str:
    try:
        return version("faceshot")
    except PackageNotFoundError:
        return "unknown"


def messages(topics: ha_discovery.Topics, event: dict, kind: str = RECORDED) -> list[tuple[str, str, bool]]:
    """(topic, payload, retained) for one event, as :func:`app.live.events.sent_event_dict` shows it. A correction
    (``kind`` corrected or correction_undone) goes on the event stream only, as its own event type and never a
    match, so an automation that acted on the first message can take it back and none acts twice."""
    collection, camera, person = event["collection"], event["source"], event["person"]
    decision = {"distance": event["distance"], "threshold": event["threshold"],
                "match": person is not None and kind == RECORDED, "stranger_accept_rate": event["stranger_accept_rate"]}
    event_type = kind if kind != RECORDED else "known" if person is not None else "unknown"
    stream = {"event_type": event_type, **event, "camera": camera, **decision}
    out = [(topics.events(collection, camera), json.dumps(stream), False)]
    if kind != RECORDED:
        return out
    if person is None:
        out.append((topics.unknown(collection, camera), "ON", False))
        return out
    sighting = json.dumps({"person": person, "camera": camera, "event_id": event["id"], "time": event["time"],
                           **decision})
    if person.get("id"):  # a person deleted since the event has no topic of their own any more
        out.append((topics.last_seen(collection, person["id"]), sighting, True))
    out.append((topics.last_recognised(collection, camera), sighting, True))
    return out


class MqttEvents:
    """The MQTT event sink of one worker; it publishes only while it holds the ``mqtt`` lease."""

    def __init__(self, settings: Settings, sessions: sessionmaker):
        self.settings, self.sessions = settings, sessions
        self.broker = Broker.parse(settings.mqtt_url.get_secret_value())
        self.topics = ha_discovery.Topics(settings.mqtt_topic_prefix)
        self.discovery = settings.mqtt_ha_discovery
        holder = f"{os.uname().nodename[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lease = Lease(sessions, "mqtt", holder, LEASE_S)
        self.client_id = f"{self.topics.node_id}-{holder}"[:64]
        self.version = _version()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()  # what paho's thread hands over: configs seen, Home Assistant back online
        self._announced = ha_discovery.Announced()
        self._wanted: dict[str, str] = {}  # the configs last computed
        self._inputs: tuple = ()  # the people and cameras they were computed from
        self._foreign = False  # a config on the broker that is not one of those (left by an earlier run)
        self._republish = False  # every config again: Home Assistant came online, or this connection is new
        self._reconcile_due = 0.0

    # -- the event sink ------------------------------------------------------------------------
    def queue(self, session: Session, event: RecognitionEvent, kind: str = RECORDED) -> None:
        session.add(MqttMessage(event_id=event.id, kind=kind,
                                correction=queued_correction(event, kind)))

    def forget(self, session: Session, events: Select, collection: str | None = None) -> None:
        session.execute(delete(MqttMessage).where(MqttMessage.event_id.in_(events)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="mqtt", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- the connection ------------------------------------------------------------------------
    def _connect(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        self.broker.configure(client)
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = lambda *_: self._wake.set()
        client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        client.loop_start()  # its thread connects, reconnects with backoff, and resends what was not acknowledged
        return client

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%s refused the connection: %s", self.broker.host, self.broker.port, reason)
            return
        log.info("MQTT connected to %s:%s", self.broker.host, self.broker.port)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self.discovery:
            ha = self.settings.mqtt_ha_prefix
            client.subscribe([(f"{ha}/status", 1), (f"{ha}/+/{self.topics.node_id}/+/config", 1)])
        with self._lock:  # a broker restarted without persistence lost every retained config: all of them again
            self._reconcile_due, self._republish = 0.0, True
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason, _properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT connection to %s:%s lost (%s); reconnecting", self.broker.host, self.broker.port,
                        reason)

    def _on_message(self, _client, _userdata, message) -> None:
        payload = message.payload.decode("utf-8", "replace")
        with self._lock:
            if message.topic == f"{self.settings.mqtt_ha_prefix}/status":
                self._republish = self._republish or payload == "online"
            elif message.topic.endswith("/config"):
                self._announced.seen(message.topic, payload)
                if self._wanted.get(message.topic) != payload:  # not our own echo: one that may be stale, look now
                    self._reconcile_due, self._foreign = 0.0, True
        self._wake.set()

    # -- the worker's thread -------------------------------------------------------------------
    def _serve(self) -> None:
        renewed, flying = 0.0, []
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - renewed > LEASE_S / 3:
                    if not self.lease.acquire():
                        self._disconnect()
                        flying = []
                        self._stop.wait(LEASE_S / 3)
                        continue
                    renewed = now
                if self._client is None:
                    self._client = self._connect()
                if self.connected:
                    if self.discovery:
                        self._announce()
                    flying = self._publish(flying)
            except Exception:  # the database away for a moment: try again at the next pass
                log.warning("MQTT publishing pass failed", exc_info=True)
                renewed = 0.0
            self._wake.wait(1.0)
            self._wake.clear()
        self._finish(flying)
        self._disconnect(release=True)

    def _finish(self, flying: list) -> None:
        """Stopping: send what is queued and wait a moment for the broker's acknowledgements (a `faceshot watch` of a
        file ends right after its last event), so the next holder need not send it again; what the broker has not
        acknowledged by then stays queued for the next holder."""
        if self._client is None:  # another worker holds the lease
            return
        deadline = time.monotonic() + STOP_WAIT_S
        try:
            while time.monotonic() < deadline:
                if self.connected:
                    flying = self._publish(flying)
                    if not flying:
                        return
                self._wake.wait(0.2)
                self._wake.clear()
            self._settle(flying)
        except Exception:  # the database away: those rows are sent again (QoS 1 is at least once)
            log.warning("MQTT: could not send or record the last messages", exc_info=True)

    def _publish(self, flying: list) -> list:
        """Delete what the broker acknowledged; once all of it was, send the next batch. Returns what is in flight:
        (queue row id, its messages' infos) pairs."""
        flying = self._settle(flying)
        if flying:
            return flying  # paho sends them again after a reconnect: never published twice from here
        with self.sessions() as session:
            rows = session.execute(select(MqttMessage.id, MqttMessage.kind, MqttMessage.correction, RecognitionEvent)
                                   .join(RecognitionEvent, RecognitionEvent.id == MqttMessage.event_id)
                                   .order_by(MqttMessage.id).limit(BATCH)).all()
            batch = [(row_id, kind, sent_event_dict(event, kind, correction))
                     for row_id, kind, correction, event in rows]
        return [(row_id, [self._client.publish(topic, payload, qos=1, retain=retain)
                          for topic, payload, retain in messages(self.topics, event, kind)])
                for row_id, kind, event in batch]

    def _settle(self, flying: list) -> list:
        """Delete the queue rows whose messages the broker acknowledged; the rest stay in flight."""
        done = [row_id for row_id, infos in flying if all(info.is_published() for info in infos)]
        if done:
            with self.sessions.begin() as session:
                session.execute(delete(MqttMessage).where(MqttMessage.id.in_(done)))
        return [(row_id, infos) for row_id, infos in flying if row_id not in set(done)]

    def _announce(self) -> None:
        """Publish what changed in the discovery configs (all of them when Home Assistant came back online)."""
        with self._lock:
            due = time.monotonic() >= self._reconcile_due
            everything, self._republish = self._republish, False
            if not (due or everything):
                return
            self._reconcile_due = time.monotonic() + RECONCILE_S
        with self.sessions() as session:
            people = [tuple(r) for r in session.execute(select(Person.collection, Person.id, Person.name)
                                                         .order_by(Person.id))]
            cameras = [tuple(r) for r in session.execute(
                select(RecognitionEvent.collection, RecognitionEvent.source).distinct()
                .order_by(RecognitionEvent.collection, RecognitionEvent.source))]
        with self._lock:
            if (people, cameras) == self._inputs and not (everything or self._foreign):
                return  # nothing changed: 5,000 people's configs are not rebuilt every few seconds
            self._foreign = False
        wanted = ha_discovery.configs(self.topics, self.settings.mqtt_ha_prefix, people, cameras, self.version)
        with self._lock:
            self._wanted, self._inputs = wanted, (people, cameras)
            changes = self._announced.changes(wanted, everything=everything)
            self._announced.published(changes)
        for topic, payload in changes:
            self._client.publish(topic, payload, qos=1, retain=True)
        if changes:
            log.info("Home Assistant discovery: %d config(s) published or removed", len(changes))

    def _disconnect(self, release: bool = False) -> None:
        client, self._client = self._client, None
        if client is not None:
            if self.connected:
                client.publish(self.topics.availability, "offline", qos=1, retain=True).wait_for_publish(2)
            client.disconnect()
            client.loop_stop()
            self._connected.clear()
        if release:
            try:
                self.lease.release()
            except Exception:  # the database is away: the lease lapses by itself
                log.warning("could not release the MQTT lease", exc_info=True)
