"""Engine, sessions and migrations; the database a process opened, and whether its file is still there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.core.errors import NotFound
from app.core.tables import Collection

ROOT = Path(__file__).resolve().parents[2]


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_owner_only(path: Path) -> None:
    """The SQLite file, readable by its owner alone: created so, or tightened if we own it (SQLite's
    -wal and -shm files copy the database file's mode, so they are owner-only too)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for each in (path, *path.parent.glob(path.name + "-*")):
            try:
                if each.stat().st_uid == os.getuid() and each.stat().st_mode & 0o077:
                    each.chmod(0o600)
            except OSError:
                pass


def make_engine(url: str) -> Engine:
    # hide_parameters: an error or echo never writes a bound value (a name, a key hash) into the logs
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            create_owner_only(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers in other workers don't block writers
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def begin_write(sessions: sessionmaker) -> Iterator[Session]:
    """A transaction that will write, holding the write lock from its first statement.

    SQLite otherwise starts the transaction at the first INSERT, so a check read before it (does the collection
    still exist?) could be stale by the time the row is written: a collection deleted meanwhile kept the rows
    created in it. ``BEGIN IMMEDIATE`` makes check and write one step (SQLite has one writer anyway). PostgreSQL
    takes row locks instead (:func:`get_collection`'s ``lock``).
    """
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        yield session


class Database:
    """The database one process opened: its engine (owned here, disposed by :meth:`close`) and sessions.

    For SQLite it also remembers which file it opened: a file deleted or replaced under a
    running service would go on taking writes into a ghost inode that no restart sees again.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.file = sqlite_file(url)
        self._file_id = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.file is None:
            return None
        try:
            st = self.file.stat()
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def file_problem(self) -> str | None:
        """Why the database file is not the one this process opened (None: it is, or not SQLite)."""
        if self.file is None:
            return None
        now = self._identity()
        if now is None:
            return "database_file_missing"
        if now != self._file_id:
            return "database_file_replaced"
        return None

    def check_writable(self) -> None:
        """Refuse a write into a SQLite file that was removed or replaced under the running service: it would go
        into a ghost inode no restart sees again, and be acknowledged."""
        from app.core.errors import StorageUnavailable

        if problem := self.file_problem():
            raise StorageUnavailable("The database file was removed or replaced while the service ran; nothing was "
                                     "stored. Restart the service.", {"reason": problem})

    def reachable(self) -> bool:
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.engine.dispose()


def upgrade_database(url: str) -> None:
    """Apply Alembic migrations up to head (creates the schema on a new database)."""
    from alembic import command
    from alembic.config import Config

    if (path := sqlite_file(url)) is not None:
        create_owner_only(path)  # before Alembic's own engine creates it with the umask's mode
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["sqlalchemy_url"] = url
    with _migration_lock(url):
        command.upgrade(cfg, "head")


MIGRATION_LOCK_ID = 0x66616365  # "face": the PostgreSQL advisory lock faceshot's migrations hold


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """One process at a time migrates a database, so replicas may start together on a new one.

    Without it, two processes both see an empty schema, both create the tables, and one dies
    with "table already exists" (seen in 2 of 3 tries of three processes, on SQLite and on PostgreSQL).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        finally:
            engine.dispose()
        return
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        try:
            import fcntl

            handle = open(f"{parsed.database}.migrate-lock", "a")
        except (ImportError, OSError):  # no POSIX locks, or a read-only folder: migrate unguarded
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield
        return
    yield


def page(session: Session, q, *order_by, limit: int, offset: int) -> tuple[list, int]:
    """One page of a query's rows in ``order_by``, and how many rows the whole query has."""
    total = session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    return list(session.scalars(q.order_by(*order_by).limit(limit).offset(offset)).all()), int(total)


def get_collection(session: Session, name: str, lock: str | None = None) -> Collection:
    """The collection, or NotFound (SQLite keeps no foreign key to it: this is the check).

    ``lock`` (PostgreSQL; SQLite's write lock is :func:`app.core.db.begin_write`'s): ``"share"`` for a write that
    creates something in it, ``"exclusive"`` for deleting it (or counting what is in it before adding); the two
    exclude each other until commit, so nothing is created in a collection being deleted, and a delete waits for
    what is being created in it.
    """
    query = select(Collection).where(Collection.name == name)
    if lock is not None:
        query = query.with_for_update(key_share=lock == "share")
    found = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if found is None:
        raise NotFound(f"No collection named {name!r}.", {"collection": name})
    return found
