"""``faceshot watch --frigate URL``: names the people Frigate (an NVR) sees, as sub labels of its own events.

Frigate already follows each person across frames and keeps their best snapshot; it tells of each tracked object
on MQTT (``<prefix>/events``: ``new``, an ``update`` whenever it finds a better snapshot or a zone changes,
``end``). So the bridge reads no stream: for each ``person`` event it fetches that snapshot, cropped to the
person, from Frigate's HTTP API (``GET /api/events/{id}/snapshot.jpg?crop=1``), finds the faces with the same
recognizer as ``faceshot watch`` (in-process, or a faceshot server's with ``--server``: no torch here then), and
keeps the best face of the event so far (:func:`app.live.tracking.quality_score`). A Frigate event gets one
decision, made on that face, and re-made only when a better face arrives: a known person is written back to
Frigate at once as the event's sub label (``POST /api/events/{id}/sub_label``), changed when a better face names
someone else, and cleared when a better face names nobody we know; unknown people stay unlabelled.

One faceshot event is recorded per Frigate event, at its ``end``: events are immutable rows, so the row holds the
final decision rather than a first guess from a poor snapshot that the sub label then contradicts, the same rule
as a ``watch`` track, which is recorded when it closes. Frigate's sub label is the immediate output; an event
whose ``end`` never comes (an MQTT message lost, Frigate restarted) is recorded when it has been quiet for
``idle_s``, and the live ones when the bridge stops.

Frigate being slow or down never holds up the others: the MQTT callback only files the message in the event's
mailbox (a burst of updates becomes one fetch of the newest snapshot), a small pool of workers does the HTTP and
the recognition, one event at a time per worker, every request has a deadline, and memory stays bounded (at most
``max_events`` live events, finished ones remembered by id only, for a while). Written against Frigate 0.14-0.18's
API and MQTT documentation (frigate/api/event.py, frigate/api/media.py, docs/docs/integrations/mqtt.md).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from app.client import FaceshotAPIError
from app.core.broker import Broker, check_topic_prefix
from app.core.errors import NotFound, ServiceUnavailable, Unauthorized, ValidationFailed
from app.live.events import NewEvent
from app.live.tracking import Observation
from app.live.watch import Decision, jpeg
from models.errors import FaceshotError
from models.imageio import load_image

log = logging.getLogger(__name__)

# Frigate's ids are "<start time>-<random>" (1607123955.475377-mxklsc); anything else from the broker is refused
# before it reaches a URL path (a "../" id would have made the bridge POST elsewhere in Frigate's API)
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SUB_LABEL_MAX = 100  # EventsSubLabelBody.subLabel's max_length
SNAPSHOT_MAX_BYTES = 16 * 1024 * 1024
SNAPSHOT_MAX_PIXELS = 40_000_000
# the crop around the person (so a second person in the frame is not the one named), without Frigate's drawings
SNAPSHOT_PARAMS = {"crop": 1, "bbox": 0, "timestamp": 0, "quality": 95}
_NEVER = object()
# what one event's work may meet and the bridge survives (logged, the event goes on): Frigate's or a faceshot server's
# refusals, a body that is no image, a network that fails
SKIPPED = (FaceshotError, FaceshotAPIError, httpx.HTTPError, OSError)


def check_frigate_url(url: str):
    """The URL's parts and port (None: the scheme's), or :class:`ValidationFailed` saying what a Frigate URL is."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or (port is not None and port < 1):
        raise ValidationFailed(f"--frigate must be Frigate's URL, http://frigate:5000 or "
                               f"https://user:password@frigate:8971, not {_without_password(url)!r}")
    return parts, port


