"""Route dependencies: the service, who is calling, a place in the inference queue, and the form fields' parsing.

The credential and queue dependencies are marked :func:`~app.api.gate.before_body`: their
route checks them before it reads the request's body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from app.access.accounts import Accounts
from app.access.admin_sessions import SessionSigner
from app.access.audit import AuditLog
from app.access.keys import Keys
from app.access.oidc import OidcSignIn
from app.access.proxy_sign_in import ProxySignIn
from app.api.gate import before_body
from app.core.config import Settings
from app.core.errors import Unauthorized, ValidationFailed
from app.core.paths import COLLECTION_SCOPE
from app.core.tables import DEFAULT_COLLECTION, ApiKey
from app.gallery.collections import Collections
from app.gallery.people import People
from app.inference.admission import InferenceQueue, Slot
from app.live.events import EventLog
from app.live.review import EventReview
from app.live.suggestions import Suggestions
from app.live.visitors import VisitorGroups
from app.live.webhooks import Webhooks
from app.recognition.compreface import CompreFace
from app.recognition.service import Recognition
from app.service import FaceService
from models.errors import InvalidImage
from models.imageio import check_photo_size
from models.pipeline import parse_box as read_box

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An admin or recognition key")


def get_service(request: Request) -> FaceService:
    """The container: read here alone, by the accessors below (and /ready, which reports on all of it)."""
    return request.app.state.service




# The domain service a route works with, one dependency each (no route reaches through the container).
def settings_of(request: Request) -> Settings:
    return get_service(request).settings


def people_of(request: Request) -> People:
    return get_service(request).people


def collections_of(request: Request) -> Collections:
    return get_service(request).collections


def recognition_of(request: Request) -> Recognition:
    return get_service(request).recognition


def events_of(request: Request) -> EventLog:
    return get_service(request).events


def review_of(request: Request) -> EventReview:
    return get_service(request).review


def suggestions_of(request: Request) -> Suggestions:
    return get_service(request).suggestions


def visitors_of(request: Request) -> VisitorGroups:
    return get_service(request).visitors


def webhooks_of(request: Request) -> Webhooks:
    return get_service(request).webhooks


def audit_of(request: Request) -> AuditLog:
    return get_service(request).audit


def accounts_of(request: Request) -> Accounts:
    return get_service(request).accounts


def keys_of(request: Request) -> Keys:
    return get_service(request).keys


def admin_sessions_of(request: Request) -> SessionSigner:
    return get_service(request).admin_sessions


def proxy_sign_in_of(request: Request) -> ProxySignIn:
    return get_service(request).proxy_sign_in


def oidc_of(request: Request) -> OidcSignIn:
    return get_service(request).oidc


def queue_of(request: Request) -> InferenceQueue:
    return get_service(request).queue


def compreface_of(request: Request) -> CompreFace:
    return get_service(request).compreface


SettingsDep = Annotated[Settings, Depends(settings_of)]
PeopleDep = Annotated[People, Depends(people_of)]
CollectionsDep = Annotated[Collections, Depends(collections_of)]
RecognitionDep = Annotated[Recognition, Depends(recognition_of)]
EventsDep = Annotated[EventLog, Depends(events_of)]
ReviewDep = Annotated[EventReview, Depends(review_of)]
VisitorsDep = Annotated[VisitorGroups, Depends(visitors_of)]
SuggestionsDep = Annotated[Suggestions, Depends(suggestions_of)]
WebhooksDep = Annotated[Webhooks, Depends(webhooks_of)]
AuditDep = Annotated[AuditLog, Depends(audit_of)]
AccountsDep = Annotated[Accounts, Depends(accounts_of)]
ProxySignInDep = Annotated[ProxySignIn, Depends(proxy_sign_in_of)]
OidcDep = Annotated[OidcSignIn, Depends(oidc_of)]
KeysDep = Annotated[Keys, Depends(keys_of)]
CompreFaceDep = Annotated[CompreFace, Depends(compreface_of)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"




def checked_key(request: Request, secret: str | None, need_admin: bool, collection: str | None = None,
                own_collection: bool = False) -> ApiKey:
    """Authenticate and count the request against its key's rate limit.

    Only failures count against the caller's address, and only they are refused once it has
    sent too many (429): a valid key always gets through, so a flood of wrong keys from one
    address (every camera behind one NAT) cannot lock the right ones out. ``own_collection``:
    the operation works in the key's own collection (`default` for a key of every collection).
    """
    limiter = request.app.state.limiter
    client = client_address(request)
    try:
        key = keys_of(request).authenticate(secret, need_admin=need_admin, collection=collection,
                                            own_collection=own_collection)
    except Unauthorized:
        limiter.check_failures(client)
        limiter.record_failure(client)
        raise
    limiter.hit_key(key.id)
    if own_collection:
        collection = key.collection or DEFAULT_COLLECTION
    if collection is not None and collection != DEFAULT_COLLECTION:
        # after the key: no probing which collections exist without one
        collections_of(request).check_collection(collection)
    return key


def _auth_threads(request: Request) -> anyio.CapacityLimiter:
    """Threads of their own for key lookups, so a queue of slow inference never delays a refusal."""
    state = request.app.state
    if getattr(state, "auth_threads", None) is None:
        state.auth_threads = anyio.CapacityLimiter(8)
    return state.auth_threads


def _collection(request: Request, scoped: bool) -> str | None:
    """The collection an operation works in: the path's, else `default`; None for deployment-wide ones."""
    return request.scope.get(COLLECTION_SCOPE, DEFAULT_COLLECTION) if scoped else None


