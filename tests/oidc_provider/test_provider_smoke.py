"""The test OpenID Connect provider itself works: discovery, an authorization-code + PKCE flow driven by hand with
httpx (no browser), the ID token's signature and claims, one-time codes, the tamper modes and group changes.

ID tokens are checked with the standard library: RS256 (RSASSA-PKCS1-v1_5 with SHA-256) verified with pow() against
the JWKS: the harness is checked independently of the library faceshot checks ID tokens with (joserfc).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import shutil
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

if shutil.which("node") is None:
    pytest.skip("node (Node.js) is not on PATH: the test OIDC provider runs on it", allow_module_level=True)

import httpx  # noqa: E402

from tests.oidc_provider.provider import OidcProvider, password_for  # noqa: E402

CLIENT_ID = "faceshot-test"
CLIENT_SECRET = "faceshot-test-secret-" + "x" * 16
REDIRECT_URI = "http://127.0.0.1:9/admin/oidc/callback"  # never served: only the Location header is read
SCOPE = "openid profile email groups"


# ---- JWTs by hand ----------------------------------------------------------------------------------------------------


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict, bytes, bytes]:
    header, payload, signature = token.split(".")
    return (
        json.loads(b64url_decode(header)),
        json.loads(b64url_decode(payload)),
        f"{header}.{payload}".encode(),
        b64url_decode(signature),
    )


# DER of the DigestInfo prefix for SHA-256 (RFC 8017, section 9.2, note 1)
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_verifies(jwk: dict, signing_input: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017, 8.2.2) of a public RSA JWK."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    if len(signature) != k or int.from_bytes(signature, "big") >= n:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def signature_verifies(token: str, jwks: dict) -> bool:
    header, _claims, signing_input, signature = jwt_parts(token)
    if header.get("alg") != "RS256":
        return False
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid") and k.get("kty") == "RSA"]
    return any(rs256_verifies(k, signing_input, signature) for k in keys)


# ---- the flow by hand -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def op():
    with OidcProvider().start(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI]) as op:
        yield op


@pytest.fixture(scope="module")
def discovery(op) -> dict:
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(op.issuer + "/.well-known/openid-configuration")
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def jwks(discovery) -> dict:
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(discovery["jwks_uri"])
    response.raise_for_status()
    return response.json()


def follow(client: httpx.Client, response: httpx.Response) -> httpx.Response | str:
    """Follow redirects until a page (a Response) or the redirect_uri (its URL, not fetched)."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(REDIRECT_URI):
            return location
        response = client.get(location)
    raise AssertionError("too many redirects")


def authorize(discovery: dict, login: str, *, password: str | None = None) -> dict:
    """Sign `login` in through the authorization endpoint and the login form; the callback's parameters."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": REDIRECT_URI,
        "state": state,
        "nonce": nonce,
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    # a fresh client (cookie jar) each time: a new browser, so the login form always shows
    with httpx.Client(trust_env=False, timeout=10) as client:
        page = follow(client, client.get(discovery["authorization_endpoint"], params=params))
        assert isinstance(page, httpx.Response) and page.status_code == 200, page
        assert 'name="login"' in page.text and 'name="password"' in page.text and 'id="submit"' in page.text
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
        posted = client.post(
            urljoin(str(page.url), action),
            data={"login": login, "password": password if password is not None else password_for(login)},
        )
        callback = follow(client, posted)
    if isinstance(callback, httpx.Response):
        return {"page": callback}
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert query.get("state") == state
    return {**query, "nonce": nonce, "verifier": verifier}


def exchange(discovery: dict, code: str, verifier: str, *, auth: str = "basic") -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    kwargs = {}
    if auth == "basic":
        kwargs["auth"] = (CLIENT_ID, CLIENT_SECRET)
    else:
        data |= {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(discovery["token_endpoint"], data=data, **kwargs)


def sign_in(discovery: dict, login: str, *, auth: str = "basic") -> tuple[str, dict]:
    """A whole flow: the ID token and the callback's parameters."""
    callback = authorize(discovery, login)
    assert "code" in callback, callback
    response = exchange(discovery, callback["code"], callback["verifier"], auth=auth)
    assert response.status_code == 200, response.text
    return response.json()["id_token"], callback


