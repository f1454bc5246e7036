"""Rendering an admin page: the templates, the header's context, stored times for <time> elements, and the error page
every refusal of an HTML page becomes (inside the admin frame, never raw JSON)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.admin.scope import current_collection, visible_collections
from app.api.deps import settings_of
from app.core.tables import as_utc
from models.errors import FaceshotError

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates" / "admin")

# Messages after a redirect, by code, so no text from the URL is ever shown.
DONE = {
    "enrolled": "Enrolled. Check below that the photos are right, then try it.",
    "renamed": "Name saved.",
    "face_deleted": "Photo deleted.",
    "faces_added": "Photos added.",
    "person_deleted": "Person deleted.",
    "key_revoked": "Key revoked.",
    "details_saved": "Details saved.",
    "webhook_removed": "Webhook removed.",
    "signed_out": "You are signed out.",
    "collection_created": "Collection created.",
    "account_created": "Account created.",
    "account_changed": "Account changed.",
    "account_deleted": "Account deleted.",
    "suggestion_accepted": "Face added to the person.",
    "suggestion_dismissed": "Suggestion dismissed.",
    "not_this_person": "Marked: not this person.",
    "correction_undone": "Correction taken back.",
    "visitor_named": "Enrolled from the unknown visitor's faces.",
    "visitor_dismissed": "Unknown visitor dismissed.",
    "visitor_deleted": "Unknown visitor and their kept faces deleted.",
}

ERROR_TITLES = {400: "That request was not understood", 401: "Please sign in", 403: "Not allowed",
                404: "Not found", 408: "Too slow", 409: "That conflicts with what is there", 413: "Too large",
                422: "That was not accepted", 429: "Too many tries", 503: "Not available right now",
                507: "The disk is full"}


def utc_parts(value: datetime | str | None, precision: str = "second") -> dict | None:
    """A stored time's UTC reading for _time.html's ``localtime`` macro: ``iso`` for the browser, ``title`` to the
    second, ``text`` to ``precision`` (second, minute or day)."""
    if value is None or value == "":
        return None
    when = as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
    shape = {"day": "%Y-%m-%d", "minute": "%Y-%m-%d %H:%M"}.get(precision, "%Y-%m-%d %H:%M:%S")
    return {"iso": when.isoformat(), "title": when.strftime("%Y-%m-%d %H:%M:%S"), "text": when.strftime(shape)}


TEMPLATES.env.filters["utc_parts"] = utc_parts


def render(request: Request, name: str, status_code: int = 200, headers: dict | None = None,
           **context) -> HTMLResponse:
    session = getattr(request.state, "admin", None)
    if session is not None:
        context.setdefault("collection", current_collection(request, session))
        context.setdefault("collections", visible_collections(request, session))
        context["admin"] = session
        context["may_change"] = session.may_change(context["collection"])
    context.setdefault("done", DONE.get(request.query_params.get("done", "")))
    context.setdefault("max_upload", settings_of(request).max_upload_bytes)
    return TEMPLATES.TemplateResponse(request, name, {"csrf": session.csrf if session else None, **context},
                                      status_code=status_code, headers=headers)


def wants_html(request: Request) -> bool:
    """A page the browser navigated to or a form it posted (not the page's script, which asks for JSON)."""
    return not request.url.path.startswith("/admin/api/") and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str, headers: dict | None = None) -> HTMLResponse:
    """A refusal as a page with the site's header and navigation (or, signed out, a way to sign in)."""
    context = {"status": status, "title": ERROR_TITLES.get(status, "Something went wrong"), "message": message}
    try:
        return render(request, "error.html", status, headers, **context)
    except FaceshotError:  # the header's collection is itself out of reach: the page without the header
        request.state.admin = None
        return render(request, "error.html", status, headers, **context)

