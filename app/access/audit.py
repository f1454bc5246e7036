"""The audit log: who enrolled, changed, moved or deleted whom (and which keys, webhooks and collections), when.

An entry is written in the same transaction as the change it records, so the log has every
change that happened and none that did not. The actor is the API key (its id and its name at the
time), the admin page's password, or the command line. Photos and embeddings never go in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import page
from app.core.spreadsheet import csv_document
from app.core.tables import AuditEntry, as_utc, new_id

CSV_FIELDS = ("time", "actor", "actor_id", "collection", "action", "target", "details")


@dataclass(frozen=True)
class Actor:
    kind: str  # key | account | password | cli | system
    id: str | None
    name: str

    @classmethod
    def of_key(cls, key) -> Actor:
        return cls("key", key.id, key.name)


CLI = Actor("cli", None, "faceshot command line")
SYSTEM = Actor("system", None, "faceshot")
PASSWORD = Actor("password", None, "admin password")


def record(session: Session, actor: Actor | None, action: str, *, collection: str | None = None,
           target: str | None = None, details: dict | None = None) -> None:
    """Add one entry to the change's own transaction."""
    actor = actor or SYSTEM
    session.add(AuditEntry(id=new_id(), time=datetime.now(timezone.utc), actor_kind=actor.kind, actor_id=actor.id,
                           actor_name=actor.name[:200], collection=collection, action=action, target=target,
                           details=details or {}))


def entry_dict(e: AuditEntry) -> dict:
    return {"time": as_utc(e.time).isoformat(), "actor": {"kind": e.actor_kind, "id": e.actor_id, "name": e.actor_name},
            "collection": e.collection, "action": e.action, "target": e.target, "details": e.details}


class AuditLog:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def record(self, actor: Actor | None, action: str, **fields) -> None:
        """An entry of its own, for an action that changes nothing else (a sign-in)."""
        with self.sessions.begin() as session:
            record(session, actor, action, **fields)

    @staticmethod
    def _filtered(q, collection, action, since, until):
        if collection:
            q = q.where(AuditEntry.collection == collection)
        if action:
            q = q.where(AuditEntry.action == action)
        if since:
            q = q.where(AuditEntry.time >= since)
        if until:
            q = q.where(AuditEntry.time < until)
        return q

    def list(self, *, collection=None, action=None, since=None, until=None, limit=100, offset=0):
        with self.sessions() as session:
            q = self._filtered(select(AuditEntry), collection, action, since, until)
            rows, total = page(session, q, AuditEntry.time.desc(), AuditEntry.id, limit=limit, offset=offset)
            return [entry_dict(e) for e in rows], total

    def csv(self, *, collection=None, action=None, since=None, until=None) -> str:
        with self.sessions() as session:
            q = self._filtered(select(AuditEntry), collection, action, since, until)
            return csv_document(CSV_FIELDS, ([entry_dict(e)["time"], e.actor_name, e.actor_id or e.actor_kind,
                                              e.collection or "", e.action, e.target or "", e.details]
                                             for e in session.scalars(q.order_by(AuditEntry.time))))
