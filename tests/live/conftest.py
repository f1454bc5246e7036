"""Fixtures of the live tests: the real app (tests/api's) and a real MQTT broker."""

import pytest

from tests.api.conftest import make_client  # noqa: F401  (a fixture: the real app on a data directory)
from tests.live.mqtt_helpers import Mosquitto, listening


@pytest.fixture(scope="session")
def broker_port(tmp_path_factory):
    """The Mosquitto on 127.0.0.1:1883 when one listens there; else one of the session's own (skipped without the
    mosquitto binary)."""
    if listening(1883):
        yield 1883
        return
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker.port
    broker.close()
