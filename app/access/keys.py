"""API keys: stored as sha256 hashes, shown once; an admin key and recognition keys."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.access import audit
from app.access.audit import Actor
from app.core.config import Settings
from app.core.db import begin_write, get_collection
from app.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from app.core.inputs import clean_label
from app.core.tables import ApiKey

log = logging.getLogger(__name__)
ROLES = ("admin", "recognition")
ADMIN_KEY_FILE = "admin_key"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return "fs_" + secrets.token_urlsafe(32)


def display_prefix(secret: str) -> str:
    """What key listings show of a key: enough to tell keys apart, never more than a quarter of it."""
    return secret[: min(8, len(secret) // 4)]


def create_key(sessions: sessionmaker, name: str, role: str, secret: str | None = None,
               collection: str | None = None, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """A new key for ``role``, working in one ``collection`` (None: every collection)."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {ROLES}.", {"field": "role"})
    secret = secret or new_secret()
    with begin_write(sessions) as session:
        if collection is not None:
            get_collection(session, collection, lock="share")  # not in a collection being deleted
        key = ApiKey(name=clean_label(name.strip() or role, "name", 200), role=role, prefix=display_prefix(secret),
                     key_hash=hash_key(secret), collection=collection,
                     created_by_account=actor.id if actor is not None and actor.kind == "account" else None)
        session.add(key)
        session.flush()
        audit.record(session, actor, "key.create", collection=collection, target=key.id,
                     details={"name": key.name, "role": role})
    return key, secret


def authenticate(sessions: sessionmaker, secret: str | None, need_admin: bool,
                 collection: str | None = None, *, own_collection: bool = False) -> ApiKey:
    """The key, refused unless it may work in ``collection`` (None: a deployment-wide operation, which a key
    bound to one collection may not do). ``own_collection``: the operation works in the key's own collection,
    whichever it is (a CompreFace client's key names its service)."""
    if not secret:
        raise Unauthorized("Send an API key in the X-API-Key header.")
    with sessions() as session:
        key = session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("The API key is not valid.")
    if need_admin and key.role != "admin":
        raise Forbidden("This needs an admin key; recognition keys may only identify, verify and detect.")
    if not own_collection and key.collection is not None and key.collection != collection:
        raise Forbidden(f"This key works in collection {key.collection!r} only.",
                        {"key_collection": key.collection})
    return key


def list_keys(sessions: sessionmaker) -> list[ApiKey]:
    with sessions() as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def revoke_key(sessions: sessionmaker, key_id: str, actor: Actor | None = None) -> ApiKey:
    with sessions.begin() as session:
        active_admins = _lock_active_admins(session)
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"No API key with id {key_id}.", {"key_id": key_id})
        if key.role == "admin" and key.collection is None and key.revoked_at is None and active_admins <= 1:
            raise Conflict("This is the last admin key; create another admin key before revoking it.",
                           {"key_id": key_id})
        key.revoked_at = key.revoked_at or datetime.now(timezone.utc)
        audit.record(session, actor, "key.revoke", collection=key.collection, target=key.id,
                     details={"name": key.name, "role": key.role})
        return key


def revoke_keys_of_account(session, account_id: str, actor: Actor | None) -> int:
    """Revoke, in the caller's transaction, the keys an admin account made (it is being disabled or deleted: a
    key it made must not outlive its right to make one); how many were revoked."""
    made = session.scalars(select(ApiKey).where(ApiKey.created_by_account == account_id,
                                                ApiKey.revoked_at.is_(None))).all()
    for key in made:
        key.revoked_at = datetime.now(timezone.utc)
        audit.record(session, actor, "key.revoke", collection=key.collection, target=key.id,
                     details={"name": key.name, "role": key.role, "reason": "its account was disabled or deleted"})
    return len(made)


def _lock_active_admins(session) -> int:
    """How many admin keys are active, counted under a lock two revocations cannot both hold.

    A no-op UPDATE of those rows is the one statement that locks on both databases: on
    PostgreSQL it takes their row locks (and re-checks a row another transaction just revoked),
    on SQLite it takes the database's write lock before anything is read. A SELECT … FOR UPDATE
    is ignored by SQLite, which let two revocations of the last two admin keys both succeed.
    """
    active = (ApiKey.role == "admin") & ApiKey.revoked_at.is_(None) & ApiKey.collection.is_(None)
    session.execute(update(ApiKey).where(active).values(role=ApiKey.role))
    return len(session.execute(select(ApiKey.id).where(active)).all())


def _has_active_admin(sessions: sessionmaker) -> bool:
    with sessions() as session:
        return session.execute(
            select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None),
                                    ApiKey.collection.is_(None)).limit(1)).first() is not None


def ensure_admin_key(settings: Settings, sessions: sessionmaker) -> str | None:
    """Make sure an admin can get in: FACESHOT_ADMIN_KEY, else a key generated into <data_dir>/admin_key.

    Counts only *active* admin keys: when every admin key has been revoked, the configured
    key is made active again, or a new key is generated (replacing the old file), so a
    restart always recovers an admin path. Returns where the key can be read, for the
    start-up message (never the key itself).
    """
    if settings.admin_key:
        secret = settings.admin_key.get_secret_value()
        recover = not _has_active_admin(sessions)
        try:
            with sessions.begin() as session:
                key = session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).scalar_one_or_none()
                if key is None:
                    session.add(ApiKey(name="admin (FACESHOT_ADMIN_KEY)", role="admin",
                                       prefix=display_prefix(secret), key_hash=hash_key(secret)))
                elif recover and (key.revoked_at is not None or key.role != "admin"):
                    key.revoked_at, key.role = None, "admin"
                    log.warning("no admin key was active: FACESHOT_ADMIN_KEY is active again")
        except IntegrityError:
            pass  # another worker inserted it first
        return "FACESHOT_ADMIN_KEY"
    path = settings.data_dir / ADMIN_KEY_FILE
    if _has_active_admin(sessions):
        return str(path) if path.exists() else None
    secret = new_secret()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = settings.data_dir / f".{ADMIN_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    replaced = path.exists()
    create_key(sessions, "admin (generated at start)", "admin", secret)
    os.replace(tmp, path)  # the file always holds a key that works
    if replaced:
        log.warning("no admin key was active: generated a new admin API key into %s", path)
    else:
        log.warning("generated the first admin API key into %s", path)
    return str(path)


class Keys:
    """API keys as the routes and pages use them: one database's, through this object."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def create(self, name: str, role: str, *, collection: str | None = None,
               actor: Actor | None = None) -> tuple[ApiKey, str]:
        return create_key(self.sessions, name, role, collection=collection, actor=actor)

    def list(self) -> list[ApiKey]:
        return list_keys(self.sessions)

    def revoke(self, key_id: str, actor: Actor | None = None) -> ApiKey:
        return revoke_key(self.sessions, key_id, actor)

    def authenticate(self, secret: str | None, need_admin: bool, collection: str | None = None, *,
                     own_collection: bool = False) -> ApiKey:
        return authenticate(self.sessions, secret, need_admin, collection, own_collection=own_collection)