class Frigate:
    """Frigate's HTTP API: an event's snapshot, its sub label.

    ``url``: the internal port (``http://frigate:5000``, no login) or the authenticated one with a user allowed to
    set sub labels (an admin: ``https://user:password@frigate:8971``); the user logs in (``POST /api/login``) and
    the JWT goes along as a bearer token, renewed on a 401. Each call ends within ``deadline_s``.
    """

    def __init__(self, url: str, *, connect_s: float = 3.0, deadline_s: float = 10.0, transport=None):
        parts, port = check_frigate_url(url)
        self.user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        self.url = urlunsplit((parts.scheme, netloc + (f":{port}" if port else ""),
                               parts.path.rstrip("/"), "", ""))
        self.deadline_s = deadline_s
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(deadline_s, connect=connect_s),
                                  follow_redirects=False, transport=transport)
        self._login_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def check(self) -> str | None:
        """Log in (wrong credentials: :class:`Unauthorized`) and ask Frigate's version; None when Frigate is not
        reachable now (the bridge starts anyway: each event's calls are tried as it comes)."""
        try:
            if self.user:
                self._login()
            answer = self._send("GET", "/api/version")
        except ServiceUnavailable as exc:
            log.warning("%s; starting anyway", exc.message)
            return None
        return answer.text.strip()[:40] if answer.status == 200 else None

    def snapshot(self, event_id: str) -> bytes:
        """The event's best snapshot as Frigate has it now, cropped to the person (JPEG bytes)."""
        answer = self._send("GET", f"/api/events/{quote(event_id, safe='')}/snapshot.jpg", params=SNAPSHOT_PARAMS,
                            max_bytes=SNAPSHOT_MAX_BYTES)
        if answer.status == 404:
            raise NotFound(f"Frigate has no snapshot of event {event_id} ({answer.message})")
        answer.raise_for("a snapshot")
        return answer.body

    def set_sub_label(self, event_id: str, name: str, score: float | None) -> None:
        """``name`` as the event's sub label; "" clears it (Frigate's own rule)."""
        body: dict = {"subLabel": name[:SUB_LABEL_MAX]}
        if name and score is not None:
            body["subLabelScore"] = score
        answer = self._send("POST", f"/api/events/{quote(event_id, safe='')}/sub_label", json=body)
        if answer.status == 404:
            raise NotFound(f"Frigate has no event {event_id} ({answer.message})")
        answer.raise_for("the sub label")

    def _login(self) -> None:
        with self._login_lock:
            try:
                answer = self._http.post("/api/login", json={"user": self.user, "password": self._password})
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"cannot reach Frigate at {self.url} to log in: {exc}") from None
            if answer.status_code == 404:  # "Authentication is disabled": nothing to send
                log.info("Frigate at %s has authentication off; no login needed", self.url)
                return
            token = next((c.value for c in answer.cookies.jar if c.name == "frigate_token"),
                         next((c.value for c in answer.cookies.jar), None))
            if answer.status_code != 200 or not token:
                raise Unauthorized(f"Frigate at {self.url} refused the login of {self.user!r} ({answer.status_code}: "
                                   f"{_Answer(answer.status_code, answer.content).message})")
            self._http.headers["Authorization"] = f"Bearer {token}"
            self._http.cookies.clear()  # the bearer token alone, whatever the cookie's attributes

    def _send(self, method: str, path: str, *, max_bytes: int = 1024 * 1024, **kwargs) -> _Answer:
        answer = self._once(method, path, max_bytes, **kwargs)
        if answer.status == 401 and self.user:  # no token yet, or it expired (Frigate's session_length): log in
            self._login()
            answer = self._once(method, path, max_bytes, **kwargs)
        return answer

    def _once(self, method: str, path: str, max_bytes: int, **kwargs) -> _Answer:
        """One request, its body read within ``deadline_s`` altogether (a server dripping bytes is cut off too)."""
        deadline = time.monotonic() + self.deadline_s
        try:
            with self._http.stream(method, path, **kwargs) as answer:
                body = bytearray()
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise ServiceUnavailable(f"Frigate's answer to {method} {path} is over {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ServiceUnavailable(f"Frigate took over {self.deadline_s:.0f} s to answer {method} {path}")
                return _Answer(answer.status_code, bytes(body))
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"Frigate at {self.url} did not answer {method} {path}: "
                                     f"{type(exc).__name__} {exc}".rstrip()) from None


@dataclass
class _Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def message(self) -> str:
        """Frigate's {"success": false, "message": ...}, or the start of whatever came."""
        try:
            return str(json.loads(self.body).get("message", ""))[:200]
        except (ValueError, AttributeError):
            return self.text[:200]

    def raise_for(self, what: str) -> None:
        if self.status in (401, 403):
            raise Unauthorized(f"Frigate refused {what} ({self.status}): the user needs Frigate's admin role")
        if self.status != 200:
            raise ServiceUnavailable(f"Frigate answered {self.status} for {what}: {self.message}")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


@dataclass
class FrigateMessage:
    """What the bridge reads of one ``<prefix>/events`` message (its ``after``)."""

    type: str  # new, update, end
    id: str
    camera: str
    start: float | None
    end: float | None
    snapshot: float | None  # the frame time of Frigate's best snapshot (0.16+: snapshot.frame_time; snapshot_time)


