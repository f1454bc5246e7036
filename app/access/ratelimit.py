"""Request rate limits per API key, and a brake on guessing keys.

Counting is the `limits` library's (a moving window): in this process's memory by
default, or in Redis/Memcached/MongoDB named by ``FACESHOT_RATE_LIMIT_STORAGE`` so
that several workers or replicas share one count. With memory storage and N
workers a key may make up to N times its limit.

A shared store that stops answering must not stop the door: each check then counts in this process's memory (a
warning says so) and the shared store is tried again after :data:`RETRY_SHARED_S`; Redis is asked with a short
timeout, so a vanished host costs a second, not a hung request.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import RateLimited, ValidationFailed

log = logging.getLogger(__name__)
RETRY_SHARED_S = 30.0
STORE_TIMEOUT_S = 1.0


def _parse(spec: str, setting: str) -> list[RateLimitItem]:
    if not spec.strip() or spec.strip().lower() == "off":
        return []
    try:
        return parse_many(spec)
    except ValueError as exc:
        raise ValidationFailed(f"{setting} is not a rate like '1200/minute': {spec!r}") from exc


class RateLimiter:
    def __init__(self, per_key: str, failed_auth: str, storage_uri: str = "memory://"):
        self.per_key = _parse(per_key, "FACESHOT_RATE_LIMIT")
        self.failed_auth = _parse(failed_auth, "FACESHOT_AUTH_FAILURE_LIMIT")
        shared = storage_uri.split(":", 1)[0] != "memory"
        options = {"socket_timeout": STORE_TIMEOUT_S, "socket_connect_timeout": STORE_TIMEOUT_S} \
            if storage_uri.startswith(("redis://", "rediss://")) else {}
        self._shared = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._local = MovingWindowRateLimiter(storage_from_string("memory://")) if shared else self._shared
        self._shared_down_until = 0.0

    def _ask(self, method: str, *args):
        """``method`` of the shared window, or of this process's while the shared store is not answering."""
        if self._local is not self._shared and time.monotonic() >= self._shared_down_until:
            try:
                return getattr(self._shared, method)(*args)
            except Exception as exc:  # the store's client raises its own errors (redis: ConnectionError, ...)
                log.warning("rate-limit store unavailable (%s: %s): counting in this process for %.0f s",
                            type(exc).__name__, exc, RETRY_SHARED_S)
                self._shared_down_until = time.monotonic() + RETRY_SHARED_S
        return getattr(self._local, method)(*args)

    def _refuse(self, item: RateLimitItem, *ids: str, message: str) -> None:
        reset = self._ask("get_window_stats", item, *ids).reset_time
        raise RateLimited(message, {"limit": str(item)}, retry_after=math.ceil(reset - time.time()))

    def hit_key(self, key_id: str) -> None:
        """Count one request for ``key_id``; 429 once any of its limits is spent."""
        for item in self.per_key:
            if not self._ask("hit", item, "key", key_id):
                self._refuse(item, "key", key_id, message="Too many requests for this API key; slow down.")

    def failures_exceeded(self, client: str) -> bool:
        return any(not self._ask("test", item, "auth-failure", client) for item in self.failed_auth)

    def has_failures(self, client: str) -> bool:
        """Whether ``client`` failed at all within the brake's windows."""
        return any(self._ask("get_window_stats", item, "auth-failure", client).remaining < item.amount
                   for item in self.failed_auth)

    def check_failures(self, client: str) -> None:
        """For a credential that failed: 429 instead of 401 once the address has sent too many wrong ones
        (valid keys are never checked against this: a flood of wrong ones cannot lock them out)."""
        for item in self.failed_auth:
            if not self._ask("test", item, "auth-failure", client):
                self._refuse(item, "auth-failure", client,
                             message="Too many requests with a wrong or missing API key from this address.")

    def record_failure(self, client: str) -> None:
        for item in self.failed_auth:
            self._ask("hit", item, "auth-failure", client)
