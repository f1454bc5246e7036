"""Webhooks under attack (issue 26, points 2 and 3): a collection admin cannot make the service reach inside or
learn what answers there, and one bad receiver cannot stall the others. Real receivers on loopback sockets."""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.core.tables import Webhook

ALLOW_LOOPBACK = {"webhook_allow_private": "127.0.0.1/32"}
EVENT = {"source": "door-1", "distance": 0.8, "threshold": 0.4}


class Receiver:
    """An HTTP receiver on a loopback address: answers ``status`` (with ``location``, a redirect) to each POST and
    records it (headers, body, arrival time)."""

    def __init__(self, host: str = "127.0.0.1", status: int = 204, location: str | None = None):
        self.requests: list[dict] = []
        self.changed = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.changed:
                    outer.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body, "at": time.monotonic()})
                    outer.changed.notify_all()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 20) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.requests) >= n, timeout)


class Hanging:
    """Accepts every connection, reads the request and never answers (a receiver that hangs); counts connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=32)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections: list[socket.socket] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.changed:
                self.connections.append(conn)  # kept open, never answered
                self.changed.notify_all()

    def wait(self, n: int = 1, timeout: float = 20) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.connections) >= n, timeout)


class Drip:
    """Answers a byte of a never-ending status line and headers every 0.2 s; records how long the client stayed."""

    def __init__(self, give_up_s: float = 15.0):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.give_up_s, self.held_s = give_up_s, None
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        start = time.monotonic()
        trickle = iter(b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 10_000)
        with conn:
            while time.monotonic() - start < self.give_up_s:
                readable, _, _ = select.select([conn], [], [], 0.2)  # the drip's pace, and the client's hang-up
                try:
                    if readable and not conn.recv(65536):
                        break  # the client closed the connection
                    conn.send(bytes([next(trickle)]))
                except OSError:
                    break
        self.held_s = time.monotonic() - start
        self.done.set()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deliveries_settled(client, hook_id: str, base: str = "/api/v1", headers=None, timeout: float = 30) -> list[dict]:
    """The webhook's deliveries once none is pending (polling their state with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(f"{base}/webhooks/{hook_id}/deliveries", headers=headers).json()
        if got and all(d["state"] != "pending" for d in got):
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.1)  # polling the stored state, not guessing a delay


def register(client, url: str, base: str = "/api/v1") -> dict:
    r = client.post(f"{base}/webhooks", json={"url": url})
    assert r.status_code == 201, (url, r.text)
    return r.json()


# -- point 2: webhooks cannot reach inside ---------------------------------------------------------------------

INTERNAL = ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook", "http://2130706433/", "http://0x7f.1/",
            "http://127.1/", "http://017700000001/", "http://[::ffff:127.0.0.1]/", "http://[::1]:{port}/",
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/",
            "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.10/", "http://[fc00::1]/", "http://0.0.0.0/",
            "http://[::]/", "http://224.0.0.1/", "http://100.64.0.1/", "http://240.0.0.1/", "http://[::7f00:1]/",
            "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "https://127.0.0.1:{port}/"]


def test_webhooks_cannot_be_registered_to_internal_addresses(client):
    receiver = Receiver()
    for url in INTERNAL:
        r = client.post("/api/v1/webhooks", json={"url": url.format(port=receiver.port)})
        assert r.status_code == 422, (url, r.status_code)
        error = r.json()["error"]
        assert (error["code"], error["details"]) == ("validation_error", {"field": "url",
                                                                          "reason": "refused_address"}), url
    assert client.get("/api/v1/webhooks").json() == []
    assert receiver.requests == []


def test_an_allowed_private_network_gets_deliveries_and_loopback_must_be_named(make_client, tmp_path):
    """FACESHOT_WEBHOOK_ALLOW_PRIVATE lets a LAN receiver in; even every network listed does not let loopback or
    link-local (the metadata address) in: those must be named themselves."""
    receiver = Receiver()
    wide = make_client(tmp_path / "wide", webhook_allow_private="0.0.0.0/0, ::/0")
    for url in (receiver.url, "http://169.254.169.254/", f"http://[::1]:{receiver.port}/"):
        assert wide.post("/api/v1/webhooks", json={"url": url}).status_code == 422, url
    register(wide, "http://10.1.2.3/door")  # a LAN door controller
    register(wide, "http://[fd12:3456::7]/door")

    client = make_client(tmp_path / "data", **ALLOW_LOOPBACK)
    hook = register(client, f"http://localhost:{receiver.port}/hook")
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    assert receiver.wait(1)
    # sent to the address checked, under the name registered
    assert receiver.requests[0]["headers"]["host"] == f"localhost:{receiver.port}"
    [delivery] = deliveries_settled(client, hook["id"])
    assert (delivery["state"], delivery["last_error"]) == ("delivered", None)


