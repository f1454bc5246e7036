"""One worker at a time: a named lease in the database that a worker takes, renews, and loses when it stops renewing.

Some jobs must run in one place however many workers (or hosts) serve: the MQTT connection is one (its last will
says "offline" when its holder dies, and events leave in one order). The database all workers share already
decides; a lease row is taken with one conditional write, so two workers can never both believe they hold it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.core.tables import WorkerLease


class Lease:
    def __init__(self, sessions: sessionmaker, name: str, holder: str, ttl_s: float):
        self.sessions, self.name, self.holder, self.ttl = sessions, name, holder, timedelta(seconds=ttl_s)

    def acquire(self) -> bool:
        """Take the lease, or renew it if this holder has it; False while another holder's has not expired."""
        now = datetime.now(timezone.utc)
        with self.sessions.begin() as session:
            taken = session.execute(
                update(WorkerLease).where(WorkerLease.name == self.name,
                                          or_(WorkerLease.holder == self.holder, WorkerLease.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.ttl)).rowcount
        if taken:
            return True
        try:
            with self.sessions.begin() as session:
                session.execute(insert(WorkerLease).values(name=self.name, holder=self.holder,
                                                           expires_at=now + self.ttl))
            return True
        except IntegrityError:  # the row exists and is someone else's, or another worker inserted it first
            return False

    def release(self) -> None:
        """Give it up now (a clean stop), so another worker need not wait for it to expire."""
        with self.sessions.begin() as session:
            session.execute(delete(WorkerLease).where(WorkerLease.name == self.name,
                                                      WorkerLease.holder == self.holder))
