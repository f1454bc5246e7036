"""The admin pages: sign-in, people, a person, enroll, try it, live, events, attendance, settings, keys and
accounts (server-rendered), each within the collection the header's switcher chose (app/admin/scope.py)."""

from __future__ import annotations

import hmac
import io
import json
import math
import secrets
from datetime import date, datetime, timedelta, timezone
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from PIL import Image

from app.access.admin_sessions import COOKIE, LOGIN_COOKIE
from app.access.audit import Actor
from app.access.keys import Keys
from app.access.oidc import FLOW_COOKIE, FLOW_TTL_S, OidcRefused
from app.admin.auth import Admin, AdminRoute, AdminWrite, actor_of, safe_next, signer
from app.admin.render import render
from app.admin.scope import (
    COLLECTION_COOKIE,
    all_collections,
    current_collection,
    person_collection,
    person_in_reach,
    require,
    visible_collections,
)
from app.admin.sources import EventsPage, EventsPageDep, SettingsPage, SettingsPageDep
from app.api.deps import (
    AccountsDep,
    AuditDep,
    CollectionsDep,
    EventsDep,
    KeysDep,
    OidcDep,
    PeopleDep,
    ProxySignInDep,
    SettingsDep,
    WebhooksDep,
    audit_of,
    client_address,
    get_service,
    settings_of,
)
from app.core.errors import Forbidden, NotFound, TryLater, Unauthorized, ValidationFailed
from app.core.inputs import parse_metadata
from app.live.events import event_dict
from models.errors import FaceshotError

PAGE_SIZE = 24

router = APIRouter(prefix="/admin", route_class=AdminRoute, include_in_schema=False)


def person_view(person) -> dict:
    return {
        "id": person.id, "name": person.name, "external_id": person.external_id,
        "metadata": json.dumps(person.meta, indent=2, ensure_ascii=False) if person.meta else "",
        "faces": [{"id": f.id, "has_image": f.image_file is not None, "box": f.box,
                   "det_score": round(f.det_score, 3), "created_at": f.created_at} for f in person.faces],
        "created_at": person.created_at,
    }


# -- sign-in -----------------------------------------------------------------------------------
def _login_page(request: Request, status_code: int = 200, error: str | None = None, next_url: str | None = None):
    token = secrets.token_urlsafe(18)
    settings = settings_of(request)
    oidc = get_service(request).oidc
    response = render(request, "login.html", status_code, error=error, login_token=token,
                      next_url=safe_next(next_url or request.query_params.get("next")),
                      password_enabled=settings.admin_password is not None,
                      local_signin=settings.admin_password_signin,
                      oidc_enabled=oidc is not None and oidc.enabled)
    response.set_cookie(LOGIN_COOKIE, token, **signer(request).cookie_args(max_age=3600))
    return response


@router.get("/login")
def login_form(request: Request, proxy: ProxySignInDep, audit: AuditDep):
    """The sign-in form; or, behind a signing-in reverse proxy whose headers are believed
    (app/access/proxy_sign_in.py), the sign-in itself: its user's account, with the rights their groups give now."""
    who = proxy.identity(request) if proxy is not None else None
    if who is None:
        return _login_page(request)
    try:
        account = proxy.sign_in(who)
    except FaceshotError as exc:
        audit.record(Actor("proxy", None, who.user[:200]), "admin.sign_in_refused",
                     details={"via": "proxy", "user": who.user[:200], "groups": who.groups[:50], "code": exc.code})
        return render(request, "login.html", exc.status, error=exc.message, login_token="", next_url="/admin",
                      password_enabled=False, proxy_refused=True)
    return _signed_in(request, "account", account, safe_next(request.query_params.get("next")),
                      via={"via": "proxy", "groups": who.groups[:50]})


