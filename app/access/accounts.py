"""Named admin accounts: who may sign in to the admin page, with a password and rights per collection.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile);
the password itself is never stored or logged. A *deployment admin* account may do everything,
in every collection; any other account has a right per collection it was granted: ``admin``
(change anything in it: people, its keys, its webhooks) or ``viewer`` (look and try, change nothing).
Signing in with a wrong name costs the same hash as a wrong password, so the answer's timing
does not tell which names exist.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.access import audit
from app.access.audit import Actor
from app.access.group_rights import Granted
from app.access.keys import revoke_keys_of_account
from app.core.db import begin_write, get_collection
from app.core.errors import Conflict, Forbidden, NotFound, Overloaded, Unauthorized, ValidationFailed
from app.core.tables import AdminAccount, AdminGrant, Collection

RIGHTS = ("admin", "viewer")
NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"  # lowercase, so "Ann" and "ann" are one account
MIN_PASSWORD, MAX_PASSWORD = 12, 200

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not any account's password")


@dataclass(frozen=True)
class AccountView:
    """An account as listed (never its hash)."""

    id: str
    name: str
    deployment_admin: bool
    rights: dict[str, str]
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, account: AdminAccount) -> AccountView:
        return cls(account.id, account.name, account.deployment_admin, rights_of(account), account.created_at,
                   account.disabled_at is not None)


def rights_of(account: AdminAccount) -> dict[str, str]:
    """An account's granted rights, collection -> admin | viewer."""
    return {g.collection: g.role for g in account.grants}


def normalise_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValidationFailed("An account name is 1-64 lowercase letters, digits, '.', '_', '@' or '-'.",
                               {"field": "name"})
    return name


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed(f"A password is {MIN_PASSWORD}-{MAX_PASSWORD} characters.", {"field": "password"})


def _check_rights(session, deployment_admin: bool, rights: dict[str, str]) -> None:
    for collection, role in rights.items():
        if role not in RIGHTS:
            raise ValidationFailed(f"A right is one of {RIGHTS}.", {"field": "rights", "collection": collection})
        get_collection(session, collection, lock="share")  # not in a collection being deleted
    if not deployment_admin and not rights:
        raise ValidationFailed("Give the account a right in at least one collection, or make it a deployment admin.",
                               {"field": "rights"})


def _refuse_new(session, name: str, deployment_admin: bool, rights: dict[str, str]) -> None:
    _check_rights(session, deployment_admin, rights)
    if session.scalar(select(AdminAccount.id).where(AdminAccount.name == name)) is not None:
        raise Conflict(f"An account named {name!r} exists.", {"name": name})


def _set_rights(account: AdminAccount, rights: dict[str, str]) -> None:
    account.grants = [AdminGrant(collection=c, role=r) for c, r in sorted(rights.items())]


PASSWORD_CHECKS = 2  # argon2id verifications at once per process


