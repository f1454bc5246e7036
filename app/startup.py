"""What a process does before it serves, in one order: data directory, schema, the binding of the two, an admin path.

``faceshot serve`` runs it once before its workers start (so they never race for the
schema or the first key), each worker and each CLI command runs it again (it is
idempotent), and nothing else creates these things.
"""

from __future__ import annotations

import logging
import os

from app.access.keys import ensure_admin_key
from app.core.config import Settings
from app.core.db import Database, upgrade_database
from app.core.instance import bind_data_dir

log = logging.getLogger(__name__)


def make_private_dir(path) -> None:
    """Create the data directory owner-only (0700), and tighten an existing one we own."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass  # a mount we may not change; the files inside are owner-only anyway


def prepare_deployment(settings: Settings) -> tuple[Database, str | None]:
    """The open database, and where the admin key can be read (for the start-up message; never the key)."""
    make_private_dir(settings.data_dir)
    upgrade_database(settings.sqlalchemy_url)
    db = Database(settings.sqlalchemy_url)
    try:
        bind_data_dir(settings.data_dir, settings.images_dir, db.sessions, settings.database_label)
        where = ensure_admin_key(settings, db.sessions)
    except BaseException:
        db.close()
        raise
    return db, where