def parse_message(payload: bytes) -> FrigateMessage | None:
    """A person event's message, or None (logged) for anything else: not JSON, another label, a malformed field."""
    try:
        message = json.loads(payload)
        after = message["after"]
        kind, label = message["type"], after["label"]
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("Frigate message skipped: not an event (%s: %s): %.200r", type(exc).__name__, exc, payload)
        return None
    if label != "person":
        log.debug("Frigate %s event skipped: label %r", kind, label)
        return None
    event_id, camera = after.get("id"), after.get("camera")
    if kind not in ("new", "update", "end") or not isinstance(event_id, str) or not EVENT_ID.match(event_id) \
            or not isinstance(camera, str) or not camera:
        log.warning("Frigate message skipped: type %.20r, id %.120r, camera %.120r", kind, event_id, camera)
        return None
    shot = after.get("snapshot")
    snapshot = _number(shot.get("frame_time") if isinstance(shot, dict) else after.get("snapshot_time"))
    return FrigateMessage(kind, event_id, camera, _number(after.get("start_time")), _number(after.get("end_time")),
                          snapshot)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else None


@dataclass
class _Event:
    """One Frigate event as the bridge follows it. The first block is written under the bridge's lock by the MQTT
    thread; the second only by the worker that holds the event (``busy``)."""

    id: str
    camera: str
    start: float | None = None
    end: float | None = None
    snapshot: object = None  # Frigate's newest snapshot (its frame time; a count of messages when none is given)
    looked_at: object = _NEVER  # the snapshot last fetched
    messages: int = 0
    woken: bool = False  # a message came since the worker last looked
    ended: bool = False
    busy: bool = False
    touched: float = 0.0  # time.monotonic() of its last message

    best: Observation | None = None
    decision: Decision | None = None
    labelled: str | None = None  # the sub label Frigate has from us
    faces: int = 0  # snapshots with a face


