"""faceshot watch on a video of the office door: one event per person passing, in-process and through the server;
webhooks that get each event once, signed, through a receiver's failures; retention."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from standardwebhooks import Webhook

from app.cli import main
from app.live.events import NewEvent
from app.testing.clips import door_clip
from app.testing.server import FACESHOT, Server

from .conftest import upload

FPS = 10
# a recording started an hour ago: an event's time must lie within FACESHOT_EVENT_MAX_AGE_H (24 h) of the server's clock
START = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
# who is on screen, from when to when (seconds into the clip); nobody in between
SCENES = [("Emma_Watson", 0.6, 2.1), ("Wen_Jiabao", 2.7, 4.2), ("Yasar_Yakis", 4.8, 6.3)]
LENGTH_S = 7.0


def make_clip(photos, path):
    """Two enrolled people and a stranger, each on screen for 1.5 s (a photo they were not enrolled with)."""
    return door_clip([(photos[who][-1], a, b) for who, a, b in SCENES], path, fps=FPS, length_s=LENGTH_S)


def _check_events(events):
    names = [e["person"]["name"] if e["person"] else None for e in events]
    assert names == ["Emma Watson", "Wen Jiabao", None], names
    for event, (_, a, _) in zip(events, SCENES):
        seen = datetime.fromisoformat(event["time"])
        assert abs((seen - START).total_seconds() - a) <= 0.25, (event["time"], a)
        assert event["source"] == "door-1" and event["frames"] >= 5


class Receiver:
    """A local webhook receiver; ``fail_first`` answers 503 that many times before it recovers."""

    def __init__(self, fail_first: int = 0):
        self.received, self.fail_first, self.lock = [], fail_first, threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    failing = outer.fail_first > 0
                    outer.fail_first -= failing
                    outer.received.append({"headers": dict(self.headers), "body": body, "ok": not failing})
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self):
        with self.lock:
            return [r for r in self.received if r["ok"]]


@pytest.mark.slow  # a video through the face pipeline twice, and a server process
def test_watch_gives_one_event_per_person_in_process_and_through_the_server(photos, make_client, tmp_path, capsys,
                                                                             monkeypatch):
    clip = make_clip(photos, tmp_path / "door.avi")
    for name in ("FACESHOT_DATA_DIR", "FACESHOT_DATABASE_URL"):
        monkeypatch.setenv(name, "unset-by-the-test")
        monkeypatch.delenv(name)

    # in-process, on a data directory with two people enrolled
    data = tmp_path / "local"
    client = make_client(data)
    for who in ("Emma_Watson", "Wen_Jiabao"):
        r = client.post("/api/v1/enroll", data={"name": who.replace("_", " ")},
                        files=[upload(p, "images") for p in photos[who][:2]])
        assert r.status_code == 201
    client.__exit__(None, None, None)  # the CLI opens the data directory itself
    assert main(["watch", str(clip), "--source", "door-1", "--start", START.isoformat(), "--data-dir",
                 str(data)]) == 0
    local = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    _check_events(local)

    # through a server, with two webhooks: one healthy, one that fails twice and recovers
    (tmp_path / "remote").mkdir()
    server = Server(tmp_path / "remote" / "data")
    server.start(env={"FACESHOT_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1/32"})  # the receivers are on this host
    try:
        http = server.client()
        for who in ("Emma_Watson", "Wen_Jiabao"):
            assert http.post("/enroll", data={"name": who.replace("_", " ")},
                             files=[upload(p, "images") for p in photos[who][:2]]).status_code == 201
        healthy, flaky = Receiver(), Receiver(fail_first=2)
        secrets = {}
        for receiver in (healthy, flaky):
            hook = http.post("/webhooks", json={"url": receiver.url}).json()
            secrets[receiver] = hook["secret"]
        key = http.post("/keys", json={"name": "door-1 watcher", "role": "recognition"}).json()["key"]
        base = f"http://127.0.0.1:{server.port}"
        assert main(["watch", str(clip), "--source", "door-1", "--start", START.isoformat(), "--server", base,
                     "--key", key]) == 0
        remote = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        _check_events(remote)
        assert [e["time"] for e in remote] == [e["time"] for e in local]
        stored = http.get("/events", params={"source": "door-1"}).json()
        assert stored["total"] == 3

        deadline = time.monotonic() + 60  # the flaky one retries after 1 s and 2 s
        while (len(healthy.accepted()) < 3 or len(flaky.accepted()) < 3) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the receivers' state, not guessing a delay
        for receiver in (healthy, flaky):
            accepted = receiver.accepted()
            events = [json.loads(r["body"])["event"]["id"] for r in accepted]
            assert sorted(events) == sorted(e["id"] for e in remote)  # each event once
            for r in receiver.received:  # every attempt signed (Standard Webhooks), retries under the same id
                assert Webhook(secrets[receiver]).verify(r["body"], r["headers"])["delivery_id"] \
                    == r["headers"]["webhook-id"]
                headers = {k.lower(): v for k, v in r["headers"].items()}  # and the legacy headers, for one release
                expected = "sha256=" + hmac.new(secrets[receiver].encode(), headers["x-faceshot-timestamp"].encode()
                                                + b"." + r["body"], hashlib.sha256).hexdigest()
                assert hmac.compare_digest(headers["x-faceshot-signature"], expected)
        assert len(flaky.received) == 5 and len({r["headers"]["webhook-id"] for r in flaky.received}) == 3
        hooks = http.get("/webhooks").json()
        assert all(h["deliveries"] == {"pending": 0, "delivered": 3, "failed": 0} for h in hooks)

        day = START.date().isoformat()
        sheet = http.get("/presence", params={"since": day}).json()["rows"]
        assert [(r["person"]["name"], r["events"]) for r in sheet] == [("Emma Watson", 1), ("Wen Jiabao", 1)]
        csv_text = http.get("/events.csv").text
        assert csv_text.count("\n") == 4 and "unknown" in csv_text
    finally:
        server.stop()


def test_events_past_retention_are_removed_and_faces_kept_only_when_configured(make_client, tmp_path, photos):
    # a month-old event is refused unless the operator allows it (footage analysed late): here, to have one to purge
    client = make_client(tmp_path / "data", event_max_age_h=24 * 60)
    service = client.app.state.service
    old = service.events.record(NewEvent(time=datetime.now(timezone.utc) - timedelta(days=31), source="door-1",
                                        person_id=None, distance=0.7, threshold=0.4, box=[], quality={},
                                        face_crop=b"\xff\xd8 a crop"))
    recent = service.events.record(NewEvent(time=datetime.now(timezone.utc), source="door-1", person_id=None,
                                           distance=0.7, threshold=0.4, box=[], quality={}, face_crop=b"\xff\xd8"))
    assert old.face_crop is None and recent.face_crop is None  # FACESHOT_EVENT_FACES is off by default
    assert service.events.purge_expired() == 1
    ids = [e["id"] for e in client.get("/api/v1/events").json()["items"]]
    assert ids == [recent.id]
    r = client.get(f"/api/v1/events/{recent.id}/face")
    assert r.status_code == 404


def test_face_crops_follow_the_privacy_settings(make_client, tmp_path, photos):
    kept = make_client(tmp_path / "kept", event_faces=True)
    emma = kept.post("/api/v1/enroll", data={"name": "Emma"}, files=[upload(photos["Emma_Watson"][0], "images")])
    person = emma.json()["person"]["id"]
    crop = photos["Emma_Watson"][1].read_bytes()
    body = {"source": "door-1", "person_id": person, "distance": 0.2, "threshold": 0.4,
            "face": base64.b64encode(crop).decode()}
    known = kept.post("/api/v1/events", json=body).json()
    stranger = kept.post("/api/v1/events", json={**body, "person_id": None}).json()
    assert known["face_url"]
    served = kept.get(known["face_url"])  # re-encoded here: only pixels that decoded are kept (issue 26, point 10)
    assert served.headers["content-type"] == "image/jpeg" and served.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(served.content)).size == Image.open(io.BytesIO(crop)).size
    assert stranger["face_url"] is None  # unknown faces need FACESHOT_EVENT_UNKNOWN_FACES as well
    r = kept.post("/api/v1/events", json={**body, "person_id": "0" * 32})
    assert r.status_code == 404


class Camera:
    """An MJPEG-over-HTTP camera that sends ``frames`` frames per connection, then closes it (a dropped stream)."""

    def __init__(self, frames: int = 15):
        import io

        from PIL import Image

        self.connections = []
        outer = self

        def jpeg(i):
            out = io.BytesIO()
            Image.new("RGB", (160, 120), (i * 10 % 255, 80, 80)).save(out, "JPEG")
            return out.getvalue()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.connections.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(frames):
                    data = jpeg(i)
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                                     + data + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.02)  # a camera's frame interval, not synchronisation

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_stream_that_drops_is_reopened():
    """An MJPEG-over-HTTP camera that closes the connection after 15 frames: frames keep coming, from a new one."""
    from app.live.watch import frames

    camera = Camera(frames=15)
    stop, got = threading.Event(), []
    try:
        for t, image in frames(camera.url, fps=1000, stop=stop, max_backoff_s=1):
            got.append((t, image.shape))
            if len(got) >= 25:
                stop.set()
    finally:
        camera.close()
    assert len(got) == 25 and len(camera.connections) >= 2
    assert all(shape == (120, 160, 3) for _, shape in got)
    assert [t for t, _ in got] == sorted(t for t, _ in got)  # a stream's time runs on across reconnections


def _watch(*argv, data_dir):
    env = {**os.environ, "FACESHOT_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1"}
    env.pop("FACESHOT_DATABASE_URL", None)
    return subprocess.run([FACESHOT, "watch", *argv], env=env, capture_output=True, text=True, timeout=120)


def test_no_reconnect_ends_the_watch_when_the_stream_drops(tmp_path):
    """--no-reconnect: the camera's one connection ends, and so does the watch: status 1, one line naming it."""
    camera = Camera(frames=15)
    try:
        out = _watch(camera.url, "--no-reconnect", "--fps", "100", "--source", "door-1", data_dir=tmp_path / "data")
    finally:
        camera.close()
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.splitlines()[-1] == (f"faceshot: unavailable: {camera.url} stopped sending frames "
                                           "(--no-reconnect: not reopened)")
    assert camera.connections == ["/stream"]  # it was not opened again


