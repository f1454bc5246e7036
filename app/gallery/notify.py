"""Gallery changes announced by PostgreSQL (LISTEN/NOTIFY), so a search costs no database round trip when nothing
changed.

Every gallery write sends ``pg_notify`` in its own transaction (delivered when, and only if, it commits). Each
process listens on one dedicated connection; a notification (or anything that makes the listener unsure: start,
reconnect) sets a flag, and the next search checks the gallery version as before (:mod:`app.gallery.sync`). While the
listener is not connected the version check runs before every search, as without notifications, so a lost
connection costs latency, never staleness. SQLite has no notifications: there the version check is the protocol.

The channel carries the deployment's instance id, so deployments sharing one PostgreSQL (schemas of one database)
do not wake each other.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.core.tables import DeploymentIdentity

log = logging.getLogger(__name__)
RECONNECT_S = (0.5, 1, 2, 5, 10)


def channel_of(instance_id: str) -> str:
    return f"faceshot_gallery_{instance_id[:32]}"


class GalleryNotifications:
    """One process's listener: :meth:`changed` says whether the gallery may have changed since it was last asked."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._changed = threading.Event()
        self._changed.set()  # nothing is known until the listener runs
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with Session(engine) as session:  # bound before any service is built (app/core/instance.py)
            instance = session.execute(select(DeploymentIdentity.instance_id)
                                       .where(DeploymentIdentity.id == 1)).scalar()
        self.channel = channel_of(instance or "unbound")

    @staticmethod
    def available(engine: Engine) -> bool:
        return engine.dialect.name == "postgresql"

    def start(self) -> None:
        """Listen (a serving process; a command that only writes announces without listening)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="gallery-notify", daemon=True)
            self._thread.start()

    def mark(self) -> None:
        """A version check that failed: the next search checks again."""
        self._changed.set()

    def stop(self) -> None:
        self._stop.set()
        self._listening = False
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None

    # -- the writer's side: in the write's own transaction -----------------------------------------
    def announce(self, session: Session, version: int) -> None:
        session.execute(text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": self.channel, "payload": str(version)})

    # -- the reader's side ---------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self._listening

    def changed(self) -> bool:
        """True (and the flag cleared) when a version check is due: a notification came, or the listener is not
        connected. Cleared *before* the caller checks, so a change committed during its check is not lost."""
        if not self._listening:
            return True
        if self._changed.is_set():
            self._changed.clear()
            return True
        return False

    def _conninfo(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _listen(self) -> None:
        """Its own connection (not one of the pool's): LISTEN, then wait for notifications; reconnect with backoff."""
        import psycopg

        attempt = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._changed.set()  # what was missed before LISTEN: one version check catches it
                    self._listening, attempt = True, 0
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._changed.set()
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("gallery notifications: no listening connection (%s); checking the version before "
                                "every search until it is back", exc)
            finally:
                self._listening = False
                self._changed.set()
            self._stop.wait(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1
