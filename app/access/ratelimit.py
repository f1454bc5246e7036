"""Request rate limits per API key, and a brake on guessing keys.

Counting is the `limits` library's (a moving window): in this process's memory by
default, or in Redis/Memcached/MongoDB named by ``FACESHOT_RATE_LIMIT_STORAGE`` so
that several workers or replicas share one count. With memory storage and N
workers a key may make up to N times its limit.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import RateLimited, ValidationFailed


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
        self._window = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def _refuse(self, item: RateLimitItem, *ids: str, message: str) -> None:
        reset = self._window.get_window_stats(item, *ids).reset_time
        raise RateLimited(message, {"limit": str(item)}, retry_after=math.ceil(reset - time.time()))

    def hit_key(self, key_id: str) -> None:
        """Count one request for ``key_id``; 429 once any of its limits is spent."""
        for item in self.per_key:
            if not self._window.hit(item, "key", key_id):
                self._refuse(item, "key", key_id, message="Too many requests for this API key; slow down.")

    def failures_exceeded(self, client: str) -> bool:
        return any(not self._window.test(item, "auth-failure", client) for item in self.failed_auth)

    def has_failures(self, client: str) -> bool:
        """Whether ``client`` failed at all within the brake's windows."""
        return any(self._window.get_window_stats(item, "auth-failure", client).remaining < item.amount
                   for item in self.failed_auth)

    def check_failures(self, client: str) -> None:
        """For a credential that failed: 429 instead of 401 once the address has sent too many wrong ones
        (valid keys are never checked against this: a flood of wrong ones cannot lock them out)."""
        for item in self.failed_auth:
            if not self._window.test(item, "auth-failure", client):
                self._refuse(item, "auth-failure", client,
                             message="Too many requests with a wrong or missing API key from this address.")

    def record_failure(self, client: str) -> None:
        for item in self.failed_auth:
            self._window.hit(item, "auth-failure", client)
