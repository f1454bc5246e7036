"""Webhooks: each recognition event POSTed to every registered URL, signed, retried, never in recognition's way.

A delivery row is queued with its event (:mod:`app.live.events`); a background thread per worker sends what is due,
claiming each row first (a conditional UPDATE and a 90 s lease, so two workers never send one delivery twice), and
retries a failure after 1 s, 2 s, 4 s… (at most 5 min) until FACESHOT_WEBHOOK_MAX_ATTEMPTS, then marks it
``failed``. Up to :data:`CONCURRENCY` deliveries are in flight at once, one per webhook and at most half of them one
collection's, and FACESHOT_WEBHOOK_TIMEOUT_S bounds each attempt as a whole: a slow or dead receiver costs its own
deliveries that long, never a request and never another receiver's delivery. A collection has at most
:data:`MAX_PER_COLLECTION` webhooks.

Where a webhook may point: public addresses, and the private networks the operator lists in
FACESHOT_WEBHOOK_ALLOW_PRIVATE (loopback and link-local only where a listed network is made of them). The host is
checked at registration and resolved again for every attempt, which connects to the very address it checked (no
second lookup to rebind) under the registered name (Host header, TLS SNI and certificate). Redirects are not
followed. What ``…/deliveries`` says about a failure is one word of :data:`ERRORS`; the detail is in the server log.

What a receiver gets: ``POST <url>`` with the JSON ``{"delivery_id", "event"}``, signed as Standard Webhooks
(https://www.standardwebhooks.com) specifies, so any of its verifiers checks it (``Webhook(secret).verify(body,
headers)``): ``webhook-id`` (the delivery id: deduplicate on it, retries repeat it), ``webhook-timestamp`` (Unix
seconds, of this attempt) and ``webhook-signature: v1,<base64>``, the HMAC-SHA256 of ``<id>.<timestamp>.<body>``
keyed by the base64-decoded part of the webhook's secret after ``whsec_`` (the secret is shown once, when the
webhook is created). Check the signature and that the timestamp is recent before trusting the body.

The legacy headers, for one release: ``X-Faceshot-Delivery`` (the same id), ``X-Faceshot-Timestamp`` and
``X-Faceshot-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>`` keyed by the whole secret string.
A webhook's ``signature_format`` says which it gets: ``standard`` (every webhook created since: both sets of
headers) or ``legacy`` (created before; its url-safe secret is not one the spec's verifiers can decode, so it
gets the legacy headers only: remove it and add its URL again, with a new secret, to switch).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.access import audit
from app.core.config import WEBHOOK_LEASE_MARGIN_S, WEBHOOK_LEASE_S, Settings
from app.core.db import begin_write, get_collection
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.tables import DEFAULT_COLLECTION, RecognitionEvent, Webhook, WebhookDelivery
from app.live.events import queued_correction, sent_event_dict
from app.live.sinks import RECORDED

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=WEBHOOK_LEASE_S)  # a claimed delivery is one worker's for this long (see config)
MAX_BACKOFF_S = 300.0
MAX_URL_LENGTH = 2000
MAX_PER_COLLECTION = 10  # webhooks of one collection: each event costs a delivery to every one of them
CONCURRENCY = 8  # deliveries in flight per worker; one collection's at most half of them
SECRET_PREFIX = "whsec_"

# What `…/deliveries` says about an attempt that failed: a fixed vocabulary, so a collection admin learns whether
# their receiver works but never what answers at an address inside (no port-scan oracle); the log has the detail.
ERRORS = {
    "invalid_url": "the stored URL cannot be sent (registered before URLs were checked); not retried",
    "refused_address": "the host is, or now resolves to, an address webhooks may not reach",
    "dns_failed": "the host name does not resolve",
    "connect_failed": "no connection: refused, unreachable, or the TLS handshake or certificate failed",
    "no_response": "the connection closed or broke before the answer",
    "timeout": "no answer within FACESHOT_WEBHOOK_TIMEOUT_S",
    "http_error": "the receiver answered other than 2xx (redirects are not followed); last_status says what",
    # an allowed private network is the operator's LAN: why one of its receivers failed is for the log only
    "receiver_failed": "a receiver on an allowed private network did not answer 2xx",
    "internal_error": "preparing the delivery failed",
    "withheld": "recorded by an earlier version; its detail is withheld",
}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# kinds of address a listed network lets in only when it is made of that kind alone (127.0.0.1/32, not 0.0.0.0/0)
NAMED_ONLY = ("is_loopback", "is_link_local", "is_unspecified", "is_multicast")


class TooManyWebhooks(Conflict):
    """A collection already has MAX_PER_COLLECTION webhooks."""

    code = "too_many_webhooks"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the standard base64 of 32 random bytes (the spec asks 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


# Signed by hand, not with the `standardwebhooks` package: signing is the three lines below, and a runtime dependency
# for them is not worth it (its 1.0 pulled in attrs, python-dateutil, Deprecated and typing stubs; later releases
# none, but the image would still carry it). It is a test dependency: its verifier checks real deliveries.
def standard_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """What ``webhook-signature`` carries: ``v1,`` and the base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>``, keyed
    by the bytes the secret's base64 (after ``whsec_``) encodes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    digest = hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def legacy_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What ``X-Faceshot-Signature`` carries: the HMAC-SHA256 of ``<timestamp>.<body>`` keyed by the secret string."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(signature_format: str, secret: str, delivery_id: str, timestamp: str,
                   body: bytes) -> dict[str, str]:
    """The headers that sign one attempt: a ``standard`` webhook's Standard Webhooks headers and, for one release,
    the legacy ones beside them (receivers written for those keep working); a ``legacy`` webhook's legacy ones."""
    headers = {"X-Faceshot-Delivery": delivery_id, "X-Faceshot-Timestamp": timestamp,
               "X-Faceshot-Signature": legacy_signature(secret, timestamp, body)}
    if signature_format == "standard":
        headers = {"webhook-id": delivery_id, "webhook-timestamp": timestamp,
                   "webhook-signature": standard_signature(secret, delivery_id, timestamp, body), **headers}
    return headers


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))


