"""What a request passes before a byte of its body is read: its text, a place in the inference queue, its credentials.

FastAPI reads (and spools to disk) a multipart body before it solves a route's
dependencies, so a key checked by a dependency was checked after an anonymous caller's
150 MB had been written to a temporary file. :class:`GatedRoute` runs the route's own
dependencies that are marked :func:`before_body` first, then parses the body within the
route's limits (image count, field count, field size; bytes and time are
:class:`BodyGuard`'s, counted on the streamed bytes), and maps every refusal to the one
error shape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, UploadFile, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException

from app.core.errors import (
    InvalidMultipart,
    TooManyImages,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
)
from app.core.inputs import strict_json, text_problem
from app.core.schemas import error_responses
from app.inference.runner import MAX_FACES_PER_ENROLL
from models.errors import InvalidImage
from models.imageio import check_photo_size, size_text

MAX_FORM_FIELDS = 32
MAX_FORM_FIELD_BYTES = 64 * 1024
JSON_BODY_LIMIT = 64 * 1024  # every JSON body the API takes is a few fields and at most 16 KB of metadata
BODY_LIMIT = "faceshot.body_limit"  # scope key: the byte limit in force for this request's body
# base64 line breaks (76 characters a line) and a data-URL prefix, on top of 4/3 of the photo
BASE64_SLACK = 1 / 38
JSON_PHOTO_BODIES = 2  # JSON photo bodies parsed and decoded at once per worker (more wait their turn)

EarlyCheck = Callable[[Request], Awaitable[Any]]


def before_body(check: EarlyCheck, order: int = 1):
    """Mark a dependency to be run (as ``await check(request)``) before its route reads the body.

    ``check`` stores what it found on ``request.state``; the dependency, solved by FastAPI
    after the body, returns that. Lower ``order`` runs first.
    """

    def mark(dependency):
        dependency.before_body = (order, check)
        return dependency

    return mark


def _early_checks(dependant: Dependant) -> list[EarlyCheck]:
    found: dict[Any, tuple[int, EarlyCheck]] = {}

    def walk(d: Dependant) -> None:
        for sub in d.dependencies:
            mark = getattr(sub.call, "before_body", None)
            if mark is not None:
                found[sub.call] = mark
            walk(sub)

    walk(dependant)
    return [check for _, check in sorted(found.values(), key=lambda m: m[0])]


def _form_fields(dependant: Dependant) -> dict[str, str]:
    """The route's form fields by name: ``file``, ``files`` (a list of photos), ``texts`` (a repeated field) or
    ``text``."""
    kinds = {}
    for field in dependant.body_params:
        annotation = field.field_info.annotation
        args = (annotation, *typing.get_args(annotation))
        if any(typing.get_origin(a) is list and UploadFile in typing.get_args(a) for a in args):
            kinds[field.alias] = "files"
        elif UploadFile in args:
            kinds[field.alias] = "file"
        elif any(typing.get_origin(a) is list for a in args):
            kinds[field.alias] = "texts"
        else:
            kinds[field.alias] = "text"
    return kinds


def _file_limit(fields: dict[str, str]) -> int:
    """How many files the route's form takes: each photo field one, a list of them MAX_FACES_PER_ENROLL."""
    kinds = list(fields.values())
    return MAX_FACES_PER_ENROLL if "files" in kinds else kinds.count("file")


