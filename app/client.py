"""A typed Python client for faceshot's REST API, sync (:class:`FaceshotClient`) and async
(:class:`AsyncFaceshotClient`), on httpx.

    from app.client import FaceshotClient
    with FaceshotClient("http://127.0.0.1:8000", api_key="fs_...") as fs:
        fs.enroll("Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
        face = fs.identify("door.jpg").faces[0]
        print(face.person.name if face.person else "unknown", face.distance)

Results are the server's own response models (:mod:`app.core.schemas`), so they match the OpenAPI
document by construction. Every refusal is raised as :class:`FaceshotAPIError` with the
server's ``code``, ``message`` and ``details`` (and the HTTP status). A photo is a path, bytes
or a binary file object. Each operation is described once (:class:`_Calls`); the two clients
differ only in how they send it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import TypeAdapter

from app.core.paths import API_PREFIX, in_collection
from app.core.schemas import (
    AccountOut,
    AuditPage,
    CollectionOut,
    CompareOut,
    CorrectionsOut,
    DeliveryOut,
    DetectOut,
    EmbedOut,
    EnrollOut,
    EventOut,
    EventsDeleted,
    EventsPage,
    FaceOut,
    IdentifyOut,
    KeyCreated,
    KeyOut,
    ModelOut,
    PeoplePage,
    PersonOut,
    PresenceOut,
    SuggestionsOut,
    SupportDistancesOut,
    VerifyOut,
    VisitorDeleted,
    VisitorNamed,
    VisitorOut,
    VisitorsOut,
    WebhookCreated,
    WebhookOut,
)

Photo = str | PathLike | bytes | IO[bytes]


class FaceshotAPIError(Exception):
    """A refusal from the server, in its one error shape."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def _photo(photo: Photo, name: str) -> tuple[str, bytes, str]:
    if isinstance(photo, (bytes, bytearray, memoryview)):
        return (name, bytes(photo), "application/octet-stream")
    if isinstance(photo, (str, PathLike)):
        path = Path(photo)
        return (path.name, path.read_bytes(), "application/octet-stream")
    return (getattr(photo, "name", name), photo.read(), "application/octet-stream")


def _box(box) -> str | None:
    return None if box is None else ",".join(str(float(v)) for v in box)


def _form(**values) -> dict[str, str]:
    """Form fields without the ones left out (None); lists and objects as JSON."""
    out = {}
    for k, v in values.items():
        if v is None:
            continue
        out[k] = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return out


@dataclass
class _Call:
    """One HTTP request and how to read its answer."""

    method: str
    path: str
    out: Any = None  # a pydantic model (or TypeAdapter) for the JSON answer; None: no body; bytes: raw
    params: dict | None = None
    data: dict | None = None
    files: list | None = None
    json: Any = None
    ok: tuple[int, ...] = field(default=(200, 201, 204))

    def parse(self, response: httpx.Response):
        if response.status_code not in self.ok:
            try:
                error = response.json()["error"]
                raise FaceshotAPIError(response.status_code, error["code"], error["message"], error.get("details"))
            except (ValueError, KeyError, TypeError):
                raise FaceshotAPIError(response.status_code, "http_error", response.text[:500]) from None
        if self.out is None:
            return None
        if self.out is bytes:
            return response.content
        if isinstance(self.out, TypeAdapter):
            return self.out.validate_python(response.json())
        return self.out.model_validate(response.json())


_FACES = TypeAdapter(list[FaceOut])
_KEYS = TypeAdapter(list[KeyOut])
_ANY = TypeAdapter(dict[str, Any])
_WEBHOOKS = TypeAdapter(list[WebhookOut])
_COLLECTIONS = TypeAdapter(list[CollectionOut])
_DELIVERIES = TypeAdapter(list[DeliveryOut])
_ACCOUNTS = TypeAdapter(list[AccountOut])