@router.post("/login")
def login(request: Request, settings: SettingsDep, accounts: AccountsDep, keys: KeysDep, audit: AuditDep,
          secret: Annotated[str, Form()] = "",
          account: Annotated[str, Form(max_length=200)] = "", login_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = ""):
    """Sign in with a named account and its password, an admin key, or the shared password.

    An address that has failed too often is refused (429) for a wrong credential and for
    passwords (which a person chose, so they can be guessed), but never for a valid admin key
    (which cannot be guessed): a flood of failures from one address locks no admin out. An
    account that has failed too often, from anywhere, is refused for a while too (guessing
    from many addresses), and a refused try costs no password hash (no CPU to burn).
    """
    if not settings.admin_password_signin:
        return _login_page(request, 403, "Sign-in with a password or key is turned off here "
                                         "(FACESHOT_ADMIN_PASSWORD_SIGNIN=false): use the company sign-in.", next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, login_token):
        return _login_page(request, 403, "The sign-in form had expired. Please try again.", next)
    secret, account = secret.strip(), account.strip().lower()
    limiter, client = request.app.state.limiter, client_address(request)
    braked = limiter.failures_exceeded(client)
    too_many = "Too many failed sign-ins from this address; wait a minute, or sign in with an admin key."
    password = settings.admin_password
    signed_in = None
    if account:
        brake = f"account:{account}"
        # An account guessed at from many addresses is braked, but not for an address that has not failed lately:
        # else anyone could keep its owner out with 30 wrong passwords a minute. Such an address gets its try; a
        # wrong one brakes it too.
        if braked or (limiter.failures_exceeded(brake) and limiter.has_failures(client)):
            return _login_page(request, 429, "Too many failed sign-ins for this account or from this address; wait "
                                             "a minute, or sign in with an admin key.", next)
        try:
            signed_in = accounts.authenticate(account, secret)
        except Unauthorized as exc:
            limiter.record_failure(client)
            limiter.record_failure(brake)
            return _login_page(request, 401, exc.message, next)
        except TryLater as exc:
            response = _login_page(request, exc.status, exc.message, next)
            response.headers.update(exc.headers)
            return response
        by = "account"
    elif password is not None and secret and hmac.compare_digest(secret.encode(),
                                                                 password.get_secret_value().encode()):
        if braked:
            return _login_page(request, 429, too_many, next)
        by = "password"
    else:
        try:
            by = keys.authenticate(secret, need_admin=True).id
        except Forbidden as exc:
            if "key_collection" not in exc.details:
                return _login_page(request, 403, "That is a recognition key; the admin page needs an admin key.",
                                   next)
            # a collection's admin key: the admin page within that collection only
            by = keys.authenticate(secret, need_admin=True, collection=exc.details["key_collection"]).id
        except Unauthorized:
            if braked:
                return _login_page(request, 429, too_many, next)
            limiter.record_failure(client)
            return _login_page(request, 401, "That key or password is not valid.", next)
    return _signed_in(request, by, signed_in, safe_next(next))


@router.get("/oidc/start")
def oidc_start(request: Request, settings: SettingsDep, oidc: OidcDep, audit: AuditDep):
    """To the company's sign-in (OpenID Connect, code flow with PKCE), with this sign-in's state in a cookie."""
    if oidc is None or not oidc.enabled:
        raise NotFound("OpenID Connect sign-in is not set up here (FACESHOT_OIDC_ISSUER).", {})
    redirect_uri = settings.oidc_redirect_url or str(request.url_for("oidc_callback"))
    try:
        url, flow = oidc.start(redirect_uri, safe_next(request.query_params.get("next")))
    except OidcRefused as exc:
        return _oidc_refused(request, audit, exc)
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET
    response.set_cookie(FLOW_COOKIE, flow, max_age=FLOW_TTL_S, path="/admin/oidc", httponly=True, samesite="lax",
                        secure=settings.admin_cookie_secure)
    return response


@router.get("/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request, oidc: OidcDep, audit: AuditDep, code: str | None = None,
                  state: str | None = None, error: str | None = None):
    """Back from the company's sign-in: the ID token checked, the account made or updated, signed in."""
    if oidc is None or not oidc.enabled:
        raise NotFound("OpenID Connect sign-in is not set up here (FACESHOT_OIDC_ISSUER).", {})
    who = None
    try:
        who, target = oidc.finish(code, state, error, request.cookies.get(FLOW_COOKIE))
        account = oidc.sign_in(who)
    except OidcRefused as exc:
        return _oidc_refused(request, audit, exc)
    except FaceshotError as exc:  # no right, or a local account's name
        return _oidc_refused(request, audit, OidcRefused(exc.code, exc.message, exc.status), who)
    response = _signed_in(request, "account", account, target, via={"via": "oidc", "groups": who.groups[:50]})
    response.delete_cookie(FLOW_COOKIE, path="/admin/oidc")
    return response


def _oidc_refused(request: Request, audit, exc: OidcRefused, who=None):
    """A clear page (never a 500) and an audit entry for a refused company sign-in."""
    audit.record(Actor("oidc", None, (who.name if who else "unknown")[:200]), "admin.sign_in_refused",
                 details={"via": "oidc", "code": exc.code, **({"groups": who.groups[:50]} if who else {})})
    response = _login_page(request, exc.status, exc.message)
    response.delete_cookie(FLOW_COOKIE, path="/admin/oidc")
    return response