class Accounts:
    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._checks = threading.BoundedSemaphore(PASSWORD_CHECKS)

    def create(self, name: str, password: str, *, deployment_admin: bool = False, rights: dict[str, str] | None = None,
               actor: Actor | None = None) -> AccountView:
        name, rights = normalise_name(name), dict(rights or {})
        _check_password(password)
        hashed = _hasher.hash(password)  # outside the transaction: it takes a tenth of a second
        try:
            with begin_write(self.sessions) as session:
                _refuse_new(session, name, deployment_admin, rights)
                account = AdminAccount(name=name, password_hash=hashed, deployment_admin=deployment_admin)
                _set_rights(account, rights)
                session.add(account)
                session.flush()
                audit.record(session, actor, "account.create", target=account.id,
                             details={"name": name, "deployment_admin": deployment_admin, "rights": rights})
                return AccountView.of(account)
        except IntegrityError:
            raise Conflict(f"An account named {name!r} exists.", {"name": name}) from None

    def check_new(self, name: str, *, deployment_admin: bool = False, rights: dict[str, str] | None = None) -> str:
        """What :meth:`create` would refuse, refused before anyone is asked for a password (the CLI); the name as
        it will be stored. ``create`` checks again in its own transaction."""
        name = normalise_name(name)
        with self.sessions() as session:
            _refuse_new(session, name, deployment_admin, dict(rights or {}))
        return name

    def find(self, name: str) -> AccountView | None:
        with self.sessions() as session:
            account = session.scalar(select(AdminAccount).where(AdminAccount.name == normalise_name(name)))
            return AccountView.of(account) if account is not None else None

    def list(self) -> list[AccountView]:
        with self.sessions() as session:
            return [AccountView.of(a) for a in session.scalars(select(AdminAccount).order_by(AdminAccount.name))]

    @staticmethod
    def _get(session, account_id: str) -> AdminAccount:
        account = session.get(AdminAccount, account_id)
        if account is None:
            raise NotFound(f"No admin account with id {account_id}.", {"account_id": account_id})
        return account

    def update(self, account_id: str, *, password: str | None = None, deployment_admin: bool | None = None,
               rights: dict[str, str] | None = None, disabled: bool | None = None,
               actor: Actor | None = None) -> AccountView:
        """Change what is given; a new password or disabling ends its sign-ins (app/access/admin_sessions.py)."""
        if password is not None:
            _check_password(password)
        hashed = _hasher.hash(password) if password is not None else None
        with begin_write(self.sessions) as session:
            account = self._get(session, account_id)
            admin = account.deployment_admin if deployment_admin is None else deployment_admin
            new_rights = rights_of(account) if rights is None else dict(rights)
            _check_rights(session, admin, new_rights)
            changed = []
            if hashed is not None:
                account.password_hash = hashed
                changed.append("password")
            if deployment_admin is not None and deployment_admin != account.deployment_admin:
                account.deployment_admin = deployment_admin
                changed.append("deployment_admin")
            if rights is not None:
                _set_rights(account, new_rights)
                changed.append("rights")
            if disabled is not None and disabled != (account.disabled_at is not None):
                account.disabled_at = datetime.now(timezone.utc) if disabled else None
                changed.append("disabled" if disabled else "enabled")
                if disabled:
                    revoke_keys_of_account(session, account.id, actor)
            session.flush()
            audit.record(session, actor, "account.update", target=account.id,
                         details={"name": account.name, "changed": changed, "rights": new_rights,
                                  "deployment_admin": admin})
            return AccountView.of(account)

    def sign_in_external(self, subject: str, name: str, grant: Granted) -> AdminAccount:
        """The account a company's sign-in names (``subject``), made on its first sign-in and given exactly the
        rights its groups grant now; refused (Forbidden, and the account disabled, which ends its sessions) when
        they grant nothing. A local account of the same name is never taken over (Conflict)."""
        name = normalise_name(name)
        with begin_write(self.sessions) as session:
            account = session.scalar(select(AdminAccount).where(AdminAccount.external_subject == subject))
            if account is None:
                if session.scalar(select(AdminAccount.id).where(AdminAccount.name == name)) is not None:
                    raise Conflict(f"An account named {name!r} exists on this service and was not made by this "
                                   "sign-in; rename one of them.", {"name": name, "reason": "name_taken"})
                account = AdminAccount(name=name, password_hash=_hasher.hash(secrets.token_hex(32)),
                                       external_subject=subject)
                session.add(account)
            # only collections that exist: a mapping may name one not made yet
            existing = set(session.scalars(select(Collection.name).where(Collection.name.in_(list(grant.rights)))))
            rights = {c: r for c, r in grant.rights.items() if c in existing}
            account.deployment_admin = grant.deployment_admin
            _set_rights(account, rights)
            if not grant.deployment_admin and not rights:
                if account.disabled_at is None:
                    account.disabled_at = datetime.now(timezone.utc)
                    audit.record(session, audit.Actor("system", None, subject), "account.update",
                                 target=account.id, details={"name": account.name, "changed": ["disabled"],
                                                             "reason": "its sign-in's groups grant nothing"})
                session.flush()
                refused = Forbidden(f"{name}'s groups grant no right on this faceshot.", {"reason": "no_rights"})
            else:
                account.disabled_at = None
                session.flush()
                session.expunge(account)
                return account
        raise refused

    def delete(self, account_id: str, actor: Actor | None = None) -> None:
        with begin_write(self.sessions) as session:
            account = self._get(session, account_id)
            audit.record(session, actor, "account.delete", target=account.id, details={"name": account.name})
            revoke_keys_of_account(session, account.id, actor)
            session.delete(account)

    def authenticate(self, name: str, password: str) -> AdminAccount:
        """The account whose name and password these are; one error for a wrong name, a wrong password and a
        disabled account. At most :data:`PASSWORD_CHECKS` at once per process, beyond them refused at once
        (``overloaded``): each check costs an argon2id hash, 64 MB and a tenth of a second, and an unauthenticated
        crowd of sign-ins (40 at once: +892 MB) must not cost recognition its memory and cores."""
        if not self._checks.acquire(blocking=False):
            raise Overloaded("Too many sign-ins are being checked at once; try again in a moment.", retry_after=1)
        try:
            return self._authenticate(name, password)
        finally:
            self._checks.release()

    def _authenticate(self, name: str, password: str) -> AdminAccount:
        refused = Unauthorized("That account name or password is not valid.")
        try:
            name = normalise_name(name)
        except ValidationFailed:
            name = ""
        with self.sessions() as session:
            account = session.scalar(select(AdminAccount).where(AdminAccount.name == name)) if name else None
            stored = account.password_hash if account is not None else _DUMMY_HASH
            try:
                _hasher.verify(stored, password or "")
            except (VerificationError, InvalidHashError):
                raise refused from None
            if account is None or account.disabled_at is not None:
                raise refused
            if _hasher.check_needs_rehash(stored):
                self._rehash(account.id, password)
            session.expunge(account)
            return account

    def _rehash(self, account_id: str, password: str) -> None:
        """argon2's parameters grow with the library's defaults; a sign-in upgrades the stored hash."""
        with self.sessions.begin() as session:
            account = session.get(AdminAccount, account_id)
            if account is not None:
                account.password_hash = _hasher.hash(password)