def test_https_to_the_checked_address_still_checks_the_name(make_client, tmp_path, monkeypatch):
    """Connecting to the address checked does not loosen TLS: SNI and the certificate are the registered name's
    (a receiver with a certificate for `localhost` is reached as localhost, and refused as 127.0.0.1)."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the operator's own CA for a LAN receiver
    receiver, names = Receiver(), []
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    served.sni_callback = lambda _sock, name, _ctx: names.append(name)
    receiver.server.socket = served.wrap_socket(receiver.server.socket, server_side=True)
    client = make_client(tmp_path / "data", webhook_max_attempts=1, **ALLOW_LOOPBACK)
    by_name = register(client, f"https://localhost:{receiver.port}/hook")
    by_address = register(client, f"https://127.0.0.1:{receiver.port}/hook")
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    assert [d["state"] for d in deliveries_settled(client, by_name["id"])] == ["delivered"]
    assert [d["last_error"] for d in deliveries_settled(client, by_address["id"])] == ["receiver_failed"]
    assert len(receiver.requests) == 1 and receiver.requests[0]["headers"]["host"] == f"localhost:{receiver.port}"
    assert "localhost" in names


def test_a_name_that_resolves_inside_is_refused_at_delivery(make_client, tmp_path):
    """Registered while loopback was allowed, delivered after the operator took that back: the name is resolved and
    checked again when sending, and the receiver gets nothing."""
    receiver = Receiver()
    first = make_client(tmp_path / "data", **ALLOW_LOOPBACK)
    hook = register(first, f"http://localhost:{receiver.port}/hook")
    first.__exit__(None, None, None)

    client = make_client(tmp_path / "data", webhook_max_attempts=1)
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    [delivery] = deliveries_settled(client, hook["id"])
    assert (delivery["state"], delivery["last_error"], delivery["last_status"]) == ("failed", "refused_address", None)
    assert receiver.requests == []


def test_failures_inside_read_alike_and_redirects_are_not_followed(make_client, tmp_path, caplog):
    """No port-scan oracle: on an allowed private network a closed port, a receiver that hangs, one that answers
    500 and one that redirects (to an address not allowed) all read `receiver_failed` without a status; the server
    log has the detail."""
    caplog.set_level(logging.INFO, logger="app.live.webhooks")
    inside = Receiver(host="127.0.0.2")
    receivers = {"closed": f"http://127.0.0.1:{closed_port()}/hook", "hanging": Hanging().url,
                 "erroring": Receiver(status=500).url,
                 "redirecting": Receiver(status=307, location=f"http://127.0.0.2:{inside.port}/hook").url}
    client = make_client(tmp_path / "data", webhook_timeout_s=1.0, webhook_max_attempts=1, **ALLOW_LOOPBACK)
    assert client.post("/api/v1/webhooks", json={"url": inside.url}).status_code == 422
    hooks = {name: register(client, url)["id"] for name, url in receivers.items()}
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    for name, hook_id in hooks.items():
        [delivery] = deliveries_settled(client, hook_id)
        assert (delivery["state"], delivery["last_error"], delivery["last_status"]) == \
            ("failed", "receiver_failed", None), (name, delivery)
    assert inside.requests == []
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "app.live.webhooks")
    for detail in ("ConnectError", "timeout", "answered 500", "answered 307"):
        assert detail in logged, (detail, logged)


def test_errors_stored_by_an_earlier_version_are_withheld(client):
    """Rows written before the vocabulary carried connection errors and statuses of internal hosts verbatim."""
    from app.core.tables import WebhookDelivery
    from app.live.events import NewEvent

    service = client.app.state.service
    service.webhooks.stop()  # the row below stays as an earlier version left it
    hook = register(client, "http://example.com/hook")
    event = service.events.record(NewEvent(time=datetime.now(timezone.utc), source="door-1", person_id=None,
                                           distance=0.8, threshold=0.4, box=[], quality={}))
    with service.sessions.begin() as session:
        session.query(WebhookDelivery).filter_by(event_id=event.id).update(
            {"state": "failed", "attempts": 8, "last_status": 401,
             "last_error": "ConnectError: [Errno 111] Connection refused"})
    [delivery] = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()
    assert (delivery["last_error"], delivery["last_status"]) == ("withheld", None)


def test_public_receivers_are_told_why_private_ones_only_that_they_failed():
    from app.live.webhooks import Outcome

    assert Outcome("http_error", 503).shown() == ("http_error", 503)
    assert Outcome("connect_failed").shown() == ("connect_failed", None)
    assert Outcome(None, 204, public=False).shown() == (None, None)
    for error in ("connect_failed", "no_response", "timeout", "http_error"):
        assert Outcome(error, 500, public=False).shown() == ("receiver_failed", None)
    assert Outcome("refused_address", public=False).shown() == ("refused_address", None)


def test_the_allowed_networks_are_checked_when_the_service_starts():
    for wrong, hint in (("192.168.1.1/24", "host bits"), ("10.0.0.0/8,door", "door"), ("::1/200", "::1/200")):
        with pytest.raises(ValidationError, match="FACESHOT_WEBHOOK_ALLOW_PRIVATE") as refused:
            Settings(webhook_allow_private=wrong)
        assert hint in str(refused.value)
    assert [str(n) for n in Settings(webhook_allow_private=" 192.168.1.0/24 , 10.0.0.5 ").webhook_allowed_networks] \
        == ["192.168.1.0/24", "10.0.0.5/32"]


# -- point 3: one bad webhook cannot stall the others ----------------------------------------------------------

def test_a_url_httpx_cannot_send_is_refused_at_registration(client):
    for url in ("http://127.0.0.1:9x/", "http://example.com:99999/", "http://[::1/", "ftp://example.com/",
                "http://:80/", "https://example.com:0/"):
        r = client.post("/api/v1/webhooks", json={"url": url})
        assert r.status_code == 422, (url, r.status_code)
        assert r.json()["error"]["details"] == {"field": "url", "reason": "invalid_url"}, url
    assert client.get("/api/v1/webhooks").json() == []


def test_a_poison_delivery_is_marked_failed_and_the_others_go_on(make_client, tmp_path):
    """A webhook stored before URLs were checked with httpx's own parser: its delivery fails, nothing else waits."""
    receiver = Receiver()
    client = make_client(tmp_path / "data", **ALLOW_LOOPBACK)
    with client.app.state.service.sessions.begin() as session:
        poison = Webhook(url="http://127.0.0.1:9x/", secret="whsec_old", collection="default")
        session.add(poison)
        session.flush()
        poison_id = poison.id
    register(client, receiver.url)
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    assert receiver.wait(1)
    [delivery] = deliveries_settled(client, poison_id)
    assert (delivery["state"], delivery["last_error"]) == ("failed", "invalid_url")