class _Calls:
    """Every operation once; ``self._send`` (sync or async) carries it out."""

    def _send(self, call: _Call):  # pragma: no cover - each client has its own
        raise NotImplementedError

    # -- enrollment and people ---------------------------------------------------------------
    def enroll(self, name: str, photos: list[Photo] | None = None, *, external_id: str | None = None,
               metadata: dict | None = None, box=None, embeddings: list[list[float]] | None = None,
               encoder_hash: str | None = None, new_person: bool = False) -> EnrollOut:
        """A new person from 1-2 photos (or embeddings from :meth:`embed`), all or nothing; someone enrolled
        already under this name, whose face a photo matches, is refused (``person_exists``, with their id in
        ``details``) unless ``new_person``."""
        files = [("images", _photo(p, f"photo-{i}")) for i, p in enumerate(photos or [])]
        return self._send(_Call("POST", "/enroll", EnrollOut, files=files or None, data=_form(
            name=name, external_id=external_id, metadata=metadata, box=_box(box), embeddings=embeddings,
            encoder_hash=encoder_hash, new_person="true" if new_person else None)))

    def add_faces(self, person_id: str, photos: list[Photo] | None = None, *, box=None,
                  embeddings: list[list[float]] | None = None, encoder_hash: str | None = None) -> EnrollOut:
        files = [("images", _photo(p, f"photo-{i}")) for i, p in enumerate(photos or [])]
        return self._send(_Call("POST", f"/people/{person_id}/faces", EnrollOut, files=files or None,
                                data=_form(box=_box(box), embeddings=embeddings, encoder_hash=encoder_hash)))

    def create_person(self, name: str, *, external_id: str | None = None, metadata: dict | None = None) -> PersonOut:
        body = {"name": name, "external_id": external_id, "metadata": metadata or {}}
        return self._send(_Call("POST", "/people", PersonOut, json=body))

    def list_people(self, search: str | None = None, *, limit: int = 50, offset: int = 0) -> PeoplePage:
        params = {"limit": limit, "offset": offset, **({"search": search} if search else {})}
        return self._send(_Call("GET", "/people", PeoplePage, params=params))

    def get_person(self, person_id: str) -> PersonOut:
        return self._send(_Call("GET", f"/people/{person_id}", PersonOut))

    def update_person(self, person_id: str, **changes) -> PersonOut:
        """``name=``, ``external_id=``, ``metadata=``: the ones given change (None clears external_id)."""
        return self._send(_Call("PATCH", f"/people/{person_id}", PersonOut, json=changes))

    def delete_person(self, person_id: str) -> None:
        return self._send(_Call("DELETE", f"/people/{person_id}"))

    def list_faces(self, person_id: str) -> list[FaceOut]:
        return self._send(_Call("GET", f"/people/{person_id}/faces", _FACES))

    def delete_face(self, person_id: str, face_id: str) -> None:
        return self._send(_Call("DELETE", f"/people/{person_id}/faces/{face_id}"))

    def face_image(self, person_id: str, face_id: str) -> bytes:
        return self._send(_Call("GET", f"/people/{person_id}/faces/{face_id}/image", bytes))

    # -- recognition -------------------------------------------------------------------------
    def identify(self, photo: Photo | None = None, *, top_k: int = 3, threshold: float | None = None,
                 embedding: list[float] | None = None, encoder_hash: str | None = None) -> IdentifyOut:
        """Every face named or unknown (or the one ``embedding``, with ``encoder_hash``)."""
        files = [("image", _photo(photo, "photo"))] if photo is not None else None
        return self._send(_Call("POST", "/identify", IdentifyOut, files=files, data=_form(
            top_k=top_k, threshold=threshold, embedding=embedding, encoder_hash=encoder_hash)))

    def verify(self, photo: Photo, person_id: str, *, box=None, threshold: float | None = None) -> VerifyOut:
        return self._send(_Call("POST", "/verify", VerifyOut, files=[("image", _photo(photo, "photo"))],
                                data=_form(person_id=person_id, box=_box(box), threshold=threshold)))

    def compare(self, photo_a: Photo, photo_b: Photo | None = None, *, box_a=None, box_b=None,
                embedding_b: list[float] | None = None, encoder_hash: str | None = None,
                threshold: float | None = None) -> CompareOut:
        files = [("image_a", _photo(photo_a, "a"))] + ([("image_b", _photo(photo_b, "b"))] if photo_b is not None
                                                       else [])
        return self._send(_Call("POST", "/compare", CompareOut, files=files, data=_form(
            box_a=_box(box_a), box_b=_box(box_b), embedding_b=embedding_b, encoder_hash=encoder_hash,
            threshold=threshold)))

    def embed(self, photo: Photo) -> EmbedOut:
        return self._send(_Call("POST", "/embed", EmbedOut, files=[("image", _photo(photo, "photo"))]))

    def detect(self, photo: Photo) -> DetectOut:
        return self._send(_Call("POST", "/detect", DetectOut, files=[("image", _photo(photo, "photo"))]))

    # -- events and webhooks -----------------------------------------------------------------
    def post_event(self, event: dict) -> EventOut:
        """One recognition event, as ``faceshot watch --server`` sends it (see EventIn)."""
        return self._send(_Call("POST", "/events", EventOut, json=event))

    def list_events(self, *, person_id: str | None = None, source: str | None = None, since: str | None = None,
                    until: str | None = None, unknown: bool | None = None, limit: int = 100,
                    offset: int = 0) -> EventsPage:
        params = {k: v for k, v in {"person_id": person_id, "source": source, "since": since, "until": until,
                                    "unknown": None if unknown is None else str(unknown).lower(),
                                    "limit": limit, "offset": offset}.items() if v is not None}
        return self._send(_Call("GET", "/events", EventsPage, params=params))

    def enroll_from_event(self, event_id: str, *, person_id: str | None = None, name: str | None = None,
                          new_person: bool = False) -> EnrollOut:
        """The event's kept face added to ``person_id``, or enrolled as a new person ``name``: the same checks and
        warnings as a photo (refusals raise :class:`FaceshotAPIError`, e.g. ``no_face_kept`` in ``details``)."""
        body = {k: v for k, v in {"person_id": person_id, "name": name}.items() if v is not None}
        if new_person:
            body["new_person"] = True
        return self._send(_Call("POST", f"/events/{event_id}/enroll", EnrollOut, json=body))

    def not_this_person(self, event_id: str) -> EventOut:
        """Say a named event was not that person: it no longer counts in presence; who said it is recorded."""
        return self._send(_Call("POST", f"/events/{event_id}/not-this-person", EventOut))

    def undo_not_this_person(self, event_id: str) -> EventOut:
        return self._send(_Call("DELETE", f"/events/{event_id}/not-this-person", EventOut))

    def support_distances(self, event_id: str) -> SupportDistancesOut:
        """The named person's support faces by distance from the event's kept embedding, nearest first."""
        return self._send(_Call("GET", f"/events/{event_id}/support-distances", SupportDistancesOut))

    def suggestions(self, limit: int = 50) -> SuggestionsOut:
        """Named events worth adding to their person's support set, best first (read-only): accept one with
        :meth:`enroll_from_event` (``person_id``), or :meth:`dismiss_suggestion`."""
        return self._send(_Call("GET", "/suggestions", SuggestionsOut, params={"limit": limit}))

    def dismiss_suggestion(self, event_id: str) -> None:
        """Stop suggesting an event's face (audit-logged)."""
        return self._send(_Call("POST", f"/suggestions/{event_id}/dismiss"))

    def corrections(self, person_id: str | None = None) -> CorrectionsOut:
        """"Not this person" corrections per person, most first."""
        return self._send(_Call("GET", "/corrections", CorrectionsOut,
                                params={"person_id": person_id} if person_id else None))

    def forget_camera(self, source: str) -> EventsDeleted:
        """Delete one camera's events (and, with MQTT, its Home Assistant device)."""
        return self._send(_Call("DELETE", "/events", EventsDeleted, params={"source": source}))

    # -- unknown visitors (grouped as their events arrive) ----------------------------------------
    def list_visitors(self, status: str = "active") -> VisitorsOut:
        """Groups of unknown faces: active (default), dismissed or all."""
        return self._send(_Call("GET", "/visitors", VisitorsOut, params={"status": status}))

    def name_visitor(self, visitor_id: int, name: str, *, new_person: bool = False) -> VisitorNamed:
        """One new person enrolled from the group's best 1-3 faces (the group is closed)."""
        body = {"name": name, **({"new_person": True} if new_person else {})}
        return self._send(_Call("POST", f"/visitors/{visitor_id}/name", VisitorNamed, json=body))

    def merge_visitors(self, visitor_id: int, other: int) -> VisitorOut:
        """``other``'s faces into ``visitor_id`` (409 ``cannot_link`` where an admin said they are different)."""
        return self._send(_Call("POST", f"/visitors/{visitor_id}/merge", VisitorOut, json={"other": other}))

    def split_visitor(self, visitor_id: int, event_id: str) -> VisitorOut:
        """The event's face into a group of its own, never merged with ``visitor_id`` again; returns the new group."""
        return self._send(_Call("POST", f"/visitors/{visitor_id}/split", VisitorOut, json={"event_id": event_id}))

    def dismiss_visitor(self, visitor_id: int) -> VisitorOut:
        return self._send(_Call("POST", f"/visitors/{visitor_id}/dismiss", VisitorOut))

    def delete_visitor(self, visitor_id: int) -> VisitorDeleted:
        """The group and its events' kept faces and embeddings (the events stay in the log)."""
        return self._send(_Call("DELETE", f"/visitors/{visitor_id}", VisitorDeleted))

    def presence(self, since: str, until: str | None = None, *, source: str | None = None) -> PresenceOut:
        params = {k: v for k, v in {"since": since, "until": until, "source": source}.items() if v is not None}
        return self._send(_Call("GET", "/presence", PresenceOut, params=params))

    def create_webhook(self, url: str) -> WebhookCreated:
        return self._send(_Call("POST", "/webhooks", WebhookCreated, json={"url": url}))

    def list_webhooks(self) -> list[WebhookOut]:
        return self._send(_Call("GET", "/webhooks", _WEBHOOKS))

    def delete_webhook(self, webhook_id: str) -> None:
        return self._send(_Call("DELETE", f"/webhooks/{webhook_id}"))

    def deliveries(self, webhook_id: str) -> list[DeliveryOut]:
        return self._send(_Call("GET", f"/webhooks/{webhook_id}/deliveries", _DELIVERIES))

    # -- the service -------------------------------------------------------------------------
    def model(self) -> ModelOut:
        return self._send(_Call("GET", "/model", ModelOut))

    def ready(self) -> dict[str, Any]:
        return self._send(_Call("GET", "/ready", _ANY, ok=(200, 503)))

    def list_keys(self) -> list[KeyOut]:
        return self._send(_Call("GET", "/keys", _KEYS))

    def create_key(self, name: str, role: str = "recognition", *, collection: str | None = None) -> KeyCreated:
        """``collection``: a key that works in that collection only."""
        return self._send(_Call("POST", "/keys", KeyCreated, json={"name": name, "role": role,
                                                                   "collection": collection}))

    # -- collections and the audit log ---------------------------------------------------------
    def create_collection(self, name: str) -> CollectionOut:
        return self._send(_Call("POST", "/collections", CollectionOut, json={"name": name}))

    def list_collections(self) -> list[CollectionOut]:
        return self._send(_Call("GET", "/collections", _COLLECTIONS))

    def delete_collection(self, name: str) -> None:
        return self._send(_Call("DELETE", f"/collections/{name}"))

    def move_person(self, person_id: str, to: str, *, copy: bool = False) -> PersonOut:
        """From this client's collection into ``to`` (``copy``: a new person, the original stays)."""
        return self._send(_Call("POST", f"/people/{person_id}/move", PersonOut,
                                json={"to": to, "mode": "copy" if copy else "move"}))

    def audit(self, *, collection: str | None = None, action: str | None = None, limit: int = 100,
              offset: int = 0) -> AuditPage:
        params = {k: v for k, v in {"collection": collection, "action": action, "limit": limit,
                                    "offset": offset}.items() if v is not None}
        return self._send(_Call("GET", "/audit", AuditPage, params=params))

    def revoke_key(self, key_id: str) -> KeyOut:
        return self._send(_Call("DELETE", f"/keys/{key_id}", KeyOut))

    # -- admin-page accounts (a deployment admin key) -------------------------------------------
    def create_account(self, name: str, password: str, *, deployment_admin: bool = False,
                       rights: dict[str, str] | None = None) -> AccountOut:
        """``rights``: collection -> ``admin`` or ``viewer``; or ``deployment_admin`` for every collection."""
        return self._send(_Call("POST", "/admin-accounts", AccountOut,
                                json={"name": name, "password": password, "deployment_admin": deployment_admin,
                                      "rights": rights or {}}))

    def list_accounts(self) -> list[AccountOut]:
        return self._send(_Call("GET", "/admin-accounts", _ACCOUNTS))

    def update_account(self, account_id: str, *, password: str | None = None, deployment_admin: bool | None = None,
                       rights: dict[str, str] | None = None, disabled: bool | None = None) -> AccountOut:
        """Only what is given changes; ``rights`` replaces them all; a new password or ``disabled`` ends sign-ins."""
        changes = {"password": password, "deployment_admin": deployment_admin, "rights": rights, "disabled": disabled}
        return self._send(_Call("PATCH", f"/admin-accounts/{account_id}", AccountOut,
                                json={k: v for k, v in changes.items() if v is not None}))

    def delete_account(self, account_id: str) -> None:
        return self._send(_Call("DELETE", f"/admin-accounts/{account_id}"))