def base64_chars(max_bytes: int) -> int:
    """The longest base64 text (line breaks and a data-URL prefix allowed) of a photo within ``max_bytes``."""
    chars = 4 * -(-max_bytes // 3)
    return chars + int(chars * BASE64_SLACK) + 256


def photo_body_limit(kind: str, max_files: int, max_bytes: int) -> int:
    """The bytes an operation's body may carry: its own photos (base64 in JSON) and a few fields, not another
    operation's ten (a 201 MB JSON body to /identify, which takes one photo, froze the worker for 20 s).

    A quarter more than the photos' own limit: a body a little over is read, so its photo is refused by the
    precise check (``image_too_large``, naming the field) rather than the coarse one (``request_too_large``)."""
    per_photo = base64_chars(max_bytes) if kind == "json" else max_bytes
    return max_files * per_photo * 5 // 4 + JSON_BODY_LIMIT


_WHITESPACE = dict.fromkeys(map(ord, " \t\r\n\f\v"))


def _photo_bytes(value: Any, field: str, max_bytes: int) -> bytes:
    """A photo sent in JSON: base64 (standard or URL-safe alphabet, padding optional), a data-URL prefix allowed.

    The raw text's length is checked before anything is split, copied or decoded, so an oversized photo costs
    no memory twice; whitespace (line breaks, as some encoders write them) goes in one pass, one copy.
    """
    if not isinstance(value, str):
        raise ValidationFailed(f"`{field}` must be a base64 string (or a list of them, for `images`).",
                               {"field": field})
    if len(value) > base64_chars(max_bytes):  # before any copy: the text's length bounds the photo's
        check_photo_size(len(value) * 3 // 4, max_bytes, field=field)
    comma = value.find(",", 0, 256) if value.startswith("data:") else -1
    text = value[comma + 1:] if comma >= 0 else value
    text = text.translate(_WHITESPACE)
    check_photo_size(len(text) * 3 // 4, max_bytes, field=field)
    text = text.replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(f"`{field}` is not valid base64.", {"field": field}) from None
    if not data:
        raise InvalidImage("The file is empty.", {"field": field, "bytes": 0})
    return data


def _form_value(value: Any, field: str) -> str:
    """A JSON field as the text its form field would carry (numbers, booleans; metadata and boxes as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if field == "box" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    raise ValidationFailed(f"`{field}` has a value of the wrong type.", {"field": field})


def _json_form(body: bytes, fields: dict[str, str], max_files: int, max_bytes: int) -> FormData:
    """A photo operation's JSON body, parsed, decoded and checked (in a worker thread: it may be megabytes)."""
    try:
        data = strict_json(body)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed(f"The JSON body cannot be accepted: {exc}", {"field": "body"}) from None
    form = form_from_json(data, fields, max_files, max_bytes)
    _check_form_text(form)
    return form


def form_from_json(data: Any, fields: dict[str, str], max_files: int, max_bytes: int) -> FormData:
    """A JSON body for a photo operation as the multipart form it stands for, so both take one path.

    ``{"image": "<base64>", "top_k": 5}`` is the form ``image=<file>, top_k=5``; ``images`` takes a list;
    CompreFace's ``file`` names the operation's photo field. An unknown field is refused, not ignored.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("The JSON body must be an object.", {"field": "body"})
    photo_fields = [n for n, k in fields.items() if k in ("file", "files")]
    items: list[tuple[str, Any]] = []
    for name, value in data.items():
        if name == "file" and "file" not in fields and len(photo_fields) == 1:
            name = photo_fields[0]  # a client written for CompreFace
        kind = fields.get(name)
        if kind is None:
            takes = ", ".join(f"`{n}`" for n in fields)
            raise ValidationFailed(f"This operation has no field `{name}` (it takes: {takes}).", {"field": name})
        if value is None:
            continue
        if kind in ("file", "files"):
            values = value if kind == "files" and isinstance(value, list) else [value]
            if len(values) > max_files:
                raise TooManyImages(f"At most {max_files} photos per request.", {"max_files": max_files})
            for i, v in enumerate(values):
                photo = _photo_bytes(v, name, max_bytes)
                items.append((name, StarletteUpload(io.BytesIO(photo), size=len(photo), filename=f"{name}-{i}",
                                                    headers=Headers({"content-type": "application/octet-stream"}))))
        elif kind == "texts":
            for v in value if isinstance(value, list) and name != "box" else [value]:
                items.append((name, _form_value(v, name)))
        else:
            items.append((name, _form_value(value, name)))
    return FormData(items)


PHOTO_SCHEMA = {"type": "string", "format": "byte",
                "description": "the photo, base64 (a `data:image/...;base64,` prefix is accepted)"}
EXAMPLE_PHOTO = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsL..."


def json_body_schema(dependant: Dependant, fields: dict[str, str]) -> dict:
    """The OpenAPI media type of a photo operation's JSON body: its form's fields, photos as base64."""
    properties, required, example = {}, [], {}
    for field in dependant.body_params:
        name, kind, info = field.alias, fields[field.alias], field.field_info
        args = (info.annotation, *typing.get_args(info.annotation))
        first_photo = not any(fields.get(n) in ("file", "files") for n in example)
        if kind == "file":
            schema = dict(PHOTO_SCHEMA)
            if first_photo:
                example[name] = EXAMPLE_PHOTO
        elif kind == "files":
            schema = {"type": "array", "items": PHOTO_SCHEMA, "maxItems": MAX_FACES_PER_ENROLL,
                      "description": "the photos, base64"}
            if first_photo:
                example[name] = [EXAMPLE_PHOTO]
        elif kind == "texts":
            schema = {"type": "array", "items": {"type": "string"}}
        elif int in args:
            schema = {"type": "integer"}
        elif float in args:
            schema = {"type": "number"}
        elif name == "metadata":
            schema = {"type": "object", "description": "a JSON object stored with the person"}
        elif name in ("box", "box_a", "box_b"):
            schema = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                      "description": "x1,y1,x2,y2 of the face to use"}
        else:
            schema = {"type": "string"}
        if info.description and "description" not in schema:
            schema["description"] = info.description
        properties[name] = schema
        if info.is_required():
            required.append(name)
            example.setdefault(name, "Ada Lovelace" if name == "name" else "…")
    return {"schema": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False}, "example": example}


def _refusal_for(exc: HTTPException) -> Exception:
    """The multipart parser's 400s, as errors with codes of their own."""
    detail = str(exc.detail)
    if detail.startswith("Too many files"):
        return TooManyImages(detail, {})
    if detail.startswith("Too many fields"):
        return ValidationFailed(detail, {"max_fields": MAX_FORM_FIELDS})
    if detail.startswith("Part exceeded maximum size"):
        return ValidationFailed(detail, {"max_field_bytes": MAX_FORM_FIELD_BYTES})
    return InvalidMultipart(f"The multipart body could not be read: {detail}", {})


def _check_parameters(request: Request) -> None:
    for where, values in (("path", request.path_params.items()), ("query", request.query_params.multi_items())):
        for name, value in values:
            if isinstance(value, str) and (problem := text_problem(value)):
                raise ValidationFailed(f"The {where} parameter `{name}` {problem}.", {"field": name})


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _check_query_names(request: Request, known: set[str]) -> None:
    """A query parameter the operation does not take is refused, not ignored: `identify?threshold=0.3` looked like
    it set the threshold and did nothing."""
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(f"`{n}`" for n in sorted(known)) or "none"
            raise ValidationFailed(f"This operation has no query parameter `{name}` (it takes: {takes}).",
                                   {"field": name, "where": "query"})


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json(request: Request) -> bool:
    ctype = _content_type(request)
    return ctype == "application/json" or ctype.endswith("+json")


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _is_form(request: Request) -> bool:
    """A form Starlette reads (multipart, or urlencoded for the text fields), or no body at all (the route then
    says which photo is missing)."""
    return (_content_type(request) in ("multipart/form-data", "application/x-www-form-urlencoded")
            or not (_content_type(request) or _has_body(request)))


def _how_to_send(fields: dict[str, str]) -> str:
    """The two ways a photo operation takes its photo, named for this operation's photo field."""
    name, kind = next((n, k) for n, k in fields.items() if k in ("file", "files"))
    example = '["<base64>", ...]' if kind == "files" else '"<base64>"'
    return (f"Send the photo as multipart/form-data with the file in `{name}` (curl -F {name}=@photo.jpg), "
            f"or as JSON with it in base64: {{\"{name}\": {example}}} (Content-Type: application/json).")


def _check_form_text(form: FormData) -> None:
    for name, value in form.multi_items():
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ValidationFailed(f"The form field `{name}` {problem}.", {"field": name})


class GatedRoute(APIRoute):
    """An API route whose cheap refusals (text, unknown query names, queue, credentials) come before its body is
    read."""

    refuse_unknown_query = True  # the API's operations; the admin pages read `next` and `done` themselves

    def get_route_handler(self):
        handler = super().get_route_handler()
        checks = _early_checks(self.dependant)
        query_names = _query_names(self.dependant) if self.refuse_unknown_query else None
        takes_form = self.body_field is not None and isinstance(self.body_field.field_info, params.Form)
        fields = _form_fields(self.dependant) if takes_form else {}
        max_files = _file_limit(fields)
        self.takes_photos = any(k in ("file", "files") for k in fields.values())
        if self.takes_photos:  # the JSON twin of the multipart body, in the OpenAPI document
            self.openapi_extra = {**(self.openapi_extra or {}), "requestBody": {"content": {
                "application/json": json_body_schema(self.dependant, fields)}}}
        if self.body_field is not None:  # a body in another media type than the route reads
            self.responses.setdefault(415, error_responses(415)[415])

        async def route(request: Request):
            try:
                _check_parameters(request)
                if query_names is not None:
                    _check_query_names(request, query_names)
                for check in checks:
                    await check(request)
                if takes_form and self.takes_photos and _is_json(request):
                    await self._read_json_form(request, fields, max_files)
                elif takes_form and self.takes_photos and not _is_form(request):
                    raise UnsupportedMediaType(_how_to_send(fields), {"content_type": _content_type(request)})
                elif takes_form:
                    await self._read_form(request, max_files, fields)
                elif request.method in ("POST", "PUT", "PATCH") and self.body_field is not None:
                    await self._check_json(request)
                return await handler(request)
            finally:
                slot = getattr(request.state, "inference_slot", None)
                if slot is not None:
                    slot.release()

        return route

    @staticmethod
    def _limit_body(request: Request, limit: int) -> None:
        """This operation's own body limit, in force for the bytes still to come; a declared length over it is
        refused before any is read."""
        request.scope[BODY_LIMIT] = limit
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"The request body is over this operation's limit of {size_text(limit)}.")

    @classmethod
    async def _read_form(cls, request: Request, max_files: int, fields: dict[str, str]) -> None:
        if max_files:
            max_bytes = request.app.state.settings.max_upload_bytes
            cls._limit_body(request, photo_body_limit("multipart", max_files, max_bytes))
        try:
            form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS,
                                      max_part_size=MAX_FORM_FIELD_BYTES)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise  # the body limit (413) and the body timeout (408) keep their own codes
            raise _refusal_for(exc) from None
        _check_form_text(form)
        photo_fields = [n for n, k in fields.items() if k in ("file", "files")]
        if "file" in form and "file" not in fields and len(photo_fields) == 1:  # a client written for CompreFace
            form = request._form = FormData([(photo_fields[0] if n == "file" else n, v) for n, v in form.multi_items()])
        for name in photo_fields:
            if any(isinstance(v, str) for v in form.getlist(name)):  # a text part where the photo's file belongs
                raise ValidationFailed(f"`{name}` must be a file, not text. {_how_to_send(fields)}", {"field": name})

    @classmethod
    async def _read_json_form(cls, request: Request, fields: dict[str, str], max_files: int) -> None:
        """A JSON body with base64 photos, turned into the form the route reads (same limits, same checks).

        Within this operation's own limit (the bodies being read at once are bounded by the inference queue, which
        admitted this request before its body), parsed and decoded in a worker thread, a bounded number at once per
        worker: a large body never holds the event loop (and /health with it), nor do many multiply the memory
        that parsing them takes."""
        max_bytes = request.app.state.settings.max_upload_bytes
        cls._limit_body(request, photo_body_limit("json", max_files, max_bytes))
        body = await request.body()
        async with request.app.state.json_photo_bodies:
            form = await run_in_threadpool(_json_form, body, fields, max_files, max_bytes)
        request._form = form  # what FastAPI's form parsing returns for this request

    @staticmethod
    async def _check_json(request: Request) -> None:
        if not _is_json(request):
            if _content_type(request) and _has_body(request):
                raise UnsupportedMediaType("This operation takes a JSON body (Content-Type: application/json).",
                                           {"content_type": _content_type(request)})
            return
        body = await request.body()  # kept by the request: FastAPI parses the same bytes after this
        if not body:
            return
        try:
            strict_json(body)
        except (ValueError, RecursionError) as exc:
            raise ValidationFailed(f"The JSON body cannot be accepted: {exc}", {"field": "body"}) from None


class BodyGuard:
    """Every request body within a byte limit and a time limit, counted on the bytes as they stream in.

    Chunked bodies have no Content-Length to check, so the count is what is enforced: a
    multipart body (or a JSON body of a photo operation, in base64) may carry the most photos one
    request takes, any other body
    :data:`JSON_BODY_LIMIT`; past it the request is answered 413 ``request_too_large``. A body
    that stops arriving for ``timeout_s`` is answered 408 ``request_timeout`` (a stalled client
    would otherwise hold its connection as long as it liked). Written here rather than taken
    from Starlette's body-limit middleware, which answers a too-large Content-Length in plain
    text whatever the app's error handlers say. The headers are uvicorn's to time out, and it
    does not: put a reverse proxy with header timeouts in front of a public port (docker/nginx.conf).
    """

    def __init__(self, app, max_upload_bytes: int, timeout_s: float, other_bytes: int = JSON_BODY_LIMIT):
        self.app, self.other_bytes, self.timeout_s = app, other_bytes, timeout_s
        # the most any operation's body may carry (enroll's photos); each operation then holds its own (GatedRoute)
        self.upload_bytes = photo_body_limit("multipart", MAX_FACES_PER_ENROLL, max_upload_bytes)
        self.json_photo_bytes = photo_body_limit("json", MAX_FACES_PER_ENROLL, max_upload_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").lower()
        multipart = ctype.startswith(b"multipart/")
        limit = self.upload_bytes if multipart else self.other_bytes
        # A JSON body may carry base64 photos where the route takes photos: the route raises the limit to its own
        # (GatedRoute, before it reads the body); until then, and on every other route, the small one holds.
        declared = headers.get(b"content-length", b"")
        # a body still on its way when the answer goes out (401 before it was read, 413 partway) is not read and
        # thrown away to keep the connection: the answer closes it (a key-less client pushed 200 MB after its 401)
        arrived = not ((declared.isdigit() and int(declared) > 0) or b"transfer-encoding" in headers)

        async def closing_send(message):
            if message["type"] == "http.response.start" and not arrived and message["status"] >= 400:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if declared.isdigit() and int(declared) > (self.json_photo_bytes if b"json" in ctype else limit):
            await error_response(413, "request_too_large", f"The request body is over the limit of {size_text(limit)}.",
                                 {"max_bytes": limit})(scope, receive, closing_send)
            return
        received, more = 0, True

        async def guarded_receive():
            nonlocal received, more, arrived
            if not more:
                return await receive()  # after the body: waiting for a disconnect is not a stalled upload
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"The request body stopped arriving for {self.timeout_s:g} s.") from None
            if message["type"] == "http.request":
                more = message.get("more_body", False)
                arrived = not more
                received += len(message.get("body", b""))
                allowed = scope.get(BODY_LIMIT, limit)
                if received > allowed:
                    more = False
                    raise HTTPException(413, f"The request body is over the limit of {size_text(allowed)}.")
            return message

        await self.app(scope, guarded_receive, closing_send)
