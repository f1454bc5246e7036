"""The Frigate bridge (`faceshot watch --frigate`): Frigate's person events in over a real Mosquitto broker, their
snapshots from an HTTP server that answers as Frigate's API does, sub labels back to it, one faceshot event each.

The Frigate here serves what frigate/api/media.py and frigate/api/event.py define (0.14-0.18): a JPEG from
``GET /api/events/{id}/snapshot.jpg``, ``{"success": false, "message": ...}`` with 404 for an id it does not have,
and ``POST /api/events/{id}/sub_label`` with an EventsSubLabelBody (subLabel <= 100 characters, subLabelScore in
(0, 1]); the messages are docs/docs/integrations/mqtt.md's ``frigate/events``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from PIL import Image

from app.core.errors import Unauthorized
from app.live.frigate import Frigate, FrigateBridge, mqtt_client, parse_message
from app.live.watch_local import LocalRecognizer
from app.testing.server import FACESHOT, ROOT, Server
from tests.api.conftest import upload

WAIT_S = 30.0
STARTED = time.time() - 60  # when the test's Frigate events began


# -- a real broker --------------------------------------------------------------------------------
def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """mqtt://127.0.0.1:1883 when a broker listens there; else a Mosquitto of this module's own."""
    if _listening(1883):
        yield "mqtt://127.0.0.1:1883"
        return
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        pytest.skip("no MQTT broker on 127.0.0.1:1883 and no mosquitto binary (apt-get install mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: _listening(port), "mosquitto listening", 10)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _until(predicate, what: str, timeout: float = WAIT_S):
    """Poll ``predicate`` until it is true (returned), or fail after ``timeout``: outcomes, never guessed delays."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return result


class Publisher:
    """Frigate's side of the broker: ``<prefix>/events`` messages, QoS 1, each acknowledged before it returns."""

    def __init__(self, url: str, prefix: str):
        host, port = url.removeprefix("mqtt://").split(":")
        self.topic = f"{prefix}/events"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"frigate-test-{uuid.uuid4().hex[:8]}")
        self.client.connect(host, int(port))
        self.client.loop_start()

    def send(self, message) -> float:
        """Publish; returns time.monotonic() just before (the start of a round trip)."""
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        t0 = time.monotonic()
        self.client.publish(self.topic, payload, qos=1).wait_for_publish(10)
        return t0

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def frigate_message(kind: str, event_id: str, camera: str, *, shot: float, label: str = "person",
                    sub_label=None) -> dict:
    """A ``frigate/events`` message as docs/docs/integrations/mqtt.md shows it (0.16+: ``snapshot.frame_time``);
    the event started a minute ago, its best snapshot is ``shot`` seconds into it, and an end a second later."""
    start = STARTED
    shot = start + shot
    after = {"id": event_id, "camera": camera, "frame_time": shot,
             "snapshot": {"frame_time": shot, "box": [415, 489, 528, 700], "area": 12728,
                          "region": [260, 446, 660, 846], "score": 0.77546, "attributes": []},
             "label": label, "sub_label": sub_label, "top_score": 0.958984375, "false_positive": False,
             "start_time": start, "end_time": shot + 1 if kind == "end" else None, "score": 0.87890625,
             "box": [424, 500, 536, 712], "area": 23744, "ratio": 2.113207, "region": [264, 450, 667, 853],
             "current_zones": ["driveway"], "entered_zones": ["driveway"], "thumbnail": None, "has_snapshot": True,
             "has_clip": True, "active": True, "stationary": False, "motionless_count": 0, "position_changes": 1,
             "attributes": {"face": 0.86}, "current_attributes": []}
    return {"type": kind, "before": {**after, "end_time": None}, "after": after}


