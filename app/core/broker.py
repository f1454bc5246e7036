"""An MQTT broker named by a URL, parsed and checked once: for FACESHOT_MQTT_URL, the MQTT sink and the Frigate bridge.

``mqtt://user:password@host:1883``, or ``mqtts://host:8883`` for TLS (the system's CAs, or SSL_CERT_FILE: a LAN
broker's own CA). Topic prefixes are checked here too: a wildcard or an empty level names no topic one can publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

URL_FORM = "mqtt://user:password@host:1883 or mqtts://host:8883"


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Broker:
        """The broker a URL names, or ValueError (which never repeats the URL: it may carry a password)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"an MQTT broker's URL looks like {URL_FORM}") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or (port is not None and port < 1):
            raise ValueError(f"an MQTT broker's URL looks like {URL_FORM}")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, port or (8883 if tls else 1883), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def configure(self, client) -> None:
        """Credentials and TLS on a paho client, before it connects."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()


def check_topic_prefix(prefix: str) -> str:
    """A plain topic path (``faceshot``, ``home/faceshot``), or ValueError: no '+', '#', NUL or empty levels."""
    prefix = prefix.strip()
    if not prefix or any(c in prefix for c in "+#\0") or any(level == "" for level in prefix.split("/")):
        raise ValueError("a topic prefix is a topic like faceshot or home/faceshot: no '+', '#', empty levels or "
                         "leading/trailing '/'")
    return prefix