# ---- the tests ------------------------------------------------------------------------------------------------------


def test_discovery(op, discovery):
    assert op.issuer.startswith("http://127.0.0.1:")
    assert discovery["issuer"] == op.issuer
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(discovery["token_endpoint_auth_methods_supported"])
    assert {"openid", "profile", "email", "groups"} <= set(discovery["scopes_supported"])
    assert "groups" in discovery["claims_supported"]
    assert op.health()


def test_pkce_is_required(discovery):
    params = {"client_id": CLIENT_ID, "response_type": "code", "scope": SCOPE, "redirect_uri": REDIRECT_URI}
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(discovery["authorization_endpoint"], params={**params, "state": "s"})
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and "PKCE" in query["error_description"][0]


def test_code_flow_for_ann(op, discovery, jwks):
    callback = authorize(discovery, "ann")
    assert callback["iss"] == op.issuer  # RFC 9207
    response = exchange(discovery, callback["code"], callback["verifier"])
    assert response.status_code == 200, response.text
    id_token = response.json()["id_token"]

    assert signature_verifies(id_token, jwks)
    header, claims, _, _ = jwt_parts(id_token)
    assert header["alg"] == "RS256"
    assert claims["iss"] == op.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == callback["nonce"]
    assert claims["sub"] == "ann"
    assert claims["groups"] == ["faceshot-admins"]
    assert claims["preferred_username"] == "ann" and claims["name"] and claims["email"] == "ann@example.test"
    assert claims["exp"] > time.time()

    # a code works once
    replay = exchange(discovery, callback["code"], callback["verifier"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_client_secret_post_and_other_users(discovery, jwks):
    id_token, _ = sign_in(discovery, "bob", auth="post")
    assert signature_verifies(id_token, jwks)
    assert jwt_parts(id_token)[1]["groups"] == ["warehouse-viewers"]
    id_token, _ = sign_in(discovery, "eve")
    assert jwt_parts(id_token)[1]["groups"] == []


def test_wrong_password_shows_the_form_again(discovery):
    result = authorize(discovery, "ann", password="not-it")
    assert result["page"].status_code == 401 and 'id="submit"' in result["page"].text


@pytest.mark.parametrize("kind", ["wrong_key", "expired", "none", "wrong_audience", "wrong_issuer", "wrong_nonce"])
def test_tamper(op, discovery, jwks, kind):
    op.tamper(kind)
    id_token, callback = sign_in(discovery, "ann")
    header, claims, _, _ = jwt_parts(id_token)
    if kind == "wrong_key":
        assert header["kid"] in {k["kid"] for k in jwks["keys"]}
        assert not signature_verifies(id_token, jwks)
    elif kind == "none":
        assert header["alg"] == "none" and id_token.endswith(".")
        assert not signature_verifies(id_token, jwks)
    else:
        assert signature_verifies(id_token, jwks)
    if kind == "expired":
        assert claims["exp"] < time.time() - 3000
    assert (claims["aud"] == "someone-else") == (kind == "wrong_audience")
    assert (claims["iss"] != op.issuer) == (kind == "wrong_issuer")
    assert (claims["nonce"] != callback["nonce"]) == (kind == "wrong_nonce")
    assert claims["groups"] == ["faceshot-admins"]

    # one response only: the next one is sound again
    id_token, callback = sign_in(discovery, "ann")
    claims = jwt_parts(id_token)[1]
    assert signature_verifies(id_token, jwks) and claims["exp"] > time.time()
    assert claims["aud"] == CLIENT_ID and claims["iss"] == op.issuer and claims["nonce"] == callback["nonce"]


def test_set_groups_applies_to_the_next_sign_in(op, discovery):
    try:
        op.set_groups("ann", [])
        id_token, _ = sign_in(discovery, "ann")
        assert jwt_parts(id_token)[1]["groups"] == []
        op.set_groups("ann", ["faceshot-admins", "other"])
        id_token, _ = sign_in(discovery, "ann")
        assert jwt_parts(id_token)[1]["groups"] == ["faceshot-admins", "other"]
    finally:
        op.set_groups("ann", ["faceshot-admins"])
