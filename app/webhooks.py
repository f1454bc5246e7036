"""Webhooks: each recognition event POSTed to every registered URL, signed, retried, never in recognition's way.

A delivery row is queued with its event (:mod:`app.events`); a background thread per worker
sends what is due, claiming each row first (a conditional UPDATE, so two workers never send one
delivery twice), and retries a failure after 1 s, 2 s, 4 s… (at most 5 min) until
FACESHOT_WEBHOOK_MAX_ATTEMPTS, then marks it ``failed``. A slow or dead receiver costs that
thread its timeout, never a request.

What a receiver gets: ``POST <url>`` with the JSON ``{"delivery_id", "event"}`` and headers
``X-Faceshot-Delivery`` (the same id: deduplicate on it, retries repeat it),
``X-Faceshot-Timestamp`` (Unix seconds) and ``X-Faceshot-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` under the webhook's secret (shown once, when it is
created). Check the signature and that the timestamp is recent before trusting the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from . import audit, crud
from .core.config import Settings
from .errors import NotFound, ValidationFailed
from .events import event_dict
from .models import DEFAULT_COLLECTION, RecognitionEvent, Webhook, WebhookDelivery

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=90)  # a claimed delivery is someone's for this long (longer than any attempt)
MAX_BACKOFF_S = 300.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What ``X-Faceshot-Signature`` carries for this body (receivers compute the same to check it)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))


class Webhooks:
    def __init__(self, settings: Settings, sessions: sessionmaker):
        self.settings, self.sessions = settings, sessions
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._housekeeping = lambda: None

    # -- registration --------------------------------------------------------------------------
    def create(self, url: str, actor=None, collection: str = DEFAULT_COLLECTION) -> tuple[Webhook, str]:
        """A webhook for one collection's events."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise ValidationFailed("A webhook URL is an http:// or https:// URL with a host.", {"field": "url"})
        secret = "whsec_" + secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            crud.get_collection(session, collection)
            hook = Webhook(url=url, secret=secret, collection=collection)
            session.add(hook)
            session.flush()
            audit.record(session, actor, "webhook.create", collection=collection, target=hook.id,
                         details={"url": url})
            session.expunge(hook)
        return hook, secret

    def list(self, collection: str = DEFAULT_COLLECTION) -> list[dict]:
        with self.sessions() as session:
            hooks = session.scalars(select(Webhook).where(Webhook.collection == collection)
                                    .order_by(Webhook.created_at)).all()
            out = []
            for h in hooks:
                counts = dict(session.execute(select(WebhookDelivery.state, func.count())
                                              .where(WebhookDelivery.webhook_id == h.id)
                                              .group_by(WebhookDelivery.state)).all())
                out.append({"id": h.id, "url": h.url, "created_at": h.created_at, "collection": h.collection,
                            "deliveries": {s: int(counts.get(s, 0)) for s in ("pending", "delivered", "failed")}})
            return out

    def delete(self, hook_id: str, actor=None, collection: str = DEFAULT_COLLECTION) -> None:
        with self.sessions.begin() as session:
            hook = session.get(Webhook, hook_id)
            if hook is None or hook.collection != collection:
                raise NotFound(f"No webhook with id {hook_id}.", {"webhook_id": hook_id})
            audit.record(session, actor, "webhook.delete", collection=collection, target=hook_id,
                         details={"url": hook.url})
            session.delete(hook)

    def deliveries(self, hook_id: str, limit: int = 100,
                   collection: str = DEFAULT_COLLECTION) -> list[WebhookDelivery]:
        with self.sessions() as session:
            hook = session.get(Webhook, hook_id)
            if hook is None or hook.collection != collection:
                raise NotFound(f"No webhook with id {hook_id}.", {"webhook_id": hook_id})
            return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)
                                        .order_by(WebhookDelivery.next_attempt_at.desc()).limit(limit)))

    # -- delivery ------------------------------------------------------------------------------
    def start(self, housekeeping=lambda: None) -> None:
        """The worker's background thread: deliveries, and ``housekeeping`` (retention) between them."""
        self._housekeeping = housekeeping
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout_s + 5)

    def wake(self) -> None:
        """A new event here: send now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False) as http:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_due(http)
                    self._housekeeping()
                except Exception:  # the database away for a moment: try again at the next poll
                    log.warning("webhook delivery pass failed", exc_info=True)
                    sent = 0
                if not sent:
                    self._wake.wait(timeout=1.0)
                    self._wake.clear()

    def _claim(self, now: datetime, limit: int = 20) -> list[tuple[WebhookDelivery, Webhook, RecognitionEvent]]:
        claimed = []
        with self.sessions() as session:
            due = session.execute(select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
                                  .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
                                  .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
        for delivery_id, when in due:
            with self.sessions.begin() as session:
                won = session.execute(update(WebhookDelivery).where(
                    WebhookDelivery.id == delivery_id, WebhookDelivery.next_attempt_at == when,
                    WebhookDelivery.state == "pending").values(next_attempt_at=now + LEASE)).rowcount
                if won != 1:
                    continue  # another worker has it
                delivery = session.get(WebhookDelivery, delivery_id)
                hook, event = session.get(Webhook, delivery.webhook_id), session.get(RecognitionEvent,
                                                                                      delivery.event_id)
                session.expunge_all()
                claimed.append((delivery, hook, event))
        return claimed

    def deliver_due(self, http: httpx.Client) -> int:
        """Send every delivery that is due now; returns how many were attempted."""
        claimed = self._claim(datetime.now(timezone.utc))
        for delivery, hook, event in claimed:
            self._attempt(http, delivery, hook, event)
        return len(claimed)

    def _attempt(self, http: httpx.Client, delivery: WebhookDelivery, hook: Webhook, event: RecognitionEvent):
        body = json.dumps({"delivery_id": delivery.id, "event": event_dict(event)}, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "faceshot-webhooks",
                   "X-Faceshot-Delivery": delivery.id, "X-Faceshot-Timestamp": stamp,
                   "X-Faceshot-Signature": signature(hook.secret, stamp, body)}
        status, error = None, None
        try:
            response = http.post(hook.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = delivery.attempts + 1
        now = datetime.now(timezone.utc)
        values = {"attempts": attempts, "last_status": status, "last_error": error}
        if error is None:
            values.update(state="delivered", delivered_at=now)
        elif attempts >= self.settings.webhook_max_attempts:
            values.update(state="failed")
        else:
            values.update(next_attempt_at=now + timedelta(seconds=backoff_s(attempts)))
        with self.sessions.begin() as session:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values))
