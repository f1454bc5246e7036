"""Sign-in by a reverse proxy that already signed the person in (Authelia, Authentik, oauth2-proxy, Frigate's way).

The proxy names the user (FACESHOT_PROXY_USER_HEADER, default Remote-User) and their groups
(FACESHOT_PROXY_GROUPS_HEADER, Remote-Groups: comma- or pipe-separated). Anyone can send such headers, so they are
believed only when both hold: the request carries the shared secret (FACESHOT_PROXY_SECRET_HEADER, compared in
constant time) *and* comes from one of FACESHOT_PROXY_AUTH_ADDRESSES (the connection's own peer, not an address
X-Forwarded-For names). Otherwise they are ignored, and the ignoring is logged. A believed user gets an account of
their own (``proxy:<user>``) whose rights are what FACESHOT_ADMIN_GROUP_RIGHTS gives their groups at this sign-in.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass

from app.access.accounts import Accounts
from app.access.group_rights import granted
from app.core.config import Settings
from app.core.peer import peer_of
from app.core.tables import AdminAccount

log = logging.getLogger(__name__)
MAX_HEADER = 1000


@dataclass(frozen=True)
class ProxyIdentity:
    user: str
    groups: list[str]


class ProxySignIn:
    def __init__(self, settings: Settings, accounts: Accounts, mapping: dict[str, list[str]]):
        self.settings, self.accounts, self.mapping = settings, accounts, mapping  # parse_group_rights's
        secret = settings.proxy_auth_secret
        self._secret = secret.get_secret_value().encode() if secret is not None else b""
        self._networks = settings.proxy_auth_networks

    @property
    def enabled(self) -> bool:
        return bool(self._secret and self._networks)

    def identity(self, request) -> ProxyIdentity | None:
        """Who the proxy says this is, when it is believed; None (and a log line, when headers were sent) else."""
        user = request.headers.get(self.settings.proxy_user_header, "").strip()
        if not user:
            return None
        peer = peer_of(request.scope)
        if not self.enabled:
            log.warning("ignored %s from %s: proxy sign-in is off (FACESHOT_PROXY_AUTH_SECRET, _ADDRESSES)",
                        self.settings.proxy_user_header, peer)
            return None
        sent = request.headers.get(self.settings.proxy_secret_header, "").encode()
        if not hmac.compare_digest(sent, self._secret):
            log.warning("ignored %s from %s: wrong or missing %s", self.settings.proxy_user_header, peer,
                        self.settings.proxy_secret_header)
            return None
        if not self._trusted(peer):
            log.warning("ignored %s from %s: not one of FACESHOT_PROXY_AUTH_ADDRESSES",
                        self.settings.proxy_user_header, peer)
            return None
        raw = request.headers.get(self.settings.proxy_groups_header, "")[:MAX_HEADER]
        return ProxyIdentity(user[:MAX_HEADER], [g.strip() for g in re.split(r"[,|]", raw) if g.strip()])

    def _trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in self._networks)

    def sign_in(self, who: ProxyIdentity) -> AdminAccount:
        """The account (made or updated now; Forbidden when the groups grant nothing, Conflict for a local name)."""
        return self.accounts.sign_in_external(f"proxy:{who.user}", who.user, granted(who.groups, self.mapping))