def _request_args(call: _Call) -> dict[str, Any]:
    return {"params": call.params, "data": call.data, "files": call.files, "json": call.json}


def _path(call: _Call, collection: str | None) -> str:
    """A collection's operation under /collections/{name}/ (none: today's paths, the default collection's)."""
    return in_collection(call.path, collection)


class FaceshotClient(_Calls):
    """Blocking client. ``collection``: work within that collection (default: today's paths, `default`'s);
    ``transport``: an httpx transport (e.g. ``httpx.ASGITransport`` in tests)."""

    def __init__(self, base_url: str, api_key: str, *, collection: str | None = None, timeout: float = 60.0,
                 transport=None):
        self.collection = collection
        self._http = httpx.Client(base_url=base_url.rstrip("/") + API_PREFIX, headers={"X-API-Key": api_key},
                                  timeout=timeout, transport=transport)

    def _send(self, call: _Call):
        return call.parse(self._http.request(call.method, _path(call, self.collection), **_request_args(call)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FaceshotClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncFaceshotClient(_Calls):
    """The same operations as :class:`FaceshotClient`, each awaited: ``await fs.identify("door.jpg")``."""

    def __init__(self, base_url: str, api_key: str, *, collection: str | None = None, timeout: float = 60.0,
                 transport=None):
        self.collection = collection
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + API_PREFIX, headers={"X-API-Key": api_key},
                                       timeout=timeout, transport=transport)

    async def _send(self, call: _Call):
        return call.parse(await self._http.request(call.method, _path(call, self.collection),
                                                   **_request_args(call)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncFaceshotClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
