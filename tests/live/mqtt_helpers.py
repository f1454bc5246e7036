"""A real MQTT subscriber for the tests, and a private Mosquitto broker a test may stop and start."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Message:
    topic: str
    payload: str
    retain: bool

    def json(self):
        return json.loads(self.payload)


class Subscriber:
    """Records every message under ``topics`` (QoS 1); with ``client_id`` its session outlives a broker restart."""

    def __init__(self, port: int, topics: list[str], client_id: str | None = None):
        self.messages: list[Message] = []
        self._changed = threading.Condition()
        self.topics = topics
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:8]}",
                                  clean_session=client_id is None)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in self.topics])
        self.client.on_subscribe = lambda *_: self._note()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.subscribed = 0
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _note(self):
        with self._changed:
            self.subscribed += 1
            self._changed.notify_all()

    def _on_message(self, _client, _userdata, msg):
        with self._changed:
            self.messages.append(Message(msg.topic, msg.payload.decode(), bool(msg.retain)))
            self._changed.notify_all()

    def wait(self, predicate, timeout: float = 30.0, what: str = "the messages"):
        """Block until ``predicate(messages)`` is true (re-checked on each message), or fail saying what came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := predicate(self.messages)):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = "\n".join(f"{m.topic} {m.payload[:120]}" for m in self.messages[-30:])
                    raise AssertionError(f"timed out waiting for {what}; the last messages:\n{got}")
                self._changed.wait(min(left, 1.0))
            return result

    def on(self, topic: str) -> list[Message]:
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Mosquitto:
    """A broker of the test's own on a free port, with persistence (sessions and queued messages survive a stop)."""

    def __init__(self, folder: Path):
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            pytest.skip("no mosquitto binary (apt-get install mosquitto) for a broker this test may stop")
        self.binary, self.port, self.folder = binary, free_port(), folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                               f"persistence_location {folder}/\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listening(self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)  # polling a starting broker's port

    def stop(self):
        self.proc.terminate()  # SIGTERM: it saves its persistence file on the way out
        self.proc.wait(10)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
