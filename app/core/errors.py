"""The service's refusals (auth, limits, conflicts, storage), and the one shape every error leaves in:
{"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import FaceshotError

log = logging.getLogger(__name__)

HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              408: "request_timeout", 413: "request_too_large", 415: "unsupported_media_type",
              429: "rate_limited"}


class NotFound(FaceshotError):
    code = "not_found"
    status = 404


class Unauthorized(FaceshotError):
    code = "unauthorized"
    status = 401


class Forbidden(FaceshotError):
    code = "forbidden"
    status = 403


class ValidationFailed(FaceshotError):
    code = "validation_error"
    status = 422


class Conflict(FaceshotError):
    code = "conflict"
    status = 409


class PersonExists(Conflict):
    """Enrolling someone already enrolled: a person of this name whose face a new photo matches."""

    code = "person_exists"


class ServiceUnavailable(FaceshotError):
    code = "unavailable"
    status = 503


class EncoderMismatch(FaceshotError):
    """An embedding made by another encoder (or of another size): comparing it would be silently wrong."""

    code = "encoder_mismatch"
    status = 422


class DecodeTimeout(FaceshotError):
    """Decoding took longer than the configured limit (a pathological or hostile file)."""

    code = "decode_timeout"
    status = 422


class TryLater(FaceshotError):
    """A refusal that says when to come back (``Retry-After``, in whole seconds, at least 1)."""

    def __init__(self, message: str, details: dict | None = None, retry_after: int = 1):
        super().__init__(message, details)
        self.headers = {"Retry-After": str(max(1, retry_after))}


class RateLimited(TryLater):
    """Too many requests for this API key (or too many failed keys from this address)."""

    code = "rate_limited"
    status = 429


class StorageUnavailable(FaceshotError):
    """The photo folder or the database file cannot be written (read-only, gone); nothing was stored."""

    code = "storage_unavailable"
    status = 503


class InsufficientStorage(StorageUnavailable):
    """The disk holding the photos or the database is full; nothing was stored."""

    status = 507


class Overloaded(TryLater):
    """More photos are waiting for the face pipeline than this worker queues; come back shortly."""

    code = "overloaded"
    status = 503


class InvalidMultipart(FaceshotError):
    """A multipart body that cannot be parsed (no boundary, broken parts)."""

    code = "invalid_multipart"
    status = 400


class UnsupportedMediaType(FaceshotError):
    """A photo operation's body in a form it does not read (urlencoded, plain text, raw image bytes)."""

    code = "unsupported_media_type"
    status = 415


class TooManyImages(FaceshotError):
    """More image parts than the operation takes; refused before any image is read."""

    code = "too_many_images"
    status = 422


def database_error(exc: DBAPIError) -> FaceshotError:
    """A failed write's database error as the caller should hear it: full disk, read-only file, or unreachable."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return InsufficientStorage("The database's disk is full; nothing was stored.", {"reason": "enospc"})
    if "readonly database" in text or "read-only" in text:
        return StorageUnavailable("The database file cannot be written; nothing was stored.", {"reason": "erofs"})
    return ServiceUnavailable("The database is unreachable; nothing was stored.")


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or {}}},
                        status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceshotError)
    async def faceshot_error(_request: Request, exc: FaceshotError):
        return error_response(exc.status, exc.code, exc.message, exc.details, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", []) if p not in ("body", "query", "path")),
             "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error_response(422, "validation_error", "The request is missing or has invalid fields.",
                              {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        message, details = str(exc.detail), {}
        if exc.status_code == 405 and headers and headers.get("Allow"):
            allowed = [m.strip() for m in headers["Allow"].split(",")]
            message = f"{request.url.path} does not take {request.method}; it takes {', '.join(allowed)}."
            details = {"allowed": allowed}
        return error_response(exc.status_code, code, message, details, headers=headers)

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError):
        log.error("database error: %s", exc.__class__.__name__)
        return error_response(503, "unavailable", "The database is unreachable.")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")
