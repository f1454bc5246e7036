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
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, UploadFile, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from models.imageio import size_text

from ..errors import InvalidMultipart, TooManyImages, ValidationFailed, error_response
from ..inference import MAX_FACES_PER_ENROLL
from ..inputs import strict_json, text_problem

MAX_FORM_FIELDS = 32
MAX_FORM_FIELD_BYTES = 64 * 1024
JSON_BODY_LIMIT = 64 * 1024  # every JSON body the API takes is a few fields and at most 16 KB of metadata

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


def _file_limit(dependant: Dependant) -> int:
    """How many files the route's form takes: each UploadFile field one, a list of them MAX_FACES_PER_ENROLL."""
    count = 0
    for field in dependant.body_params:
        annotation = field.field_info.annotation
        args = typing.get_args(annotation)
        if any(typing.get_origin(a) is list and UploadFile in typing.get_args(a) for a in (annotation, *args)):
            return MAX_FACES_PER_ENROLL
        if annotation is UploadFile or UploadFile in args:
            count += 1
    return count


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


class GatedRoute(APIRoute):
    """An API route whose cheap refusals (text, unknown query names, queue, credentials) come before its body is
    read."""

    refuse_unknown_query = True  # the API's operations; the admin pages read `next` and `done` themselves

    def get_route_handler(self):
        handler = super().get_route_handler()
        checks = _early_checks(self.dependant)
        query_names = _query_names(self.dependant) if self.refuse_unknown_query else None
        takes_form = self.body_field is not None and isinstance(self.body_field.field_info, params.Form)
        max_files = _file_limit(self.dependant)

        async def route(request: Request):
            try:
                _check_parameters(request)
                if query_names is not None:
                    _check_query_names(request, query_names)
                for check in checks:
                    await check(request)
                if takes_form:
                    await self._read_form(request, max_files)
                elif request.method in ("POST", "PUT", "PATCH") and self.body_field is not None:
                    await self._check_json(request)
                return await handler(request)
            finally:
                slot = getattr(request.state, "inference_slot", None)
                if slot is not None:
                    slot.release()

        return route

    @staticmethod
    async def _read_form(request: Request, max_files: int) -> None:
        try:
            form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS,
                                      max_part_size=MAX_FORM_FIELD_BYTES)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise  # the body limit (413) and the body timeout (408) keep their own codes
            raise _refusal_for(exc) from None
        for name, value in form.multi_items():
            if isinstance(value, str) and (problem := text_problem(value)):
                raise ValidationFailed(f"The form field `{name}` {problem}.", {"field": name})

    @staticmethod
    async def _check_json(request: Request) -> None:
        ctype = request.headers.get("content-type", "")
        if "json" not in ctype:
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
    multipart body may carry the most photos one request takes, any other body
    :data:`JSON_BODY_LIMIT`; past it the request is answered 413 ``request_too_large``. A body
    that stops arriving for ``timeout_s`` is answered 408 ``request_timeout`` (a stalled client
    would otherwise hold its connection as long as it liked). Written here rather than taken
    from Starlette's body-limit middleware, which answers a too-large Content-Length in plain
    text whatever the app's error handlers say. The headers are uvicorn's to time out, and it
    does not: put a reverse proxy with header timeouts in front of a public port (docker/nginx.conf).
    """

    def __init__(self, app, upload_bytes: int, timeout_s: float, other_bytes: int = JSON_BODY_LIMIT):
        self.app, self.upload_bytes, self.other_bytes, self.timeout_s = app, upload_bytes, other_bytes, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit = self.upload_bytes if multipart else self.other_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, "request_too_large", f"The request body is over the limit of {size_text(limit)}.",
                                 {"max_bytes": limit})(scope, receive, send)
            return
        received, more = 0, True

        async def guarded_receive():
            nonlocal received, more
            if not more:
                return await receive()  # after the body: waiting for a disconnect is not a stalled upload
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"The request body stopped arriving for {self.timeout_s:g} s.") from None
            if message["type"] == "http.request":
                more = message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    more = False
                    raise HTTPException(413, f"The request body is over the limit of {size_text(limit)}.")
            return message

        await self.app(scope, guarded_receive, send)
