"""Admin sign-in: a session row in the database, named by an HMAC-signed cookie, and CSRF tokens derived from it.

The cookie holds ``{"sid", "exp", "by"}`` signed with a secret generated once into the database
(``deployment_identity.session_secret``), so every worker and every replica on it signs alike, whatever its data
folder; a deployment from before keeps the secret of its ``<data_dir>/admin_session_secret`` file (moved into the
database at its first sign-in), so its cookies stay valid.
``by`` is the id of the admin key used to sign in, ``"password"`` or ``"account"`` (a named
account, app/access/accounts.py). The session is also an ``admin_sessions`` row, so it ends on the
server: at sign-out (a copied cookie is worthless afterwards), when its key is revoked or its
account disabled or deleted, and when the password that signed in changes (the row keeps a
keyed hash of ``FACESHOT_ADMIN_PASSWORD``, or of the account's password hash). What the
session may see is read again with every request (:class:`AdminSession.rights`), so taking a
right away takes effect at once. The CSRF token is an HMAC of the session id and changes with
every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import sessionmaker

from app.access.accounts import rights_of
from app.core.config import Settings
from app.core.tables import AdminAccount, ApiKey, DeploymentIdentity
from app.core.tables import AdminSignIn as SessionRow

COOKIE = "faceshot_admin"
LOGIN_COOKIE = "faceshot_admin_login"  # double-submit token for the sign-in form (no session yet)
COOKIE_PATH = "/admin"
SECRET_FILE = "admin_session_secret"


def load_secret(data_dir: Path, sessions: sessionmaker) -> bytes:
    """The signing secret: the database's; made on first use (the legacy file's, where there is one) by one
    conditional UPDATE, so concurrent workers and replicas agree on the first writer's."""
    def stored() -> str | None:
        with sessions() as session:
            return session.execute(select(DeploymentIdentity.session_secret)
                                   .where(DeploymentIdentity.id == 1)).scalar()

    value = stored()
    if value is None:
        try:
            candidate = (data_dir / SECRET_FILE).read_text().strip()
            bytes.fromhex(candidate)
        except (OSError, ValueError):
            candidate = secrets.token_hex(32)
        with sessions.begin() as session:
            session.execute(update(DeploymentIdentity).where(DeploymentIdentity.id == 1,
                                                              DeploymentIdentity.session_secret.is_(None))
                            .values(session_secret=candidate))
        value = stored()
    if value is None:
        raise RuntimeError("the deployment is not bound to this database yet (app/core/instance.py)")
    return bytes.fromhex(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class AdminSession:
    sid: str
    expires: float
    by: str  # admin key id, "password" or "account"
    csrf: str
    name: str = "admin"  # who, as the header and the audit log say it
    rights: dict[str, str] | None = None  # collection -> admin | viewer; None: every collection (deployment admin)
    account_id: str | None = None

    @property
    def deployment_admin(self) -> bool:
        return self.rights is None

    def may_see(self, collection: str) -> bool:
        return self.rights is None or collection in self.rights

    def may_change(self, collection: str) -> bool:
        return self.rights is None or self.rights.get(collection) == "admin"


class SessionSigner:
    def __init__(self, settings: Settings, sessions: sessionmaker):
        self.sessions = sessions
        self.settings = settings

    @cached_property
    def secret(self) -> bytes:
        """Read (or made) at the first sign-in, not when a process that never signs anyone in starts."""
        return load_secret(self.settings.data_dir, self.sessions)

    def _mac(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self.secret, f"{purpose}:{payload}".encode(), hashlib.sha256).digest())

    def csrf_for(self, sid: str) -> str:
        return self._mac("csrf", sid)

    def password_tag(self) -> str | None:
        """A keyed hash of the configured password: sessions it signed in end when it changes."""
        password = self.settings.admin_password
        return None if password is None else self._mac("password", password.get_secret_value())[:43]

    def account_tag(self, account: AdminAccount) -> str:
        """A keyed hash of the account's password hash: a new password ends the sessions it signed in."""
        return self._mac("account", account.password_hash)[:43]

    def issue(self, by: str, account: AdminAccount | None = None) -> str:
        """A new sign-in (``account`` when ``by`` is "account"); the cookie that names it."""
        sid = secrets.token_urlsafe(18)
        now = datetime.now(timezone.utc)
        expires = now + timedelta(hours=self.settings.admin_session_hours)
        # the tag (and the secret it needs, made in a transaction of its own at the first sign-in) before this one
        tag = self.password_tag() if by == "password" else self.account_tag(account) if account else None
        with self.sessions.begin() as db:
            db.execute(delete(SessionRow).where(SessionRow.expires_at < now - timedelta(days=1)))
            db.add(SessionRow(id=sid, signed_in_by=by, expires_at=expires, created_at=now, password_tag=tag,
                              account_id=account.id if account else None))
        payload = _b64(json.dumps({"sid": sid, "exp": int(expires.timestamp()), "by": by},
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def end(self, session: AdminSession) -> None:
        """Sign-out: the session is over on the server, whoever holds a copy of its cookie."""
        with self.sessions.begin() as db:
            db.execute(update(SessionRow).where(SessionRow.id == session.sid, SessionRow.ended_at.is_(None))
                       .values(ended_at=datetime.now(timezone.utc)))

    def read(self, cookie: str | None) -> AdminSession | None:
        """The session a cookie carries, with what it may see now; None when it is missing, forged, expired,
        ended, its key revoked, its account disabled or gone, or its password changed."""
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            sid, expires, by = str(data["sid"]), float(data["exp"]), str(data["by"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time():
            return None
        with self.sessions() as db:
            row = db.get(SessionRow, sid)
            if row is None or row.ended_at is not None or row.signed_in_by != by:
                return None
            if by == "password":
                tag = self.password_tag()
                if tag is None or row.password_tag is None or not hmac.compare_digest(row.password_tag, tag):
                    return None  # the password was switched off or changed since
                name, rights = "admin password", None
            elif by == "account":
                account = db.get(AdminAccount, row.account_id) if row.account_id else None
                if account is None or account.disabled_at is not None or row.password_tag is None \
                        or not hmac.compare_digest(row.password_tag, self.account_tag(account)):
                    return None
                name = account.name
                rights = None if account.deployment_admin else rights_of(account)
            else:
                key = db.get(ApiKey, by)
                if key is None or key.revoked_at is not None or key.role != "admin":
                    return None
                name, rights = key.name, None if key.collection is None else {key.collection: "admin"}
        return AdminSession(sid, expires, by, self.csrf_for(sid), name, rights, row.account_id)

    def flash(self, data: dict, sid: str, ttl_s: int) -> str:
        """A value handed from a POST to the GET it redirects to: signed, for this sign-in only, short-lived."""
        payload = _b64(json.dumps({"sid": sid, "exp": int(time.time()) + ttl_s, "data": data},
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._mac('flash', payload)}"

    def read_flash(self, cookie: str | None, sid: str) -> dict | None:
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("flash", payload)):
            return None
        try:
            value = json.loads(_unb64(payload))
        except ValueError:
            return None
        if value.get("sid") != sid or value.get("exp", 0) < time.time():
            return None
        return value.get("data")

    def check_csrf(self, session: AdminSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token, session.csrf)

    def cookie_args(self, max_age: int | None = None) -> dict:
        return {"httponly": True, "samesite": "strict", "secure": self.settings.admin_cookie_secure,
                "path": COOKIE_PATH, "max_age": max_age}
