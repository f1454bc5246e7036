"""A bounded queue in front of the face pipeline: past its length a request is refused at once, not kept waiting.

A worker runs a few forward passes at once (its inference slots); every request beyond them waits. Unbounded,
160 waiting identifies made each answer take seconds and held a thread each. Bounded, the
request over the limit gets 503 ``overloaded`` with a ``Retry-After`` estimated from how
long recent photos took, before a byte of its body is read.
"""

from __future__ import annotations

import math
import threading
import time

from app.core.errors import Overloaded


class InferenceQueue:
    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_s = 1.0  # running mean of admit-to-release time (queueing included), for Retry-After

    @property
    def admitted(self) -> int:
        return self._admitted

    def admit(self) -> Slot:
        with self._lock:
            if self._admitted >= self.limit:
                wait = math.ceil(self._mean_s)  # a full queue drains in about one admitted request's time
                raise Overloaded(f"{self._admitted} photos are already waiting for the face pipeline; "
                                 "try again shortly.", {"queued": self._admitted, "limit": self.limit},
                                 retry_after=wait)
            self._admitted += 1
        return Slot(self)

    def _release(self, seconds: float) -> None:
        with self._lock:
            self._admitted -= 1
            self._mean_s = 0.9 * self._mean_s + 0.1 * seconds


class Slot:
    """One admitted request's place; released exactly once."""

    def __init__(self, queue: InferenceQueue):
        self._queue, self._t0, self._done = queue, time.monotonic(), False

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._queue._release(time.monotonic() - self._t0)
