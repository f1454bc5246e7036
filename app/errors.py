"""Every error leaves the service in one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import FaceshotError

log = logging.getLogger(__name__)

HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "request_too_large", 415: "unsupported_media_type", 429: "rate_limited"}


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
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError):
        log.error("database error: %s", exc.__class__.__name__)
        return error_response(503, "unavailable", "The database is unreachable.")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")