class FrigateBridge:
    """Frigate's person events in, sub labels out to Frigate, one recognition event each to ``recognizer.record``.

    ``recognizer``: :class:`app.live.watch.RemoteRecognizer` or :class:`app.live.watch_local.LocalRecognizer`;
    ``handle`` is called with each MQTT payload and returns at once.
    """

    def __init__(self, frigate: Frigate, recognizer, *, workers: int = 4, max_events: int = 500,
                 idle_s: float = 600.0, remember: int = 4096, on_event: Callable[[dict], None] = lambda e: None,
                 on_label: Callable[[str, str, str | None], None] = lambda event_id, camera, name: None):
        self.frigate, self.recognizer = frigate, recognizer
        self.max_events, self.idle_s, self.remember = max_events, idle_s, remember
        self.on_event, self.on_label = on_event, on_label
        self.recorded = 0
        self._live: OrderedDict[str, _Event] = OrderedDict()  # least recently heard of first
        self._finished: OrderedDict[str, None] = OrderedDict()  # ids recorded or dropped: late messages are ignored
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frigate")
        self._closing = False

    # -- the MQTT thread: file the message, never wait ------------------------------------------
    def handle(self, payload: bytes) -> None:
        message = parse_message(payload)
        if message is None:
            return
        with self._lock:
            if self._closing or message.id in self._finished:
                return
            event = self._live.get(message.id)
            if event is None:
                if len(self._live) >= 2 * self.max_events:  # ended ones waiting for workers a stalled Frigate holds
                    log.warning("Frigate event %s on %s skipped: %d events in hand", message.id, message.camera,
                                len(self._live))
                    return
                event = self._live[message.id] = _Event(message.id, message.camera)
            self._live.move_to_end(message.id)
            event.messages += 1
            event.touched, event.woken = time.monotonic(), True
            event.start = event.start if message.start is None else message.start
            event.end = event.end if message.end is None else message.end
            if message.snapshot is not None:
                event.snapshot = message.snapshot
            elif message.type != "end" or event.looked_at is _NEVER:  # no frame time given: every message may bring one
                event.snapshot = event.messages
            event.ended = event.ended or message.type == "end"
            self._schedule(event)
            excess = len(self._live) - self.max_events
            for other in list(self._live.values()):  # those heard of longest ago are recorded now
                if excess <= 0:
                    break
                if not other.ended:
                    self._end(other)
                    excess -= 1

    def live(self) -> list[str]:
        """The ids of the events in hand (not yet recorded), least recently heard of first."""
        with self._lock:
            return list(self._live)

    def expire(self) -> None:
        """Record the events quiet for ``idle_s`` (their ``end`` was lost, or they are standing still)."""
        now = time.monotonic()
        with self._lock:
            for event in list(self._live.values()):
                if now - event.touched < self.idle_s:
                    break
                if not event.ended:
                    self._end(event)

    def close(self, *, record_live: bool = True) -> None:
        """Stop taking messages; the live events are recorded (``record_live``) with what was decided so far."""
        with self._lock:
            self._closing = True
            for event in list(self._live.values()):
                if record_live and not event.ended:
                    self._end(event)
        self._pool.shutdown(wait=True)

    def _end(self, event: _Event) -> None:  # under the lock
        event.ended, event.woken = True, True
        self._schedule(event)

    def _schedule(self, event: _Event) -> None:  # under the lock
        if not event.busy:
            event.busy = True
            self._pool.submit(self._work, event)

    # -- a worker: one event at a time ----------------------------------------------------------
    def _work(self, event: _Event) -> None:
        try:
            while True:
                with self._lock:
                    fetch = event.snapshot != event.looked_at
                    ended = event.ended
                    if not (fetch or ended or event.woken):
                        event.busy = False
                        return
                    event.woken, event.looked_at = False, event.snapshot
                if fetch:
                    self._look(event)
                self._label(event)
                if ended:
                    self._record(event)
                    self._forget(event)
                    return
        except Exception:  # a bug must not leave the event stuck as busy, nor kill the pool's thread quietly
            log.exception("Frigate event %s: the bridge failed; the event is dropped", event.id)
            self._forget(event)

    def _forget(self, event: _Event) -> None:
        with self._lock:
            self._live.pop(event.id, None)
            self._finished[event.id] = None
            while len(self._finished) > self.remember:
                self._finished.popitem(last=False)
            event.busy = False

    def _look(self, event: _Event) -> None:
        """Fetch the snapshot; its best face, if better than the event's best so far, is decided on."""
        try:
            image = load_image(self.frigate.snapshot(event.id), max_bytes=SNAPSHOT_MAX_BYTES,
                               max_pixels=SNAPSHOT_MAX_PIXELS)
        except SKIPPED as exc:  # Frigate's 404 or silence, a body that is no image
            log.warning("Frigate event %s on %s: snapshot skipped: %s", event.id, event.camera, _text(exc))
            return
        try:
            faces = self.recognizer.observe(image, event.snapshot if isinstance(event.snapshot, float) else 0.0)
        except SKIPPED as exc:  # a faceshot server's refusal or absence
            log.warning("Frigate event %s on %s: snapshot not recognised: %s", event.id, event.camera, _text(exc))
            return
        if not faces:
            log.debug("Frigate event %s on %s: no face in this snapshot", event.id, event.camera)
            return
        event.faces += 1
        face = max(faces, key=lambda f: f.quality)
        if event.best is not None and face.quality <= event.best.quality:
            return
        try:
            decision = self.recognizer.decide(face.embedding)
        except SKIPPED as exc:
            log.warning("Frigate event %s on %s: not decided: %s", event.id, event.camera, _text(exc))
            return
        event.best, event.decision = face, decision

    def _label(self, event: _Event) -> None:
        """Frigate's sub label follows the decision: a known person's name, or none."""
        decision = event.decision
        name = decision.name if decision is not None and decision.person_id is not None else None
        if name == event.labelled:
            return
        try:
            self.frigate.set_sub_label(event.id, name or "", _score(decision) if name else None)
        except SKIPPED as exc:  # tried again with the event's next message
            log.warning("Frigate event %s on %s: sub label not set: %s", event.id, event.camera, _text(exc))
            return
        event.labelled = name
        self.on_label(event.id, event.camera, name)

    def _record(self, event: _Event) -> None:
        best, decision = event.best, event.decision
        if best is None or decision is None:
            log.info("Frigate event %s on %s: no face seen, nothing recorded", event.id, event.camera)
            return
        start = event.start if event.start is not None else time.time()
        try:
            when = datetime.fromtimestamp(start, timezone.utc)
        except (OverflowError, OSError, ValueError):  # no time a clock gives: when it is recorded, then
            start, when = time.time(), datetime.now(timezone.utc)
        crop = best.crop if best.crop is not None and self.recognizer.keeps_crops else None
        new = NewEvent(time=when, source=event.camera,
                       person_id=decision.person_id, distance=decision.distance, threshold=decision.threshold,
                       box=[round(float(v), 1) for v in best.box],
                       quality={"score": round(best.quality, 3), **{k: v for k, v in best.details.items()
                                                                    if isinstance(v, (int, float, bool))}},
                       frames=event.faces,
                       duration_s=round(max(0.0, event.end - start), 2) if event.end is not None else 0.0,
                       face_crop=jpeg(crop) if crop is not None else None)
        try:
            stored = self.recognizer.record(new)
        except SKIPPED as exc:
            log.warning("Frigate event %s on %s: not recorded: %s", event.id, event.camera, _text(exc))
            return
        with self._lock:
            self.recorded += 1
        self.on_event(stored)


