"""Where recognition events go besides the log: one small interface for every output (webhooks, MQTT).

An event is queued for each sink in the event's own transaction, so none is lost to a crash between them; the sink
sends it later, from its own thread, so a slow receiver never delays recognition. A new output is one new module
implementing :class:`EventSink`, registered where the service is wired (app/service.py).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.core.tables import RecognitionEvent

# what happened to an event, as each output tells it: recorded once; then, if an admin says so, corrected ("not this
# person") or the correction undone, sent again so that a receiver can take back what it did with the first
RECORDED, CORRECTED, CORRECTION_UNDONE = "recorded", "corrected", "correction_undone"


class EventSink(Protocol):
    def queue(self, session: Session, event: RecognitionEvent, kind: str = RECORDED) -> None:
        """In the event's own transaction (or its correction's, with ``kind``): what this sink will send of it."""

    def forget(self, session: Session, events: Select, collection: str | None = None) -> None:
        """In a deletion's transaction: drop what it keeps for ``events`` (a select of their ids: past retention,
        or a deleted collection's) and, with ``collection``, that deleted collection's own configuration."""

    def start(self) -> None:
        """Begin sending (its own thread or loop)."""

    def wake(self) -> None:
        """Something was queued: send it now rather than at the next poll."""

    def stop(self) -> None:
        """Stop sending; what is queued stays queued for the next start."""