def _key_check(need_admin: bool, scoped: bool = True):
    async def check(request: Request) -> None:
        secret = request.headers.get(API_KEY_HEADER)
        collection = _collection(request, scoped)
        request.state.collection = collection
        request.state.api_key = await anyio.to_thread.run_sync(
            checked_key, request, secret, need_admin, collection,
            limiter=_auth_threads(request))

    return check


def _key(request: Request, key: str | None, need_admin: bool, scoped: bool) -> ApiKey:
    checked = getattr(request.state, "api_key", None)
    return checked if checked is not None else checked_key(request, key, need_admin, _collection(request, scoped))


@before_body(_key_check(need_admin=False))
def recognition_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return _key(request, key, need_admin=False, scoped=True)


@before_body(_key_check(need_admin=True))
def admin_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return _key(request, key, need_admin=True, scoped=True)


@before_body(_key_check(need_admin=True, scoped=False))
def deployment_admin_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return _key(request, key, need_admin=True, scoped=False)


def current_collection(request: Request) -> str:
    """The collection the operation works in (the path's, or `default`), checked with the key before the body."""
    return getattr(request.state, "collection", None) or _collection(request, True)


def _own_collection_key_check(need_admin: bool):
    async def check(request: Request) -> None:
        secret = request.headers.get(API_KEY_HEADER)
        key = await anyio.to_thread.run_sync(checked_key, request, secret, need_admin, None, True,
                                             limiter=_auth_threads(request))
        request.state.api_key, request.state.collection = key, key.collection or DEFAULT_COLLECTION

    return check


def _own_collection_key(request: Request, key: str | None, need_admin: bool) -> ApiKey:
    checked = getattr(request.state, "api_key", None)
    if checked is None:
        checked = checked_key(request, key, need_admin, None, True)
        request.state.collection = checked.collection or DEFAULT_COLLECTION
    return checked


@before_body(_own_collection_key_check(need_admin=False))
def service_recognition_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return _own_collection_key(request, key, need_admin=False)


@before_body(_own_collection_key_check(need_admin=True))
def service_admin_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
    return _own_collection_key(request, key, need_admin=True)


RecognitionKey = Annotated[ApiKey, Depends(recognition_key)]  # within the operation's collection
AdminKey = Annotated[ApiKey, Depends(admin_key)]
DeploymentAdminKey = Annotated[ApiKey, Depends(deployment_admin_key)]
CollectionDep = Annotated[str, Depends(current_collection)]
# CompreFace's routes: the key's own collection is the "service" they work in (CollectionDep says which)
ServiceRecognitionKey = Annotated[ApiKey, Depends(service_recognition_key)]
ServiceAdminKey = Annotated[ApiKey, Depends(service_admin_key)]


async def _admit(request: Request) -> None:
    request.state.inference_slot = queue_of(request).admit()


@before_body(_admit, order=0)
def inference_slot(request: Request) -> Slot:
    """A place in the bounded inference queue, taken before the body is read; the route releases it."""
    return request.state.inference_slot


InferenceSlot = Annotated[Slot, Depends(inference_slot)]


def photo_reader(request: Request) -> Callable[[UploadFile], bytes]:
    """Reads an upload's bytes within this deployment's photo limit (FACESHOT_MAX_UPLOAD_BYTES)."""
    limit = settings_of(request).max_upload_bytes
    return lambda upload: read_upload(upload, limit)


ReadPhoto = Annotated[Callable[[UploadFile], bytes], Depends(photo_reader)]


def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing more than ``limit`` without reading them all."""
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        check_photo_size(upload.size or len(data), limit, filename=upload.filename)
    if not data:
        raise InvalidImage("The uploaded file is empty.", {"filename": upload.filename})
    return data


def parse_box(box: str | None) -> list[float] | None:
    """``box`` as "x1,y1,x2,y2" (or a JSON list) in the photo's pixels (:func:`models.pipeline.parse_box`)."""
    try:
        values = read_box(box)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"field": "box"}) from None
    return None if values is None else list(values)


def collect_uploads(images: list[UploadFile] | None, image: UploadFile | None) -> list[UploadFile]:
    """Photos sent as repeated `images`, or one `image` (their count was checked as the form was read)."""
    uploads = list(images or []) + ([image] if image is not None else [])
    if not uploads:
        raise ValidationFailed("Send one photo as `image` or several as `images`.", {"field": "images"})
    return uploads