def _text(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc or type(exc).__name__)


def _score(decision: Decision) -> float | None:
    """Frigate's subLabelScore (0 < score <= 1): the cosine similarity of the face to the person, 1 - d²/2."""
    if decision.distance is None:
        return None
    return round(min(1.0, max(0.01, 1.0 - decision.distance ** 2 / 2)), 3)


# -- MQTT ---------------------------------------------------------------------------------------
def check_mqtt_url(url: str) -> Broker:
    """The broker ``--mqtt`` names, or :class:`ValidationFailed` saying what a broker URL is."""
    try:
        return Broker.parse(url)
    except ValueError as exc:
        raise ValidationFailed(f"--mqtt: {exc}, not {_without_password(url)!r}") from None


def events_topic(topic_prefix: str) -> str:
    """``<prefix>/events``, for Frigate's mqtt.topic_prefix; a prefix with wildcards: :class:`ValidationFailed`."""
    try:
        return f"{check_topic_prefix(topic_prefix.strip().strip('/'))}/events"
    except ValueError as exc:
        raise ValidationFailed(f"--frigate-topic-prefix is Frigate's mqtt.topic_prefix (frigate): {exc}, not "
                               f"{topic_prefix!r}") from None


def mqtt_client(url: str, topic: str, on_payload: Callable[[bytes], None], *, connect_s: float = 10.0):
    """A paho client on ``url`` (mqtt://user:password@host:1883, mqtts:// for TLS), subscribed to ``topic`` when it
    returns (or :class:`ServiceUnavailable`), its network loop running; it reconnects and resubscribes by itself."""
    import paho.mqtt.client as mqtt

    broker = check_mqtt_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"faceshot-frigate-{uuid.uuid4().hex[:12]}")
    broker.configure(client)
    client.reconnect_delay_set(1, 30)
    subscribed, refused = threading.Event(), []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(f"the connection: {reason_code}")
            log.warning("MQTT broker %s refused the connection: %s", broker.host, reason_code)
            subscribed.set()
        else:
            client.subscribe(topic, qos=1)  # here, so that a reconnection subscribes again

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            refused.append(f"the subscription to {topic}: {failed[0]}")
            log.warning("MQTT broker %s refused the subscription to %s: %s", broker.host, topic, failed[0])
        else:
            log.info("reading %s on %s", topic, broker.host)
        subscribed.set()

    def on_message(client, userdata, message):
        try:
            on_payload(message.payload)
        except Exception:  # the network thread must survive whatever one message does
            log.exception("Frigate message on %s not handled", message.topic)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    where = f"{broker.host}:{broker.port}"
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise ServiceUnavailable(f"cannot reach the MQTT broker {where}: {exc}") from None
    client.loop_start()
    if not subscribed.wait(connect_s) or refused:
        client.disconnect()
        client.loop_stop()
        raise ServiceUnavailable(f"the MQTT broker {where} " + (f"refused {refused[0]}" if refused
                                                                 else f"did not answer within {connect_s:.0f} s"))
    return client


def watch_frigate(frigate_url: str, recognizer, *, mqtt_url: str, topic_prefix: str = "frigate",
                  on_event: Callable[[dict], None] = lambda e: None, stop: threading.Event | None = None,
                  bridge_options: dict | None = None) -> int:
    """Run the bridge until ``stop`` or Ctrl-C; returns how many events were recorded. The events still live then
    are recorded with what was decided of them."""
    topic = events_topic(topic_prefix)
    stop = stop or threading.Event()
    frigate = Frigate(frigate_url)

    def on_label(event_id: str, camera: str, name: str | None) -> None:
        log.info("Frigate event %s on %s: sub label %s", event_id, camera, repr(name) if name else "cleared")

    bridge = FrigateBridge(frigate, recognizer, on_event=on_event, on_label=on_label, **(bridge_options or {}))
    client = None
    try:
        version = frigate.check()
        log.info("Frigate %s at %s", version or "(version not known yet)", frigate.url)
        client = mqtt_client(mqtt_url, topic, bridge.handle)
        while not stop.wait(min(10.0, bridge.idle_s)):
            bridge.expire()
    except KeyboardInterrupt:  # how the bridge is ended
        log.info("stopping: the events in hand are recorded first")
    finally:
        if client is not None:
            client.disconnect()
            client.loop_stop()
        bridge.close()
        frigate.close()
    return bridge.recorded