# -- where a webhook may point ---------------------------------------------------------------------------------
def parse_url(url: str) -> httpx.URL:
    """The URL as httpx will send it, or ValidationFailed (reason ``invalid_url``)."""
    try:
        parsed = httpx.URL(url) if len(url) <= MAX_URL_LENGTH else None
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.raw_host \
            or not 0 < _port(parsed) < 65536:
        raise ValidationFailed("A webhook URL is an http:// or https:// URL with a host (and a port from 1 to "
                               f"65535), at most {MAX_URL_LENGTH} characters.",
                               {"field": "url", "reason": "invalid_url"})
    return parsed


def _carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one leads to (6to4, NAT64, the old compatible form)."""
    found = [address.sixtofour] if address.sixtofour is not None else []
    if address in NAT64 or address in IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _unmapped(address):
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address the kernel connects to."""
    return address.ipv4_mapped if address.version == 6 and address.ipv4_mapped is not None else address


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally reachable by the stdlib's registry, as is every IPv4 address it leads to."""
    address = _unmapped(address)
    carried = _carried_ipv4(address) if address.version == 6 else []
    # is_global alone lets multicast (224.0.0.1) and the reserved ::/8 forms (::7f00:1) through
    return address.is_global and not address.is_multicast and not address.is_reserved \
        and all(is_public(a) for a in carried)


