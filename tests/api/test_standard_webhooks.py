"""Deliveries in the Standard Webhooks format (issue 28, part 5): the spec's own Python verifier accepts a real
delivery of the app's delivery thread and refuses it tampered or replayed late; a webhook the previous version made
(its url-safe secret) keeps the legacy X-Faceshot-* headers, which verify with the old rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import standardwebhooks.webhooks
from sqlalchemy import create_engine, text
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .test_webhook_safety import ALLOW_LOOPBACK, EVENT, Receiver, deliveries_settled, register

ROOT = Path(__file__).resolve().parents[2]


def legacy_valid(headers: dict, body: bytes, secret: str) -> bool:
    """The old rule, as receivers written for it check: HMAC-SHA256 of ``<timestamp>.<body>`` under the secret."""
    expected = "sha256=" + hmac.new(secret.encode(), headers["x-faceshot-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-faceshot-signature"])


def test_a_delivery_verifies_with_the_standard_webhooks_library_and_tampering_or_replay_is_refused(
        make_client, tmp_path, monkeypatch):
    receiver = Receiver()
    client = make_client(tmp_path / "data", **ALLOW_LOOPBACK)
    hook = register(client, receiver.url)
    secret = hook["secret"]
    assert hook["signature_format"] == "standard"
    # the spec's secret: whsec_ and the standard base64 of 24 to 64 random bytes
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:], validate=True)) <= 64
    event = client.post("/api/v1/events", json=EVENT).json()
    assert receiver.wait(1)
    [delivery] = deliveries_settled(client, hook["id"])
    [got] = receiver.requests
    headers, body = got["headers"], got["body"]

    payload = Webhook(secret).verify(body, headers)  # the stock verifier, as a receiver uses it
    assert payload["event"]["id"] == event["id"]
    assert headers["webhook-id"] == payload["delivery_id"] == delivery["id"]
    assert headers["webhook-signature"].startswith("v1,")

    tampered = body.replace(b'"source":"door-1"', b'"source":"door-9"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):  # the timestamp is signed too
        Webhook(secret).verify(body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)})
    with pytest.raises(WebhookVerificationError, match="No matching signature"):  # and the id
        Webhook(secret).verify(body, {**headers, "webhook-id": "0" * 32})
    with pytest.raises(WebhookVerificationError, match="No matching signature"):  # under another webhook's secret
        Webhook(register(client, receiver.url)["secret"]).verify(body, headers)

    class SixMinutesLater(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(minutes=6)

    # the very delivery, replayed six minutes later: its timestamp is stale
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", SixMinutesLater)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, headers)
    monkeypatch.undo()

    # for one release, the legacy headers ride along, under the same secret and the same delivery id
    assert headers["x-faceshot-delivery"] == headers["webhook-id"]
    assert headers["x-faceshot-timestamp"] == headers["webhook-timestamp"]
    assert legacy_valid(headers, body, secret)
    assert [h["signature_format"] for h in client.get("/api/v1/webhooks").json()] == ["standard", "standard"]


def test_a_webhook_made_by_the_previous_version_keeps_the_legacy_headers(make_client, tmp_path, database_url):
    """A database at 0008 with a webhook as that version made it (a url-safe secret the spec's verifiers cannot
    decode): after the upgrade it is ``legacy``, and its deliveries carry the X-Faceshot-* headers only."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["sqlalchemy_url"] = database_url
    command.upgrade(cfg, "0008")
    receiver = Receiver()
    old_secret = "whsec_" + secrets.token_urlsafe(32)  # as the previous version made them
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO webhooks (id, collection, url, secret, created_at) "
                          "VALUES ('w1', 'default', :url, :secret, :at)"),
                     {"url": receiver.url, "secret": old_secret, "at": datetime.now(timezone.utc)})
    engine.dispose()

    client = make_client(tmp_path / "data", database_url=database_url, **ALLOW_LOOPBACK)  # migrates to head
    [hook] = client.get("/api/v1/webhooks").json()
    assert (hook["id"], hook["signature_format"]) == ("w1", "legacy")
    assert client.post("/api/v1/events", json=EVENT).status_code == 201
    assert receiver.wait(1)
    [delivery] = deliveries_settled(client, "w1")
    [got] = receiver.requests
    headers, body = got["headers"], got["body"]
    assert legacy_valid(headers, body, old_secret)
    assert headers["x-faceshot-delivery"] == json.loads(body)["delivery_id"] == delivery["id"]
    assert not [name for name in headers if name.startswith("webhook-")]
    with pytest.raises(WebhookVerificationError, match="Missing required headers"):
        Webhook(base64.b64encode(b"\0" * 32).decode()).verify(body, headers)
