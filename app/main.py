"""The ASGI app: ``app.main:app`` (uvicorn) or :func:`create_app` (tests, embedding)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline

from app.access.ratelimit import RateLimiter
from app.admin import mount_admin
from app.api.collection_paths import CollectionPaths, with_collection_paths
from app.api.gate import JSON_PHOTO_BODIES, BodyGuard
from app.api.routes import accounts, audit, collections, compreface, events, people, recognition, system, visitors
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.observability import install_observability, worker_exiting
from app.core.paths import API_PREFIX
from app.startup import build_service


def create_app(settings: Settings | None = None, pipeline=None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = build_service(settings or get_settings(), pipeline)
        app.state.service.start()
        yield
        app.state.service.close()
        worker_exiting(limits.prometheus_multiproc_dir)

    limits = settings or get_settings()
    # FastAPIOffline: FastAPI with /docs and /redoc whose scripts and styles come from the fastapi-offline package
    # (mounted at /static-offline-docs), so the API's own documentation renders without internet
    app = FastAPIOffline(
        title="faceshot",
        version="0.1.0",
        description="Enroll people with one or two photos; identify anyone as one of them or unknown.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (people.router, recognition.router, system.router, events.router, collections.router,
                   audit.router, accounts.router, compreface.router, visitors.router):
        app.include_router(router, prefix=API_PREFIX)
    mount_admin(app)

    @app.get("/", include_in_schema=False)
    def front_door() -> RedirectResponse:
        """The address `faceshot serve` prints first leads to the admin page (the API lives under /api/v1)."""
        return RedirectResponse("/admin", status_code=307)

    app.state.settings = limits  # what the request gate reads before a route runs (the photo limit)
    app.state.limiter = RateLimiter(limits.rate_limit, limits.auth_failure_limit, limits.rate_limit_storage)
    if limits.cors_origin_list:
        # Off unless configured: browsers on other origins may not call the API by default.
        app.add_middleware(CORSMiddleware, allow_origins=limits.cors_origin_list, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"], expose_headers=["X-Request-ID"])
    # room for the most photos one request may carry, plus form fields; other bodies are small
    app.add_middleware(BodyGuard, max_upload_bytes=limits.max_upload_bytes, timeout_s=limits.body_timeout_s)
    app.state.json_photo_bodies = asyncio.Semaphore(JSON_PHOTO_BODIES)
    # /api/v1/collections/{name}/… onto today's routes, within that collection (before routing)
    app.add_middleware(CollectionPaths)
    openapi = app.openapi

    def collection_openapi():
        if app.openapi_schema is None:
            app.openapi_schema = with_collection_paths(openapi())
        return app.openapi_schema

    app.openapi = collection_openapi
    # last, so outermost: refusals above are counted and carry a request id too
    install_observability(app, limits.prometheus_multiproc_dir)
    return app


app = create_app()