def test_no_reconnect_ends_the_watch_when_the_stream_cannot_be_opened(tmp_path):
    """A camera that is not there: reported at once (before, it was retried for ever), through a server or not."""
    with socket.socket() as s:  # a port bound but never listening: the connection is refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/stream"
        out = _watch(url, "--no-reconnect", "--server", "http://127.0.0.1:9", "--key", "fs_unused",
                     data_dir=tmp_path / "data")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    # the last line is ours; FFmpeg's own line above it says why (refused, 401...), and is kept for that
    assert out.stderr.splitlines()[-1] == f"faceshot: unavailable: cannot open {url} (--no-reconnect: not tried again)"


def test_two_workers_never_send_one_delivery_twice(make_client, tmp_path, database_url):
    """Each worker runs a delivery thread on the same database: a delivery is claimed by one of them only."""
    import httpx as http_client

    from app.live.webhooks import Webhooks

    receiver = Receiver()
    client = make_client(tmp_path / "data", database_url=database_url, webhook_allow_private="127.0.0.1/32")
    service = client.app.state.service
    service.webhooks.stop()  # this test drives the delivery passes itself
    service.webhooks.create(receiver.url)
    for i in range(30):
        service.events.record(NewEvent(time=datetime.now(timezone.utc), source=f"door-{i}", person_id=None,
                                       distance=0.8, threshold=0.4, box=[], quality={}))
    workers = [Webhooks(service.settings, service.sessions) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(worker):
        with http_client.Client(timeout=5) as http:
            barrier.wait()
            while worker.deliver_due(http):
                pass

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    deliveries = [r["headers"]["webhook-id"] for r in receiver.received]
    assert len(deliveries) == 30 and len(set(deliveries)) == 30