class AddressPolicy:
    """Public addresses, and those in the operator's FACESHOT_WEBHOOK_ALLOW_PRIVATE networks."""

    def __init__(self, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]):
        self.allowed = allowed

    def permits(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        address = _unmapped(address)
        if is_public(address):
            return True
        kinds = [k for k in NAMED_ONLY if getattr(address, k)]
        return any(address.version == net.version and address in net
                   and all(getattr(net.network_address, k) and getattr(net.broadcast_address, k) for k in kinds)
                   for net in self.allowed)


def lookup(host: str, port: int) -> Future:
    """getaddrinfo in a thread of its own, so a caller can stop waiting (it has no timeout of its own)."""
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def resolve():
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            future.set_result([ipaddress.ip_address(info[4][0]) for info in infos])
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            future.set_exception(exc)

    threading.Thread(target=resolve, name="webhook-dns", daemon=True).start()
    return future


def _port(url: httpx.URL) -> int:
    return (443 if url.scheme == "https" else 80) if url.port is None else url.port


# -- one attempt -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A due delivery this worker holds until ``lease_until``."""

    delivery_id: str
    webhook_id: str
    collection: str
    event_id: str
    attempts: int
    lease_until: datetime


@dataclass(frozen=True)
class Outcome:
    error: str | None  # one of ERRORS; None: delivered
    status: int | None = None
    detail: str = ""  # for the server log only
    public: bool = True  # every address the host resolved to is public
    final: bool = False  # retrying cannot help

    def shown(self) -> tuple[str | None, int | None]:
        """What ``…/deliveries`` may say: causes and statuses of public receivers only."""
        if self.public:
            return self.error, self.status
        if self.error in (None, "refused_address"):  # decided before any connection
            return self.error, None
        return "receiver_failed", None


class Webhooks:
    """The webhook event sink (:class:`app.live.sinks.EventSink`): a delivery per webhook of the event's collection,
    sent by this worker's delivery thread, which also runs ``housekeeping`` (retention) between passes."""

    def __init__(self, settings: Settings, sessions: sessionmaker, housekeeping: Callable[[], object] = lambda: None):
        self.settings, self.sessions = settings, sessions
        self.policy = AddressPolicy(settings.webhook_allowed_networks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nudge: asyncio.Event | None = None
        self._tls = None
        self._housekeeping = housekeeping

    # -- the event sink ------------------------------------------------------------------------
    def queue(self, session: Session, event: RecognitionEvent, kind: str = RECORDED) -> None:
        """A delivery for each webhook of the event's collection, in the event's own transaction (or its
        correction's: the body's ``type`` says which)."""
        correction = queued_correction(event, kind)  # as now: it may be undone before it is sent
        for hook_id in session.scalars(select(Webhook.id).where(Webhook.collection == event.collection)):
            session.add(WebhookDelivery(webhook_id=hook_id, event_id=event.id, kind=kind, correction=correction))

    def forget(self, session: Session, events: Select, collection: str | None = None) -> None:
        """Deliveries of ``events``; with ``collection``, its webhooks and their deliveries too."""
        doomed = WebhookDelivery.event_id.in_(events)
        if collection is not None:
            hooks = select(Webhook.id).where(Webhook.collection == collection)
            doomed = doomed | WebhookDelivery.webhook_id.in_(hooks)
        session.execute(delete(WebhookDelivery).where(doomed))
        if collection is not None:
            session.execute(delete(Webhook).where(Webhook.collection == collection))

    # -- registration --------------------------------------------------------------------------
    def check_url(self, url: str) -> httpx.URL:
        """The URL if webhooks may send to it: httpx parses it, and its host is, or resolves to, addresses the
        policy permits. A name that does not resolve now is taken: every attempt resolves and checks it again."""
        parsed = parse_url(url)
        try:
            addresses = lookup(parsed.raw_host.decode("ascii"), _port(parsed)).result(self.settings.webhook_timeout_s)
        except (OSError, TimeoutError):
            return parsed
        if not all(self.policy.permits(a) for a in addresses):
            raise ValidationFailed("The webhook URL's host is, or resolves to, an address webhooks may not reach: "
                                   "public addresses only, and the private networks the operator lists in "
                                   "FACESHOT_WEBHOOK_ALLOW_PRIVATE.", {"field": "url", "reason": "refused_address"})
        return parsed

    def create(self, url: str, actor=None, collection: str = DEFAULT_COLLECTION) -> tuple[Webhook, str]:
        """A webhook for one collection's events, at most MAX_PER_COLLECTION of them."""
        self.check_url(url)
        secret = new_secret()
        limit = MAX_PER_COLLECTION
        with begin_write(self.sessions) as session:
            # the collection's row locked (PostgreSQL; SQLite's write lock comes first): two registrations at once
            # cannot both pass the cap, and none lands in a collection being deleted
            get_collection(session, collection, lock="exclusive")
            hook = Webhook(url=url, secret=secret, signature_format="standard", collection=collection)
            session.add(hook)
            session.flush()
            if session.scalar(select(func.count()).select_from(Webhook)
                              .where(Webhook.collection == collection)) > limit:
                raise TooManyWebhooks(f"The collection {collection!r} has {limit} webhooks, the most it may "
                                      "have; remove one first.",
                                      {"collection": collection, "limit": limit})
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
                            "signature_format": h.signature_format,
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

    def deliveries(self, hook_id: str, limit: int = 100, collection: str = DEFAULT_COLLECTION) -> list[dict]:
        """The latest deliveries, newest first; an error text stored by an earlier version reads ``withheld``."""
        with self.sessions() as session:
            hook = session.get(Webhook, hook_id)
            if hook is None or hook.collection != collection:
                raise NotFound(f"No webhook with id {hook_id}.", {"webhook_id": hook_id})
            rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)
                                   .order_by(WebhookDelivery.next_attempt_at.desc()).limit(limit))
            out = []
            for d in rows:
                legacy = d.last_error is not None and d.last_error not in ERRORS
                out.append({"id": d.id, "event_id": d.event_id, "state": d.state, "attempts": d.attempts,
                            "next_attempt_at": d.next_attempt_at, "delivered_at": d.delivered_at,
                            "last_error": "withheld" if legacy else d.last_error,
                            "last_status": None if legacy else d.last_status})
            return out

    # -- delivery ------------------------------------------------------------------------------
    def start(self) -> None:
        """The worker's background thread: deliveries, and ``housekeeping`` (retention) between them."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.webhook_timeout_s + 5)

    def wake(self) -> None:
        """A new event here: send now rather than at the next poll."""
        loop, nudge = self._loop, self._nudge
        if loop is not None and nudge is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just ended
                loop.call_soon_threadsafe(nudge.set)

    def deliver_due(self, http: object = None) -> int:
        """One pass outside the background thread (tests, tools): send what is due now, as the thread would, and
        wait for it; returns how many were attempted. ``http`` is not used: each attempt connects on its own to
        the address it checked."""
        async def one_pass() -> int:
            claims = await asyncio.to_thread(self._claim, datetime.now(timezone.utc), {}, CONCURRENCY)
            await asyncio.gather(*(self._deliver(c) for c in claims))
            return len(claims)

        return asyncio.run(one_pass())

    async def _serve(self) -> None:
        self._nudge = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        flying: dict[asyncio.Task, Claim] = {}

        def landed(task: asyncio.Task) -> None:
            flying.pop(task, None)
            self._nudge.set()  # a slot is free

        while not self._stop.is_set():
            self._nudge.clear()
            slots = CONCURRENCY - len(flying)
            try:
                if slots > 0:
                    busy = {c.webhook_id: c.collection for c in flying.values()}
                    for claim in await asyncio.to_thread(self._claim, datetime.now(timezone.utc), busy, slots):
                        task = asyncio.create_task(self._deliver(claim))
                        flying[task] = claim
                        task.add_done_callback(landed)
                await asyncio.to_thread(self._housekeeping)
            except Exception:  # the database away for a moment: try again at the next poll
                log.warning("webhook delivery pass failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a retry falls due, or a slot frees, or an event arrives
                    await self._nudge.wait()
        if flying:
            await asyncio.wait(flying)  # each ends within its deadline

    def _claim(self, now: datetime, busy: dict[str, str], slots: int) -> list[Claim]:
        """Up to ``slots`` due deliveries, the oldest of each webhook not already in flight (``busy``: webhook id ->
        collection), at most half of CONCURRENCY of one collection's at once."""
        per_collection = Counter(busy.values())
        most = max(1, CONCURRENCY // 2)
        query = (select(WebhookDelivery.webhook_id, Webhook.collection)
                 .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                 .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
                 .group_by(WebhookDelivery.webhook_id, Webhook.collection)
                 .order_by(func.min(WebhookDelivery.next_attempt_at)))
        if busy:
            query = query.where(WebhookDelivery.webhook_id.not_in(list(busy)))
        with self.sessions() as session:
            due = session.execute(query).all()
        claimed = []
        for hook_id, collection in due:
            if len(claimed) >= slots:
                break
            if per_collection[collection] >= most:
                continue
            if (claim := self._claim_one(hook_id, collection, now)) is not None:
                claimed.append(claim)
                per_collection[collection] += 1
        return claimed

    def _claim_one(self, hook_id: str, collection: str, now: datetime) -> Claim | None:
        with self.sessions.begin() as session:
            row = session.execute(select(WebhookDelivery.id, WebhookDelivery.next_attempt_at, WebhookDelivery.event_id,
                                         WebhookDelivery.attempts)
                                  .where(WebhookDelivery.webhook_id == hook_id, WebhookDelivery.state == "pending",
                                         WebhookDelivery.next_attempt_at <= now)
                                  .order_by(WebhookDelivery.next_attempt_at).limit(1)).first()
            if row is None:
                return None
            lease_until = now + LEASE
            won = session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == row.id, WebhookDelivery.next_attempt_at == row.next_attempt_at,
                WebhookDelivery.state == "pending").values(next_attempt_at=lease_until)).rowcount
        if won != 1:
            return None  # another worker has it
        return Claim(row.id, hook_id, collection, row.event_id, row.attempts, lease_until)

    async def _deliver(self, claim: Claim) -> None:
        """One attempt, recorded whatever happens: a delivery that cannot even be prepared fails like any other."""
        try:
            job = await asyncio.to_thread(self._prepare, claim)
            if job is None:
                return  # its webhook or event was deleted meanwhile, and the delivery with them
            outcome = await self._send(claim, *job)
        except Exception as exc:
            log.exception("webhook %s, delivery %s: could not be prepared or sent", claim.webhook_id,
                          claim.delivery_id)
            outcome = Outcome("internal_error", detail=type(exc).__name__)
        if outcome.error is not None:
            log.warning("webhook %s, delivery %s, attempt %d: %s (%s)", claim.webhook_id, claim.delivery_id,
                        claim.attempts + 1, outcome.error, outcome.detail)
        try:
            await asyncio.to_thread(self._record, claim, outcome)
        except Exception:
            log.warning("webhook delivery %s: its result was not recorded; it is tried again after its lease",
                        claim.delivery_id, exc_info=True)

    def _prepare(self, claim: Claim) -> tuple[str, bytes, dict] | None:
        with self.sessions() as session:
            hook = session.get(Webhook, claim.webhook_id)
            event = session.get(RecognitionEvent, claim.event_id)
            delivery = session.get(WebhookDelivery, claim.delivery_id)
            if hook is None or event is None or delivery is None:
                return None
            sent = sent_event_dict(event, delivery.kind, delivery.correction)
            body = json.dumps({"delivery_id": claim.delivery_id, "type": f"event.{delivery.kind}", "event": sent},
                              separators=(",", ":")).encode()
            url, secret, signature_format = hook.url, hook.secret, hook.signature_format
        headers = {"Content-Type": "application/json", "User-Agent": "faceshot-webhooks",
                   **signed_headers(signature_format, secret, claim.delivery_id, str(int(time.time())), body)}
        return url, body, headers

    async def _send(self, claim: Claim, url_text: str, body: bytes, headers: dict) -> Outcome:
        """Resolve, check, connect to the checked address and read the answer's status, all within the deadline."""
        try:
            url = parse_url(url_text)
        except ValidationFailed:
            return Outcome("invalid_url", detail="the stored URL does not parse", final=True)
        # the attempt ends inside its lease, whatever the settings (they are checked for this too)
        left = (claim.lease_until - datetime.now(timezone.utc)).total_seconds() - WEBHOOK_LEASE_MARGIN_S
        deadline = min(self.settings.webhook_timeout_s, left)
        host, public = url.raw_host.decode("ascii"), True
        where = f"{url.netloc.decode('ascii')}"  # never the path or query: they may carry a token
        try:
            async with asyncio.timeout(deadline):
                addresses = await asyncio.wrap_future(lookup(host, _port(url)))
                public = all(is_public(a) for a in addresses)
                if refused := [a for a in addresses if not self.policy.permits(a)]:
                    return Outcome("refused_address", detail=f"{where} resolves to {refused[0]}", public=public)
                for i, address in enumerate(addresses):
                    where = f"{url.netloc.decode('ascii')} at {address}"
                    try:
                        status = await self._post(url, address, body, headers, deadline)
                        break
                    except httpx.ConnectError:
                        if i == len(addresses) - 1:
                            raise  # else the name's next address
        except (TimeoutError, httpx.TimeoutException):
            return Outcome("timeout", detail=f"{where}: no complete answer within {deadline:g} s", public=public)
        except socket.gaierror as exc:
            return Outcome("dns_failed", detail=f"{where}: {exc}")
        except httpx.ConnectError as exc:
            return Outcome("connect_failed", detail=f"{where}: ConnectError: {exc}", public=public)
        except httpx.TransportError as exc:
            return Outcome("no_response", detail=f"{where}: {type(exc).__name__}: {exc}", public=public)
        if 200 <= status < 300:
            return Outcome(None, status, public=public)
        return Outcome("http_error", status, detail=f"{where} answered {status}", public=public)

    async def _post(self, url: httpx.URL, address, body: bytes, headers: dict, timeout: float) -> int:
        """POST to ``address`` as if to ``url``'s host; the answer's status (its body is not read)."""
        if self._tls is None:  # SSL_CERT_FILE or SSL_CERT_DIR, if set: a LAN receiver's own CA
            self._tls = httpx.create_ssl_context()
        # trust_env off: a proxy from the environment would make its own lookup, after the check
        async with httpx.AsyncClient(verify=self._tls, trust_env=False, follow_redirects=False,
                                     timeout=timeout) as http:
            request = http.build_request("POST", url.copy_with(host=str(address)), content=body,
                                         headers={**headers, "Host": url.netloc.decode("ascii")},
                                         extensions={"sni_hostname": url.raw_host.decode("ascii")})
            response = await http.send(request, stream=True)
            await response.aclose()
            return response.status_code

    def _record(self, claim: Claim, outcome: Outcome) -> None:
        attempts = claim.attempts + 1
        now = datetime.now(timezone.utc)
        error, status = outcome.shown()
        values = {"attempts": attempts, "last_status": status, "last_error": error}
        if outcome.error is None:
            values.update(state="delivered", delivered_at=now)
        elif outcome.final or attempts >= self.settings.webhook_max_attempts:
            values.update(state="failed")
        else:
            values.update(next_attempt_at=now + timedelta(seconds=backoff_s(attempts)))
        with self.sessions.begin() as session:
            # only while the lease is this worker's: after it, the delivery is someone else's to record
            won = session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == claim.delivery_id, WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at == claim.lease_until).values(**values)).rowcount
        if won != 1:
            log.warning("webhook delivery %s: its lease ended before its result was recorded", claim.delivery_id)