# -- Frigate's HTTP API ---------------------------------------------------------------------------
class FakeFrigate:
    """Frigate's snapshot and sub-label endpoints; ``snapshots[id]``: the JPEG served now (an id it lacks: 404),
    ``hold[id]``: an Event the snapshot's handler waits on first (a Frigate hanging on that event)."""

    def __init__(self, password: str | None = None):
        self.password, self.token, self.logins = password, None, 0  # with a password: port 8971's login
        self.snapshots: dict[str, bytes] = {}
        self.hold: dict[str, threading.Event] = {}
        self.gets: list[tuple[str, float, dict]] = []  # (id, time.monotonic(), query)
        self.labels: list[tuple[str, dict, float]] = []  # (id, body, time.monotonic())
        self.hanging = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes, ctype: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _event_id(self, tail: str) -> str | None:
                path = self.path.split("?", 1)[0]
                if path.startswith("/api/events/") and path.endswith(tail):
                    return path[len("/api/events/"):-len(tail)]
                return None

            def _signed_in(self) -> bool:
                if outer.password is None:
                    return True
                if outer.token and self.headers.get("Authorization") == f"Bearer {outer.token}":
                    return True
                self._answer(401, b"Unauthorized", "text/html")  # nginx's auth_request refusal on 8971
                return False

            def do_GET(self):  # noqa: N802
                if not self._signed_in():
                    return
                if self.path == "/api/version":
                    return self._answer(200, b"0.16.0-test", "text/plain")
                event_id = self._event_id("/snapshot.jpg")
                if event_id is None:
                    return self._answer(404, b'{"detail": "Not Found"}')
                query = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&")) if "?" in self.path \
                    else {}
                with outer.lock:
                    outer.gets.append((event_id, time.monotonic(), query))
                    held, data = outer.hold.get(event_id), outer.snapshots.get(event_id)
                if held is not None:
                    outer.hanging.set()
                    held.wait(WAIT_S)
                if data is None:  # frigate/api/media.py's answer for an id neither stored nor tracked
                    return self._answer(404, b'{"success": false, "message": "Ongoing event not found"}')
                self._answer(200, data, "text/html" if data.startswith(b"<") else "image/jpeg")

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/login":  # frigate/api/auth.py: AppPostLoginBody in, the JWT as a cookie out
                    if body != {"user": "faceshot", "password": outer.password}:
                        return self._answer(401, b'{"message": "Login failed"}')
                    outer.token, outer.logins = uuid.uuid4().hex, outer.logins + 1
                    self.send_response(200)
                    self.send_header("Set-Cookie", f"frigate_token={outer.token}; HttpOnly; Path=/; SameSite=lax")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if not self._signed_in():
                    return None
                event_id = self._event_id("/sub_label")
                arrived = time.monotonic()
                if event_id is None or event_id not in outer.snapshots:
                    return self._answer(404, json.dumps({"success": False,
                                                         "message": f"Event {event_id} not found."}).encode())
                # EventsSubLabelBody, as FastAPI would validate it
                score = body.get("subLabelScore")
                if not isinstance(body.get("subLabel"), str) or len(body["subLabel"]) > 100 or \
                        (score is not None and not (isinstance(score, float) and 0 < score <= 1)):
                    return self._answer(422, b'{"detail": "invalid body"}')
                with outer.lock:
                    outer.labels.append((event_id, body, arrived))
                name = body["subLabel"] or None
                self._answer(200, json.dumps({"success": True, "message": f"Event {event_id} sub label set to "
                                                                          f"{name if name else 'None'}"}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def labels_of(self, event_id: str) -> list[dict]:
        with self.lock:
            return [body for i, body, _ in self.labels if i == event_id]

    def gets_of(self, event_id: str) -> list[tuple[str, float, dict]]:
        with self.lock:
            return [g for g in self.gets if g[0] == event_id]

    def close(self):
        for held in self.hold.values():
            held.set()
        self.server.shutdown()
        self.server.server_close()


def jpeg_of(path: Path, scale: float = 1.0) -> bytes:
    """A photo as Frigate's cropped snapshot would hold the person: ``scale`` < 1 is a poorer, smaller view."""
    image = Image.open(path).convert("RGB")
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def new_id() -> str:
    return f"{time.time():.6f}-{uuid.uuid4().hex[:6]}"


# -- the bridge, in-process -----------------------------------------------------------------------
@pytest.fixture
def gallery(make_client, tmp_path, photos):
    """The real app with Emma Watson and Wen Jiabao enrolled (two photos each), and its in-process recognizer."""
    client = make_client(tmp_path / "data")
    for who in ("Emma_Watson", "Wen_Jiabao"):
        r = client.post("/api/v1/enroll", data={"name": who.replace("_", " ")},
                        files=[upload(p, "images") for p in photos[who][:2]])
        assert r.status_code == 201, r.text
    return client, LocalRecognizer(client.app.state.service)


class Running:
    """A bridge subscribed to a prefix of its own on the real broker, with what it recorded and labelled."""

    def __init__(self, broker: str, frigate: FakeFrigate, recognizer, **options):
        self.prefix = f"frigate-{uuid.uuid4().hex[:8]}"
        self.events: list[dict] = []
        self.bridge = FrigateBridge(Frigate(frigate.url, deadline_s=WAIT_S), recognizer,
                                    on_event=self.events.append, **options)
        self.client = mqtt_client(broker, f"{self.prefix}/events", self.bridge.handle)  # subscribed when it returns
        self.publisher = Publisher(broker, self.prefix)

    def recorded(self, camera: str) -> list[dict]:
        return [e for e in list(self.events) if e["source"] == camera]

    def finished(self, event_id: str) -> bool:
        return event_id not in self.bridge.live()

    def close(self):
        self.publisher.close()
        self.client.disconnect()
        self.client.loop_stop()
        self.bridge.close()
        self.bridge.frigate.close()


@pytest.fixture
def frigate():
    server = FakeFrigate()
    yield server
    server.close()


@pytest.fixture
def running(broker, frigate, gallery):
    run = Running(broker, frigate, gallery[1])
    yield run
    run.close()


def test_a_known_person_gets_one_sub_label_and_one_event_and_a_stranger_only_an_unknown_event(
        running, frigate, photos, capsys):
    emma, stranger = new_id(), new_id()
    frigate.snapshots[emma] = jpeg_of(photos["Emma_Watson"][-1])  # a photo she was not enrolled with
    t0 = running.publisher.send(frigate_message("new", emma, "front_door", shot=100.0))
    _until(lambda: frigate.labels_of(emma), "Emma's sub label")
    round_trip_ms = (frigate.labels[0][2] - t0) * 1000
    # Frigate's later messages: an update with the same snapshot (a zone change; our own sub label coming back),
    # then the end; none asks for the face again, none labels again
    running.publisher.send(frigate_message("update", emma, "front_door", shot=100.0, sub_label=["Emma Watson", 0.9]))
    running.publisher.send(frigate_message("end", emma, "front_door", shot=100.0, sub_label=["Emma Watson", 0.9]))
    _until(lambda: running.recorded("front_door"), "Emma's event")

    labels = frigate.labels_of(emma)
    assert len(labels) == 1 and labels[0]["subLabel"] == "Emma Watson"
    assert set(labels[0]) == {"subLabel", "subLabelScore"} and 0.5 < labels[0]["subLabelScore"] <= 1.0
    assert len(frigate.gets_of(emma)) == 1
    assert frigate.gets_of(emma)[0][2] == {"crop": "1", "bbox": "0", "timestamp": "0", "quality": "95"}
    (event,) = running.recorded("front_door")
    assert event["person"]["name"] == "Emma Watson" and event["source"] == "front_door" and event["frames"] == 1
    assert event["duration_s"] == 101.0  # Frigate's start to end
    assert abs(datetime.fromisoformat(event["time"]).timestamp() - STARTED) < 0.01  # when Frigate's event began

    # a stranger at the garage: no sub label, one unknown event
    frigate.snapshots[stranger] = jpeg_of(photos["Yasar_Yakis"][0])
    running.publisher.send(frigate_message("new", stranger, "garage", shot=200.0))
    running.publisher.send(frigate_message("end", stranger, "garage", shot=200.0))
    (unknown,) = _until(lambda: running.recorded("garage"), "the stranger's event")
    assert unknown["person"] is None and unknown["distance"] > unknown["threshold"]
    assert frigate.labels_of(stranger) == [] and len(frigate.gets_of(stranger)) == 1
    assert len(running.events) == 2  # one event per Frigate event, nothing twice
    with capsys.disabled():
        print(f"\nFrigate round trip (event published -> sub label POST received): {round_trip_ms:.0f} ms")


def test_a_better_snapshot_changes_the_decision_and_the_sub_label_a_poorer_one_does_not(running, frigate, photos):
    event = new_id()
    # a first, poor view (small) names Wen Jiabao
    frigate.snapshots[event] = jpeg_of(photos["Wen_Jiabao"][-1], scale=0.45)
    running.publisher.send(frigate_message("new", event, "hall", shot=10.0))
    _until(lambda: frigate.labels_of(event), "the first sub label")
    # Frigate finds a better snapshot: a sharp, large face, which is Emma Watson's
    frigate.snapshots[event] = jpeg_of(photos["Emma_Watson"][-1])
    running.publisher.send(frigate_message("update", event, "hall", shot=11.0))
    _until(lambda: len(frigate.labels_of(event)) == 2, "the changed sub label")
    # a later, poorer snapshot is looked at but changes nothing
    frigate.snapshots[event] = jpeg_of(photos["Wen_Jiabao"][-1], scale=0.35)
    running.publisher.send(frigate_message("update", event, "hall", shot=12.0))
    running.publisher.send(frigate_message("end", event, "hall", shot=12.0))
    (recorded,) = _until(lambda: running.recorded("hall"), "the event")

    assert [b["subLabel"] for b in frigate.labels_of(event)] == ["Wen Jiabao", "Emma Watson"]
    assert len(frigate.gets_of(event)) == 3
    assert recorded["person"]["name"] == "Emma Watson" and recorded["frames"] == 3
    assert recorded["quality"]["score"] > 0.6  # decided on the best face


def test_a_better_face_of_a_stranger_clears_the_sub_label(running, frigate, photos):
    event = new_id()
    frigate.snapshots[event] = jpeg_of(photos["Wen_Jiabao"][-1], scale=0.45)
    running.publisher.send(frigate_message("new", event, "hall", shot=10.0))
    _until(lambda: frigate.labels_of(event), "the first sub label")
    frigate.snapshots[event] = jpeg_of(photos["John_Travolta"][0])  # better, and nobody enrolled
    running.publisher.send(frigate_message("update", event, "hall", shot=11.0))
    running.publisher.send(frigate_message("end", event, "hall", shot=11.0))
    (recorded,) = _until(lambda: running.recorded("hall"), "the event")
    labels = frigate.labels_of(event)
    assert [b["subLabel"] for b in labels] == ["Wen Jiabao", ""] and labels[1] == {"subLabel": ""}  # "": none
    assert recorded["person"] is None


def test_a_frigate_hanging_on_one_snapshot_does_not_hold_up_another_cameras_event(running, frigate, photos):
    stuck, other = new_id(), new_id()
    frigate.snapshots[stuck] = jpeg_of(photos["Wen_Jiabao"][-1])
    frigate.snapshots[other] = jpeg_of(photos["Emma_Watson"][-1])
    release = frigate.hold[stuck] = threading.Event()
    running.publisher.send(frigate_message("new", stuck, "garage", shot=1.0))
    assert frigate.hanging.wait(WAIT_S)  # Frigate has the garage's request and does not answer
    t0 = running.publisher.send(frigate_message("new", other, "front_door", shot=2.0))
    _until(lambda: frigate.labels_of(other), "the front door's sub label while the garage's snapshot hangs")
    took_ms = (frigate.labels[-1][2] - t0) * 1000
    assert not release.is_set() and frigate.labels_of(stuck) == []
    assert frigate.labels_of(other)[0]["subLabel"] == "Emma Watson"
    release.set()  # Frigate answers at last: the garage's person is named too
    _until(lambda: frigate.labels_of(stuck), "the garage's sub label")
    assert frigate.labels_of(stuck)[0]["subLabel"] == "Wen Jiabao"
    print(f"\nfront door labelled in {took_ms:.0f} ms while the garage's snapshot hung")


def test_bad_input_is_skipped_and_the_bridge_carries_on(running, frigate, photos, caplog):
    car, missing, html, person = new_id(), new_id(), new_id(), new_id()
    frigate.snapshots[car] = jpeg_of(photos["Emma_Watson"][-1])
    frigate.snapshots[html] = b"<html><body>Frigate is starting</body></html>"
    frigate.snapshots[person] = jpeg_of(photos["Emma_Watson"][-1])
    send = running.publisher.send
    send(b"{not json")
    send(b"[1, 2]")
    send(json.dumps({"type": "new", "after": {"label": "person", "id": "../../config/save", "camera": "x"}}).encode())
    send(frigate_message("new", car, "drive", shot=1.0, label="car"))
    send(frigate_message("end", car, "drive", shot=1.0, label="car"))
    send(frigate_message("new", missing, "drive", shot=1.0))  # Frigate answers 404
    send(frigate_message("end", missing, "drive", shot=1.0))
    send(frigate_message("new", html, "drive", shot=1.0))  # Frigate answers a page, not an image
    send(frigate_message("end", html, "drive", shot=1.0))
    send(frigate_message("new", person, "drive", shot=1.0))  # messages are handled in order: this one comes last
    send(frigate_message("end", person, "drive", shot=1.0))
    _until(lambda: running.recorded("drive") and all(running.finished(i) for i in (missing, html)),
           "the person's event after the bad ones")

    assert frigate.gets_of(car) == [] and frigate.labels_of(car) == []  # a car is none of our business
    assert len(frigate.gets_of(missing)) == 1 and len(frigate.gets_of(html)) == 1
    assert [e["person"]["name"] for e in running.recorded("drive")] == ["Emma Watson"]  # only the person's
    assert [b["subLabel"] for _, b, _ in frigate.labels] == ["Emma Watson"]
    logged = caplog.text
    assert "not an event" in logged and "../../config/save" in logged
    assert "Ongoing event not found" in logged and "not an image" in logged.lower()


def test_parse_message_reads_frigate_0_14_and_0_16_messages():
    new = frigate_message("update", "1607123955.475377-mxklsc", "front_door", shot=10.5)
    parsed = parse_message(json.dumps(new).encode())
    assert (parsed.type, parsed.id, parsed.camera, parsed.snapshot, parsed.start) == \
        ("update", "1607123955.475377-mxklsc", "front_door", STARTED + 10.5, STARTED)
    old = json.loads(json.dumps(new))  # 0.14 and 0.15: snapshot_time instead of the snapshot object
    old["after"].pop("snapshot")
    old["after"]["snapshot_time"] = 1607123961.837752
    assert parse_message(json.dumps(old).encode()).snapshot == 1607123961.837752
    for bad in (b"", b"null", b'"x"', b'{"type": "new"}', b'{"type": "new", "after": []}',
                json.dumps({**new, "type": "delete"}).encode(),
                json.dumps({**new, "after": {**new["after"], "id": 7}}).encode()):
        assert parse_message(bad) is None


def test_memory_stays_bounded_and_finished_events_are_forgotten(frigate, gallery, photos):
    """At most ``max_events`` live: the one heard of longest ago is recorded then; an event quiet for ``idle_s``
    is recorded too; a late message of a recorded event starts nothing."""
    events: list[dict] = []
    bridge = FrigateBridge(Frigate(frigate.url), gallery[1], max_events=2, idle_s=3600, on_event=events.append)
    try:
        ids = [new_id() for _ in range(3)]
        for i, event_id in enumerate(ids):
            frigate.snapshots[event_id] = jpeg_of(photos["Emma_Watson"][-1])
            bridge.handle(json.dumps(frigate_message("new", event_id, f"cam{i}", shot=1.0)).encode())
        _until(lambda: len(events) == 1 and len(bridge.live()) == 2, "the oldest event recorded")
        assert events[0]["source"] == "cam0" and bridge.live() == ids[1:]
        bridge.handle(json.dumps(frigate_message("update", ids[0], "cam0", shot=2.0)).encode())  # late
        assert bridge.live() == ids[1:]
        _until(lambda: all(frigate.labels_of(i) for i in ids[1:]), "the others labelled")
        bridge.idle_s = 0.0  # the rest have been quiet for longer than that
        bridge.expire()
        _until(lambda: bridge.live() == [] and len(events) == 3, "the idle events recorded")
        assert sorted(e["source"] for e in events) == ["cam0", "cam1", "cam2"]
        assert len(frigate.gets_of(ids[0])) == 1  # the late update fetched nothing
    finally:
        bridge.close()
        bridge.frigate.close()


def test_on_the_authenticated_port_the_bridge_logs_in_and_again_when_the_session_expires():
    frigate = FakeFrigate(password="a long password")
    try:
        host = frigate.url.removeprefix("http://")
        api = Frigate(f"http://faceshot:a%20long%20password@{host}")
        assert api.check() == "0.16.0-test" and frigate.logins == 1
        event = new_id()
        frigate.snapshots[event] = b"\xff\xd8"
        frigate.token = "expired"  # Frigate's session_length has passed
        api.set_sub_label(event, "Emma Watson", 0.8)
        assert frigate.logins == 2 and frigate.labels_of(event) == [{"subLabel": "Emma Watson", "subLabelScore": 0.8}]
        api.close()
        with pytest.raises(Unauthorized, match="refused the login of 'faceshot'"):
            Frigate(f"http://faceshot:wrong@{host}").check()
    finally:
        frigate.close()


def test_a_faceshot_server_that_is_down_is_logged_and_the_event_dropped_quietly(frigate, photos, caplog):
    from app.live.watch import RemoteRecognizer

    caplog.set_level(logging.INFO, logger="app.live.frigate")
    bridge = FrigateBridge(Frigate(frigate.url), RemoteRecognizer("http://127.0.0.1:9", "fs_key"))
    try:
        event = new_id()
        frigate.snapshots[event] = jpeg_of(photos["Emma_Watson"][-1])
        bridge.handle(json.dumps(frigate_message("new", event, "porch", shot=1.0)).encode())
        bridge.handle(json.dumps(frigate_message("end", event, "porch", shot=1.0)).encode())
        _until(lambda: bridge.live() == [], "the event finished")
        assert "snapshot not recognised: [Errno 111] Connection refused" in caplog.text
        assert "no face seen, nothing recorded" in caplog.text
        assert frigate.labels_of(event) == [] and bridge.recorded == 0
    finally:
        bridge.close()
        bridge.frigate.close()


# -- the command, through a faceshot server (no torch in the bridge) ----------------------------
def test_pieces_imported_by_watch_frigate_through_a_server_leave_the_face_model_out():
    probe = ("import sys, app.cli, app.live.frigate\n"
             "print(sorted(m for m in ('torch', 'models.pipeline', 'app.live.watch_local') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_watch_needs_a_video_or_frigate_and_frigate_needs_a_broker(capsys, monkeypatch):
    from app.cli import main

    monkeypatch.delenv("FACESHOT_MQTT_URL", raising=False)
    assert main(["watch"]) == 2
    assert "needs a camera, stream or video file (VIDEO), or --frigate URL" in capsys.readouterr().err
    assert main(["watch", "door.mp4", "--frigate", "http://frigate:5000"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["watch", "--frigate", "http://frigate:5000", "--server", "http://x", "--key", "k"]) == 2
    assert "--frigate needs --mqtt" in capsys.readouterr().err


@pytest.mark.slow  # a faceshot server process
def test_watch_frigate_through_a_server_labels_and_records_then_stops_on_sigterm(broker, frigate, photos, tmp_path):
    (tmp_path / "server").mkdir()
    server = Server(tmp_path / "server" / "data")
    server.start()
    bridge = None
    try:
        http = server.client()
        assert http.post("/enroll", data={"name": "Emma Watson"},
                         files=[upload(p, "images") for p in photos["Emma_Watson"][:2]]).status_code == 201
        key = http.post("/keys", json={"name": "frigate bridge", "role": "recognition"}).json()["key"]
        prefix = f"frigate-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "FACESHOT_WATCH_KEY": key, "FACESHOT_MQTT_URL": broker}  # the broker from the setting
        bridge = subprocess.Popen([FACESHOT, "watch", "--frigate", frigate.url, "--frigate-topic-prefix", prefix,
                                   "--server", f"http://127.0.0.1:{server.port}"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        publisher = Publisher(broker, prefix)
        done, ongoing = new_id(), new_id()
        frigate.snapshots[done] = jpeg_of(photos["Emma_Watson"][-1])
        frigate.snapshots[ongoing] = jpeg_of(photos["Yasar_Yakis"][0])

        def labelled():  # the bridge subscribes when it is ready: until then Frigate's messages go unheard
            assert bridge.poll() is None, bridge.stderr.read()
            if not frigate.gets_of(done):
                publisher.send(frigate_message("new", done, "porch", shot=5.0))
            return frigate.labels_of(done)

        _until(labelled, "the porch's sub label", 60)
        publisher.send(frigate_message("end", done, "porch", shot=5.0))
        publisher.send(frigate_message("new", ongoing, "porch", shot=6.0))  # still in view when the bridge stops
        _until(lambda: http.get("/events", params={"source": "porch"}).json()["total"] == 1 and
               frigate.gets_of(ongoing), "the first event stored and the second looked at")
        publisher.close()
        bridge.send_signal(signal.SIGTERM)  # docker stop: as Ctrl-C, the event in hand is recorded first
        out, err = bridge.communicate(timeout=60)
        assert bridge.returncode == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        assert [(e["source"], e["person"]["name"] if e["person"] else None) for e in events] == \
            [("porch", "Emma Watson"), ("porch", None)]
        assert http.get("/events", params={"source": "porch"}).json()["total"] == 2
        assert frigate.labels_of(done)[0]["subLabel"] == "Emma Watson" and frigate.labels_of(ongoing) == []
        assert "sub label 'Emma Watson'" in err and "2 event(s) from Frigate" in err
    finally:
        if bridge is not None and bridge.poll() is None:
            bridge.kill()
            bridge.wait(10)
        server.stop()
