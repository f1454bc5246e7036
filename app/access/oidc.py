"""Admin sign-in with the company's OpenID Connect provider (Entra ID, Google, Keycloak, Authentik...).

The authorization code flow with PKCE (S256), configured by discovery from FACESHOT_OIDC_ISSUER. The state, nonce
and PKCE verifier of a sign-in in progress travel in a short-lived cookie HMAC-signed with the admin session secret
(nothing stored server-side for a sign-in that is never finished). The callback checks the state, exchanges the
code (client secret, verifier) and validates the ID token with joserfc (authlib's own JOSE library, which authlib's
``authlib.jose`` now defers to): signature against the provider's JWKS
(fetched again once when a key id is unknown), issuer, audience, expiry and issue time with a bounded clock skew
(FACESHOT_OIDC_LEEWAY_S), and the nonce. The person then gets an account of their own (``oidc:<issuer>|<sub>``)
whose rights are, at this sign-in, what FACESHOT_ADMIN_GROUP_RIGHTS gives the groups claim
(app/access/group_rights.py). Every refusal is an :class:`OidcRefused` with a code a page and the audit log show.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError, MissingKeyError
from joserfc.jwk import KeySet

from app.access.accounts import Accounts
from app.access.group_rights import granted
from app.core.config import Settings
from app.core.tables import AdminAccount

log = logging.getLogger(__name__)
FLOW_COOKIE = "faceshot_oidc"
FLOW_TTL_S = 600
DISCOVERY_TTL_S = 3600
TIMEOUT_S = 10.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class OidcRefused(Exception):
    """A sign-in that must not go on: ``code`` (machine-readable), a message for the page, and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class OidcIdentity:
    subject: str
    name: str
    groups: list[str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcSignIn:
    def __init__(self, settings: Settings, accounts: Accounts, mapping: dict[str, list[str]],
                 secret: Callable[[], bytes]):
        self.settings, self.accounts, self.mapping, self._secret = settings, accounts, mapping, secret
        self._lock = threading.Lock()
        self._discovery: tuple[float, dict] | None = None
        self._jwks: dict | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.oidc_issuer and self.settings.oidc_client_id)

    # -- the provider's documents ------------------------------------------------------------------
    def _get(self, url: str) -> dict:
        try:
            answer = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=False)
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OpenID provider unreachable at %s: %s", url, exc)
            raise OidcRefused("provider_unreachable", "The company sign-in service cannot be reached right now; try "
                              "again in a moment, or sign in with an admin key.", 503) from None

    def discovery(self) -> dict:
        with self._lock:
            if self._discovery is not None and time.monotonic() - self._discovery[0] < DISCOVERY_TTL_S:
                return self._discovery[1]
        issuer = self.settings.oidc_issuer.rstrip("/")
        doc = self._get(f"{issuer}/.well-known/openid-configuration")
        if doc.get("issuer", "").rstrip("/") != issuer:
            raise OidcRefused("provider_misconfigured", "The sign-in service's discovery document names another "
                              "issuer than FACESHOT_OIDC_ISSUER.", 502)
        with self._lock:
            self._discovery = (time.monotonic(), doc)
        return doc

    def _keys(self, refresh: bool = False):
        if self._jwks is None or refresh:
            self._jwks = self._get(self.discovery()["jwks_uri"])
        return KeySet.import_key_set(self._jwks)

    # -- the flow -----------------------------------------------------------------------------------
    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret(), f"oidc:{payload}".encode(), hashlib.sha256).digest())

    def start(self, redirect_uri: str, next_url: str) -> tuple[str, str]:
        """(the provider's authorization URL, the flow cookie's value)."""
        doc = self.discovery()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = {"response_type": "code", "client_id": self.settings.oidc_client_id, "redirect_uri": redirect_uri,
                 "scope": self.settings.oidc_scopes, "state": state, "nonce": nonce,
                 "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
                 "code_challenge_method": "S256"}
        flow = _b64(json.dumps({"state": state, "nonce": nonce, "verifier": verifier, "next": next_url,
                                "redirect_uri": redirect_uri, "exp": int(time.time()) + FLOW_TTL_S}).encode())
        return f"{doc['authorization_endpoint']}?{urlencode(query)}", f"{flow}.{self._sign(flow)}"

    def _flow(self, cookie: str | None) -> dict:
        payload, _, mac = (cookie or "").partition(".")
        if not payload or not hmac.compare_digest(mac, self._sign(payload)):
            raise OidcRefused("state_mismatch", "This sign-in was not started here (or its cookie was lost); start "
                              "again.")
        flow = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if flow["exp"] < time.time():
            raise OidcRefused("sign_in_expired", "This sign-in took too long; start again.")
        return flow

    def finish(self, code: str | None, state: str | None, error: str | None, cookie: str | None
               ) -> tuple[OidcIdentity, str]:
        """The person the provider signed in, and where they were going; OidcRefused otherwise."""
        flow = self._flow(cookie)
        if not state or not hmac.compare_digest(state, flow["state"]):
            raise OidcRefused("state_mismatch", "The sign-in's state does not match the one this browser started "
                              "with; start again.")
        if error or not code:
            raise OidcRefused("provider_refused", f"The sign-in service refused: {(error or 'no code')[:100]}.", 403)
        doc = self.discovery()
        try:
            answer = httpx.post(doc["token_endpoint"], timeout=TIMEOUT_S, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": flow["redirect_uri"],
                "code_verifier": flow["verifier"]},
                auth=(self.settings.oidc_client_id, self.settings.oidc_client_secret.get_secret_value()
                      if self.settings.oidc_client_secret else ""))
        except httpx.HTTPError as exc:
            log.warning("OpenID token endpoint unreachable: %s", exc)
            raise OidcRefused("provider_unreachable", "The company sign-in service cannot be reached right now; "
                              "try again in a moment.", 503) from None
        if answer.status_code != 200:
            reason = (answer.json().get("error") if answer.headers.get("content-type", "").startswith(
                "application/json") else None) or f"status {answer.status_code}"
            raise OidcRefused("code_refused", f"The sign-in service did not accept this sign-in's code ({reason}): "
                              "a code works once. Start again.", 403)
        id_token = answer.json().get("id_token")
        if not id_token:
            raise OidcRefused("token_invalid", "The sign-in service sent no ID token.", 403)
        return self._identity(id_token, flow["nonce"]), flow["next"]

    def _identity(self, id_token: str, nonce: str) -> OidcIdentity:
        issuer = self.discovery()["issuer"]
        registry = jwt.JWTClaimsRegistry(
            leeway=self.settings.oidc_leeway_s, iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.settings.oidc_client_id}, exp={"essential": True},
            iat={"essential": True}, sub={"essential": True}, nonce={"essential": True, "value": nonce})
        for attempt in range(2):
            try:
                token = jwt.decode(id_token, self._keys(refresh=attempt > 0), algorithms=ALGORITHMS)
                registry.validate(token.claims)
                claims = token.claims
                break
            except MissingKeyError:
                if attempt == 0:
                    continue  # keys rotate: a key id not seen yet, fetch them once more
                raise OidcRefused("token_invalid", "The sign-in service's ID token is not valid here (unknown_key).",
                                  403) from None
            except (JoseError, ValueError) as exc:
                code = getattr(exc, "error", None) or "malformed"
                log.warning("refused an ID token: %s: %s", code, exc)
                raise OidcRefused("token_invalid", f"The sign-in service's ID token is not valid here ({code}).",
                                  403) from None
        groups = claims.get(self.settings.oidc_groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        name = str(claims.get(self.settings.oidc_name_claim) or claims.get("email") or claims["sub"])
        return OidcIdentity(f"oidc:{issuer}|{claims['sub']}", name.lower()[:64], [str(g) for g in groups][:200])

    def sign_in(self, who: OidcIdentity) -> AdminAccount:
        return self.accounts.sign_in_external(who.subject, who.name, granted(who.groups, self.mapping))
