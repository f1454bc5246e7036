"""API keys: stored as sha256 hashes, shown once; an admin key and recognition keys."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from models.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed

from .core.config import Settings
from .models import ApiKey

log = logging.getLogger(__name__)
ROLES = ("admin", "recognition")
ADMIN_KEY_FILE = "admin_key"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return "fs_" + secrets.token_urlsafe(32)


def create_key(sessions: sessionmaker, name: str, role: str, secret: str | None = None) -> tuple[ApiKey, str]:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {ROLES}.", {"field": "role"})
    secret = secret or new_secret()
    with sessions.begin() as session:
        key = ApiKey(name=name.strip() or role, role=role, prefix=secret[:8], key_hash=hash_key(secret))
        session.add(key)
    return key, secret


def authenticate(sessions: sessionmaker, secret: str | None, need_admin: bool) -> ApiKey:
    if not secret:
        raise Unauthorized("Send an API key in the X-API-Key header.")
    with sessions() as session:
        key = session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("The API key is not valid.")
    if need_admin and key.role != "admin":
        raise Forbidden("This needs an admin key; recognition keys may only identify, verify and detect.")
    return key


def list_keys(sessions: sessionmaker) -> list[ApiKey]:
    with sessions() as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def revoke_key(sessions: sessionmaker, key_id: str) -> ApiKey:
    with sessions.begin() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"No API key with id {key_id}.", {"key_id": key_id})
        if key.role == "admin" and key.revoked_at is None and _active_admins(session) <= 1:
            # Nothing could mint an admin key afterwards: start-up generates one only when none was ever made.
            raise Conflict("This is the last admin key; create another admin key before revoking it.",
                           {"key_id": key_id})
        key.revoked_at = key.revoked_at or datetime.now(timezone.utc)
        return key


def _active_admins(session) -> int:
    # FOR UPDATE: two concurrent revocations on PostgreSQL cannot both see "another admin is left".
    rows = session.execute(
        select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).with_for_update()
    ).all()
    return len(rows)


def ensure_admin_key(settings: Settings, sessions: sessionmaker) -> str | None:
    """The first admin key: FACESHOT_ADMIN_KEY, else generated once into <data_dir>/admin_key.

    Returns where the key can be read, for the start-up message (never the key itself).
    """
    if settings.admin_key:
        try:
            with sessions.begin() as session:
                if session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(settings.admin_key))).first() is None:
                    session.add(ApiKey(name="admin (FACESHOT_ADMIN_KEY)", role="admin",
                                       prefix=settings.admin_key[:8], key_hash=hash_key(settings.admin_key)))
        except IntegrityError:
            pass  # another worker inserted it first
        return "FACESHOT_ADMIN_KEY"
    with sessions() as session:
        has_admin = session.execute(select(ApiKey).where(ApiKey.role == "admin")).first() is not None
    path = settings.data_dir / ADMIN_KEY_FILE
    if has_admin:
        return str(path) if path.exists() else None
    secret = new_secret()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # written once, never overwritten
    except FileExistsError:
        return str(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    create_key(sessions, "admin (generated at first start)", "admin", secret)
    log.warning("generated the first admin API key into %s", path)
    return str(path)
