"""The ASGI app: ``app.main:app`` (uvicorn) or :func:`create_app` (tests, embedding)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .admin import mount_admin
from .api.routes import people, recognition, system
from .core.config import Settings, get_settings
from .core.db import make_engine, make_sessionmaker, upgrade_database
from .errors import error_response, install_error_handlers
from .keys import ensure_admin_key
from .observability import install_observability, worker_exiting
from .ratelimit import RateLimiter
from .service import MAX_FACES_PER_ENROLL, FaceService

log = logging.getLogger("faceshot")
API_PREFIX = "/api/v1"


def build_service(settings: Settings, pipeline=None, *, check_encoder: bool = True) -> FaceService:
    """Everything a process needs before its first request: schema, model, keys, gallery.

    ``check_encoder=False`` is for ``faceshot reembed`` only: the one caller that
    must open a gallery another encoder made.
    """
    from models.pipeline import FacePipeline

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.effective_torch_threads())
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    sessions = make_sessionmaker(engine)
    if pipeline is None:
        device = None if settings.device == "auto" else settings.device
        pipeline = FacePipeline.from_spec(settings.encoder, device)
    service = FaceService(settings, pipeline, sessions)
    if check_encoder:
        service.check_encoder_matches_stored()
    where = ensure_admin_key(settings, sessions)
    if where:
        log.info("admin API key: %s", where)
    service.reload()
    service.sweep_orphan_images()
    log.info("faceshot ready: encoder %s on %s, %d people indexed",
             pipeline.encoder.metadata.name, pipeline.encoder.device, len(service.gallery))
    return service


class RequestSizeLimit:
    """Refuse a request whose declared body is larger than any valid upload, before reading it.

    The per-photo limit is checked again on each file; this bound stops a huge
    multipart body from being received and spooled at all.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                response = error_response(413, "request_too_large",
                                          f"The request body is over the limit of {self.max_bytes} bytes.",
                                          {"max_bytes": self.max_bytes})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, pipeline=None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = build_service(settings or get_settings(), pipeline)
        yield
        app.state.service.close()
        worker_exiting()

    app = FastAPI(
        title="faceshot",
        version="0.1.0",
        description="Enroll people with one or two photos; identify anyone as one of them or unknown.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (people.router, recognition.router, system.router):
        app.include_router(router, prefix=API_PREFIX)
    mount_admin(app)
    limits = settings or get_settings()
    app.state.limiter = RateLimiter(limits.rate_limit, limits.auth_failure_limit, limits.rate_limit_storage)
    if limits.cors_origin_list:
        # Off unless configured: browsers on other origins may not call the API by default.
        app.add_middleware(CORSMiddleware, allow_origins=limits.cors_origin_list, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"], expose_headers=["X-Request-ID"])
    # room for the most photos one request may carry, plus form fields
    app.add_middleware(RequestSizeLimit, max_bytes=limits.max_upload_bytes * MAX_FACES_PER_ENROLL + (1 << 20))
    install_observability(app)  # last, so outermost: refusals above are counted and carry a request id too
    return app


app = create_app()