def _signed_in(request: Request, by: str, account, target: str, via: dict | None = None):
    """A new admin session for ``by`` (``account`` when an account signed in), audit-logged; to ``target``."""
    settings = settings_of(request)
    cookie = signer(request).issue(by, account)
    session = signer(request).read(cookie)
    audit_of(request).record(actor_of(request, session), "admin.sign_in", details=via or {})
    response = RedirectResponse(target, status_code=303)
    args = signer(request).cookie_args(max_age=int(settings.admin_session_hours * 3600))
    response.set_cookie(COOKIE, cookie, **args)
    response.delete_cookie(LOGIN_COOKIE, path=args["path"], httponly=True, samesite="strict", secure=args["secure"])
    response.delete_cookie(COLLECTION_COOKIE, path=args["path"], httponly=True, samesite="strict",
                           secure=args["secure"])  # the last sign-in's choice is not this one's
    return response


@router.post("/collection")
def switch_collection(request: Request, session: AdminWrite, collection: Annotated[str, Form(max_length=64)] = "",
                      next: Annotated[str, Form()] = ""):
    """The header's switcher: the collection the pages work in from now on (one it may see)."""
    if collection not in visible_collections(request, session):  # one it has no right in, or none at all
        raise NotFound(f"No collection named {collection!r}.", {"collection": collection})
    target = safe_next(next)
    if target.startswith("/admin/people/"):  # a person of the collection left behind
        target = "/admin/people"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COLLECTION_COOKIE, collection, **signer(request).cookie_args(max_age=30 * 24 * 3600))
    return response


@router.post("/logout")
def logout(request: Request, settings: SettingsDep, session: AdminWrite):
    signer(request).end(session)
    response = RedirectResponse("/admin/login?done=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict",
                           secure=settings.admin_cookie_secure)
    return response


# -- people ------------------------------------------------------------------------------------
@router.get("")
@router.get("/")
def home(_s: Admin):
    return RedirectResponse("/admin/people", status_code=303)


@router.get("/people")
def people_page(request: Request, people: PeopleDep, session: Admin, search: str = "",
           page: Annotated[int, Query(ge=1, le=10**6)] = 1):
    search = search.strip()[:200]
    found, total = people.list_people(search or None, PAGE_SIZE, (page - 1) * PAGE_SIZE,
                                      collection=current_collection(request, session))
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return render(request, "people.html", people=[person_view(p) for p in found], total=total,
                  search=search, page=page, pages=pages, section="people")


@router.get("/people/{person_id}")
def person_page(request: Request, settings: SettingsDep, session: Admin, person_id: str):
    person = person_in_reach(request, session, person_id)
    return render(request, "person.html", person=person_view(person), section="people",
                  store_images=settings.store_images, collection=person.collection)


@router.post("/people/{person_id}/details")
def save_details(request: Request, people: PeopleDep, settings: SettingsDep, session: AdminWrite, person_id: str,
                 name: Annotated[str, Form()] = "", external_id: Annotated[str, Form()] = "",
                 metadata: Annotated[str, Form()] = ""):
    """Name, external id and metadata as the form shows them (an empty external id or metadata clears it)."""
    collection = person_collection(request, session, person_id, change=True)
    try:
        meta = parse_metadata(metadata) if metadata.strip() else {}
        people.update_person(person_id, name, external_id.strip() or None, meta, {"name", "external_id", "metadata"},
                             collection=collection, actor=actor_of(request, session))
    except FaceshotError as exc:
        return render(request, "person.html", exc.status if exc.status < 500 else 422,
                      person=person_view(people.get_person(person_id, collection)), collection=collection,
                      error=exc.message, section="people", store_images=settings.store_images)
    return RedirectResponse(f"/admin/people/{person_id}?done=details_saved", status_code=303)


@router.post("/people/{person_id}/faces/{face_id}/delete")
def delete_face(request: Request, people: PeopleDep, session: AdminWrite, person_id: str, face_id: str):
    collection = person_collection(request, session, person_id, change=True)
    people.delete_face(person_id, face_id, collection, actor=actor_of(request, session))
    return RedirectResponse(f"/admin/people/{person_id}?done=face_deleted", status_code=303)


