"""Who may use /admin: the session dependency, CSRF, security headers, and how refusals look."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse

from app.access.admin_sessions import COOKIE, AdminSession, SessionSigner
from app.admin.render import error_page, wants_html
from app.api.deps import admin_sessions_of
from app.api.gate import GatedRoute, before_body
from app.core.errors import error_response
from models.errors import FaceshotError

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    # Everything is served from here: no CDN, no inline script or style.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid admin session cookie."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


def signer(request: Request) -> SessionSigner:
    return admin_sessions_of(request)


def _read_session(request: Request) -> AdminSession:
    session = signer(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired()
    request.state.admin = session
    return session


async def _session_before_body(request: Request) -> None:
    await anyio.to_thread.run_sync(_read_session, request)


@before_body(_session_before_body)
def admin_session(request: Request) -> AdminSession:
    """The signed-in admin (checked before the body is read: no upload from someone not signed in)."""
    session = getattr(request.state, "admin", None)
    return session if session is not None else _read_session(request)


async def admin_session_csrf(request: Request,
                             session: Annotated[AdminSession, Depends(admin_session)]) -> AdminSession:
    """The session, for a request that changes something: it must carry the CSRF token."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            token = (await request.form()).get(CSRF_FIELD)
    if not isinstance(token, str) or not signer(request).check_csrf(session, token):
        raise CsrfRejected()
    return session


Admin = Annotated[AdminSession, Depends(admin_session)]
AdminWrite = Annotated[AdminSession, Depends(admin_session_csrf)]


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/admin/api/")


class AdminRoute(GatedRoute):
    """Adds the security headers to every admin response and turns refusals into responses.

    A page asked for without a session redirects to the sign-in form. Other refusals are an HTML page in the
    admin frame for the browser's own requests and the service's JSON error for the page's script
    (:func:`refusal`).
    """

    refuse_unknown_query = False  # pages read `next` and `done` from the query themselves

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                response = await handler(request)
            except SignInRequired:
                if request.method == "GET" and not is_api(request):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = RedirectResponse(f"/admin/login?next={quote(target, safe='')}", status_code=303)
                else:
                    response = refusal(request, 401, "unauthorized", "Sign in to the admin page first.")
            except CsrfRejected:
                response = refusal(request, 403, "csrf_failed",
                                   "The form was missing its security token; reload the page and try again.")
            except FaceshotError as exc:
                response = refusal(request, exc.status, exc.code, exc.message, exc.details,
                                   getattr(exc, "headers", None))
            except RequestValidationError as exc:
                problems = [{"field": ".".join(str(p) for p in e.get("loc", []) if p not in ("body", "query", "path")),
                             "problem": e.get("msg", "")} for e in exc.errors()]
                response = refusal(request, 422, "validation_error", "The request is missing or has invalid fields.",
                                   {"errors": problems})
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return route


def refusal(request: Request, status: int, code: str, message: str, details: dict | None = None,
            headers: dict | None = None):
    """A page the browser opened gets an HTML page inside the admin frame; the page's script (and any client that
    does not ask for HTML) the service's JSON error."""
    if wants_html(request):
        if code == "unauthorized":
            message = "Your sign-in has ended. Sign in again, then repeat what you were doing."
        elif code == "validation_error" and details:
            fields = ", ".join(sorted({p["field"] for p in details.get("errors", []) if p["field"]}))
            message = f"{message[:-1]}: {fields}." if fields else message
        return error_page(request, status, message, headers)
    return error_response(status, code, message, details, headers)


def safe_next(target: str | None) -> str:
    """Only ever redirect back into /admin after sign-in (no open redirect)."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/people"


def actor_of(request: Request, session: AdminSession):
    """Who the audit log says made a change on the admin page: the account, the signed-in key, or the password."""
    from app.access.audit import PASSWORD, Actor

    if session.by == "password":
        return PASSWORD
    if session.by == "account":
        return Actor("account", session.account_id, f"{session.name} (admin page)")
    return Actor("key", session.by, f"{session.name} (admin page)")