def test_a_dripping_receiver_is_cut_at_the_deadline(make_client, tmp_path):
    """FACESHOT_WEBHOOK_TIMEOUT_S bounds the whole attempt, not each read: a receiver that drips its headers a byte
    at a time is hung up on at the deadline (the lease, 90 s, is never reached)."""
    drip = Drip()
    client = make_client(tmp_path / "data", webhook_timeout_s=1.0, webhook_max_attempts=1, **ALLOW_LOOPBACK)
    hook = register(client, drip.url)
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    assert drip.done.wait(30)
    assert drip.held_s < 2.0, drip.held_s  # the 1 s deadline, and a margin for a busy machine
    [delivery] = deliveries_settled(client, hook["id"])
    assert (delivery["state"], delivery["last_error"]) == ("failed", "receiver_failed")


def test_ten_hanging_receivers_do_not_delay_another_collections_delivery(make_client, tmp_path):
    """One collection's ten receivers that never answer hold their own deliveries only: another collection's event
    is delivered at once, not after ten timeouts in a row."""
    client = make_client(tmp_path / "data", webhook_timeout_s=3.0, **ALLOW_LOOPBACK)
    for name in ("dead", "alive"):
        assert client.post("/api/v1/collections", json={"name": name}).status_code == 201
    hanging = [Hanging() for _ in range(10)]
    for h in hanging:
        register(client, h.url, "/api/v1/collections/dead")
    receiver = Receiver()
    register(client, receiver.url, "/api/v1/collections/alive")
    assert client.post("/api/v1/collections/dead/events", json=EVENT).status_code == 201
    assert hanging[0].wait(1)  # the dead collection's deliveries are under way
    posted = time.monotonic()
    assert client.post("/api/v1/collections/alive/events", json=EVENT).status_code == 201
    assert receiver.wait(1, timeout=60)
    delay = receiver.requests[0]["at"] - posted
    assert delay < 1.5, delay  # ten 3 s timeouts in a row before


def test_webhooks_per_collection_are_capped(make_client, tmp_path, database_url):
    """Ten per collection, also when many are registered at once (SQLite and PostgreSQL)."""
    from app.live.webhooks import TooManyWebhooks

    client = make_client(tmp_path / "data", database_url=database_url, **ALLOW_LOOPBACK)
    for i in range(10):
        register(client, f"http://127.0.0.1:9/{i}")
    r = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/10"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "too_many_webhooks"
    assert r.json()["error"]["details"] == {"collection": "default", "limit": 10}
    assert len(client.get("/api/v1/webhooks").json()) == 10
    assert client.post("/api/v1/collections", json={"name": "annex"}).status_code == 201
    register(client, "http://127.0.0.1:9/annex", "/api/v1/collections/annex")  # another collection's own ten

    webhooks, outcomes = client.app.state.service.webhooks, []
    start = threading.Barrier(16)

    def race(i):
        start.wait()
        try:
            webhooks.create(f"http://127.0.0.1:9/{i}", collection="annex")
            outcomes.append("created")
        except TooManyWebhooks:
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["created"] * 9 + ["refused"] * 7
    assert len(webhooks.list("annex")) == 10


def test_the_delivery_lease_outlasts_every_attempt():
    """A claimed delivery is one worker's for 90 s; an attempt's deadline must end well inside it, so no slow
    receiver ever gets one delivery from two workers."""
    from app.core.config import WEBHOOK_LEASE_S

    assert Settings(webhook_timeout_s=60).webhook_timeout_s == 60
    with pytest.raises(ValidationError, match="lease"):
        Settings(webhook_timeout_s=WEBHOOK_LEASE_S - 10)