@router.get("/people/{person_id}/delete")
def confirm_delete(request: Request, session: Admin, person_id: str):
    person = person_in_reach(request, session, person_id, change=True)
    return render(request, "confirm_delete.html", person=person_view(person), section="people",
                  collection=person.collection)


@router.post("/people/{person_id}/delete")
def delete_person(request: Request, people: PeopleDep, session: AdminWrite, person_id: str):
    collection = person_collection(request, session, person_id, change=True)
    people.delete_person(person_id, collection, actor=actor_of(request, session))
    return RedirectResponse("/admin/people?done=person_deleted", status_code=303)


@router.get("/people/{person_id}/faces/{face_id}/image")
def face_image(request: Request, people: PeopleDep, session: Admin, person_id: str, face_id: str,
               thumb: bool = False):
    person = person_in_reach(request, session, person_id)
    data, media_type = people.face_image(person_id, face_id, person.collection)
    if thumb:
        box = next((f.box for f in person.faces if f.id == face_id), None)
        data, media_type = thumbnail(data, box), "image/jpeg"
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


def thumbnail(data: bytes, box: list[float] | None, size: int = 160) -> bytes:
    """A square JPEG around the face (the whole photo when the box is unknown)."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    if box:
        x1, y1, x2, y2 = box
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.6
        image = image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
    image = ImageOps.fit(image, (size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


# -- enroll, try it ------------------------------------------------------------------------------
@router.get("/enroll")
def enroll_page(request: Request, session: Admin):
    return render(request, "enroll.html", section="enroll", collection=current_collection(request, session, True))


@router.get("/try")
def try_page(request: Request, _s: Admin):
    return render(request, "try.html", section="try")


@router.get("/live")
def live_page(request: Request, _s: Admin):
    return render(request, "live.html", section="live")


# -- events and webhooks ------------------------------------------------------------------------
def _event_filters(source: str, who: str, day: str) -> dict:
    """The page's filters as EventLog's: a camera, known/unknown, one UTC day."""
    since = until = None
    if day:
        try:
            start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            start = None
        if start is not None:
            since, until = start, start + timedelta(days=1)
    return {"source": source.strip()[:100] or None, "since": since, "until": until,
            "unknown": {"known": False, "unknown": True}.get(who)}


def _events_page(request: Request, page: EventsPage, status_code: int = 200, **extra):
    q = request.query_params
    source, who, day = q.get("source", ""), q.get("who", ""), q.get("day", "")
    collection = current_collection(request, request.state.admin)
    rows, total = page.events.list(**_event_filters(source, who, day), collection=collection, limit=200)
    settings = page.settings
    return render(request, "events.html", status_code, section="events", events=[event_dict(e) for e in rows],
                  total=total, collection=collection,
                  # webhook URLs may carry tokens: a viewer does not see them (nor keys, nor the audit log)
                  hooks=page.webhooks.list(collection) if request.state.admin.may_change(collection) else [],
                  filters={"source": source, "who": who, "day": day},
                  query=urlencode({k: v for k, v in (("source", source), ("who", who), ("day", day)) if v}),
                  keeps_faces=settings.event_faces, keeps_unknown=settings.event_unknown_faces,
                  retention_days=settings.event_retention_days, **extra)


@router.get("/attendance")
def attendance_page(request: Request, events: EventsDep, session: Admin, day: str = "", source: str = ""):
    """Who was seen on one day (UTC) and when first and last: the sheet GET /presence answers, for viewers too."""
    collection = current_collection(request, session)
    today = datetime.now(timezone.utc).date()
    try:
        chosen = date.fromisoformat(day) if day else today
    except ValueError:
        raise ValidationFailed("The day must be a date (YYYY-MM-DD).", {"field": "day"}) from None
    source = source.strip()[:100]
    rows = events.presence(chosen, chosen, source or None, collection)
    one_day = timedelta(days=1)
    return render(request, "attendance.html", section="attendance", rows=rows, day=chosen, today=today,
                  source=source, collection=collection, previous=chosen - one_day,
                  next=chosen + one_day if chosen < today else None)


# A secret made by a POST is shown once by the page it redirects to (a reload there makes nothing again):
# handed over in a signed, sign-in-bound, two-minute cookie scoped to that page.
SHOWN_ONCE = {"/admin/settings": "faceshot_new_key", "/admin/events": "faceshot_new_webhook"}


def _redirect_showing_once(request: Request, session, page: str, data: dict) -> RedirectResponse:
    response = RedirectResponse(page, status_code=303)
    flash = signer(request).flash(data, session.sid, ttl_s=120)
    response.set_cookie(SHOWN_ONCE[page], flash, **{**signer(request).cookie_args(max_age=120), "path": page})
    return response


def _shown_once(request: Request, session, page: str) -> dict | None:
    return signer(request).read_flash(request.cookies.get(SHOWN_ONCE[page]), session.sid)


def _forget_shown(request: Request, response: Response, page: str) -> Response:
    """The page has shown it: never cached, and its cookie gone."""
    if SHOWN_ONCE[page] in request.cookies:
        response.headers["Cache-Control"] = "no-store"
        response.delete_cookie(SHOWN_ONCE[page], path=page, httponly=True, samesite="strict",
                               secure=signer(request).cookie_args()["secure"])
    return response


@router.get("/events")
def events_page(request: Request, page: EventsPageDep, session: Admin):
    response = _events_page(request, page, new_hook=_shown_once(request, session, "/admin/events"))
    return _forget_shown(request, response, "/admin/events")


@router.get("/events.csv")
def events_csv(request: Request, events: EventsDep, session: Admin):
    q = request.query_params
    text = events.csv(collection=current_collection(request, session), person_id=None,
                      **_event_filters(q.get("source", ""), q.get("who", ""), q.get("day", "")))
    return Response(text, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="events.csv"'})


@router.get("/events/{event_id}/face")
def event_face(request: Request, events: EventsDep, session: Admin, event_id: str):
    return Response(events.face(event_id, current_collection(request, session)), media_type="image/jpeg",
                    headers={"Cache-Control": "private"})


@router.post("/webhooks")
def add_webhook(request: Request, page: EventsPageDep, session: AdminWrite, url: Annotated[str, Form()] = ""):
    """Add, then redirect (a reload adds no second webhook); its secret is shown once by the GET."""
    collection = current_collection(request, session, change=True)
    try:
        hook, secret = page.webhooks.create(url.strip(), actor_of(request, session), collection)
    except FaceshotError as exc:
        return _events_page(request, page, 422, error=exc.message)
    return _redirect_showing_once(request, session, "/admin/events", {"url": hook.url, "secret": secret})


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(request: Request, webhooks: WebhooksDep, session: AdminWrite, webhook_id: str):
    webhooks.delete(webhook_id, actor_of(request, session), current_collection(request, session, True))
    return RedirectResponse("/admin/events?done=webhook_removed", status_code=303)


# -- settings, keys, collections and accounts -------------------------------------------------------
def _deployment_only(session) -> None:
    if not session.deployment_admin:
        raise Forbidden("Only a deployment admin may do this.", {"right": "deployment_admin"})


def _keys_shown(keys: Keys, session, collection: str) -> list:
    """A deployment admin sees every key; a collection's admin, that collection's."""
    every = keys.list()
    return every if session.deployment_admin else [k for k in every if k.collection == collection]


def _settings_page(request: Request, page: SettingsPage, status_code: int = 200, **extra):
    session = request.state.admin
    collection = current_collection(request, session)
    info = page.recognition.model_info(collection)  # what GET /api/v1/model says, from the same place
    deployment, manages = session.deployment_admin, session.may_change(collection)
    return render(request, "settings.html", status_code, section="settings", encoder=info.encoder,
                  encoder_choice=info.encoder_choice,
                  op=info.operating_point, counts=info.gallery, store_images=info.store_images,
                  keys=_keys_shown(page.keys, session, collection) if manages else [], signed_in_by=session.by,
                  collection=collection,
                  audit=page.audit.list(collection=None if deployment else collection, limit=20)[0] if manages
                  else [],
                  accounts=page.accounts.list() if deployment else [],
                  all_collections=all_collections(request) if deployment else [], **extra)


@router.get("/settings")
def settings_page(request: Request, page: SettingsPageDep, session: Admin):
    response = _settings_page(request, page, new_key=_shown_once(request, session, "/admin/settings"))
    response.headers["Cache-Control"] = "no-store"  # it may show a new key's secret, once
    return _forget_shown(request, response, "/admin/settings")


@router.get("/audit.csv")
def audit_csv(request: Request, audit: AuditDep, session: Admin):
    """Everything for a deployment admin; a collection's admin, that collection's entries; a viewer, nothing (the
    entries name keys and webhook URLs)."""
    collection = None if session.deployment_admin else current_collection(request, session, change=True)
    return Response(audit.csv(collection=collection), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@router.post("/keys")
def create_key(request: Request, page: SettingsPageDep, session: AdminWrite, name: Annotated[str, Form()] = "",
               role: Annotated[str, Form()] = "recognition", scope: Annotated[str, Form()] = "collection"):
    """Create, then redirect (a reload must not create another key); the secret is shown once by the GET.
    ``scope``: the collection the page shows, or (a deployment admin's choice) every collection."""
    collection = current_collection(request, session, change=True)
    if scope == "deployment":
        _deployment_only(session)
        collection = None
    try:
        key, secret = page.keys.create(name[:200], role, collection=collection, actor=actor_of(request, session))
    except FaceshotError as exc:
        return _settings_page(request, page, 422, error=exc.message)
    return _redirect_showing_once(request, session, "/admin/settings",
                                  {"name": key.name, "role": key.role, "secret": secret,
                                   "collection": key.collection})


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, page: SettingsPageDep, session: AdminWrite, key_id: str):
    key = next((k for k in _keys_shown(page.keys, session, current_collection(request, session)) if k.id == key_id),
               None)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.", {"key_id": key_id})
    if key.collection is not None:
        require(session, key.collection, change=True)
    if key_id == session.by:
        return _settings_page(request, page, 409, error="That is the key you signed in with; "
                              "sign in with another admin key to revoke it.")
    try:
        page.keys.revoke(key_id, actor_of(request, session))
    except FaceshotError as exc:  # e.g. the last admin key
        return _settings_page(request, page, exc.status, error=exc.message)
    return RedirectResponse("/admin/settings?done=key_revoked", status_code=303)


@router.post("/collections")
def create_collection(request: Request, collections: CollectionsDep, page: SettingsPageDep, session: AdminWrite,
                      name: Annotated[str, Form(max_length=200)] = ""):
    _deployment_only(session)
    try:
        collections.create_collection(name.strip(), actor_of(request, session))
    except FaceshotError as exc:
        return _settings_page(request, page, exc.status, error=exc.message)
    return RedirectResponse("/admin/settings?done=collection_created", status_code=303)


@router.post("/accounts")
def create_account(request: Request, page: SettingsPageDep, session: AdminWrite,
                   name: Annotated[str, Form(max_length=200)] = "", password: Annotated[str, Form()] = "",
                   right: Annotated[str, Form()] = "admin", collection: Annotated[str, Form(max_length=64)] = ""):
    """A named account: a deployment admin (``right`` = deployment), or admin/viewer of one collection (more
    rights through PATCH /api/v1/admin-accounts/{id})."""
    _deployment_only(session)
    try:
        if right == "deployment":
            page.accounts.create(name, password, deployment_admin=True, actor=actor_of(request, session))
        else:
            page.accounts.create(name, password, rights={collection: right}, actor=actor_of(request, session))
    except FaceshotError as exc:
        return _settings_page(request, page, exc.status, error=exc.message)
    return RedirectResponse("/admin/settings?done=account_created", status_code=303)


@router.post("/accounts/{account_id}")
def change_account(request: Request, page: SettingsPageDep, session: AdminWrite, account_id: str,
                   action: Annotated[str, Form()] = "", password: Annotated[str, Form()] = ""):
    """Disable, enable, set a new password (the last two end the account's sign-ins), or delete."""
    _deployment_only(session)
    actor = actor_of(request, session)
    if account_id == session.account_id and action in ("disable", "delete"):
        return _settings_page(request, page, 409, error="That is the account you are signed in with.")
    try:
        if action == "delete":
            page.accounts.delete(account_id, actor)
            return RedirectResponse("/admin/settings?done=account_deleted", status_code=303)
        if action in ("disable", "enable"):
            page.accounts.update(account_id, disabled=action == "disable", actor=actor)
        elif action == "password":
            page.accounts.update(account_id, password=password, actor=actor)
        else:
            raise NotFound("No such change.", {"action": action})
    except FaceshotError as exc:
        return _settings_page(request, page, exc.status, error=exc.message)
    return RedirectResponse("/admin/settings?done=account_changed", status_code=303)


# Included after the static files (app/admin/__init__.py): any other /admin address is a page that is not there.
fallback = APIRouter(prefix="/admin", route_class=AdminRoute, include_in_schema=False)


@fallback.get("/{path:path}")
def no_such_page(_s: Admin, path: str):
    raise NotFound("There is no such page on the admin site.", {"path": f"/admin/{path}"})
