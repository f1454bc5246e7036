"""Prometheus metrics at ``/metrics``, JSON logs, and a request id on every request.

Several uvicorn workers share their metrics through prometheus-client's multiprocess mode:
``faceshot serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers
start (``app.cli.prepare_multiprocess_dir``), and ``/metrics`` then sums every live worker's files.

Logs carry method, route, status, duration and the request id, never bodies, photos,
embeddings, query strings or headers (so never an API key).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.core.errors import error_response

REQUEST_ID_HEADER = "X-Request-ID"
# set by a middleware that rewrote the path (app/api/collection_paths.py): the route's prefix and the prefix the
# client used, so a collection's requests are labelled with the path they were sent to, not `unmatched`
ROUTE_PREFIX_SCOPE = "faceshot.route_prefix"
# a client's id is echoed and logged only when it is short and plain (no log injection)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("faceshot_request_id", default=None)
access_log = logging.getLogger("faceshot.access")
log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter("faceshot_http_requests", "HTTP requests answered.", ["method", "route", "status"])
HTTP_LATENCY = Histogram("faceshot_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["method", "route", "status"], buckets=_LATENCY_BUCKETS)
STAGE_LATENCY = Histogram("faceshot_pipeline_stage_seconds",
                          "Time per face-pipeline stage of one photo: detect, align, embed; "
                          "search: the gallery lookup.",
                          ["stage"], buckets=_STAGE_BUCKETS)
GALLERY_PEOPLE = Gauge("faceshot_gallery_people", "People in the gallery index.",
                       multiprocess_mode="livemostrecent")
GPU_MEMORY = Gauge("faceshot_gpu_memory_bytes", "CUDA memory held by torch, summed over live workers.",
                   ["device", "kind"], multiprocess_mode="livesum")


# -- metrics ---------------------------------------------------------------------------------
def observe_stages(detect_ms: float = 0.0, align_ms: float = 0.0, embed_ms: float = 0.0,
                   search_s: float | None = None) -> None:
    """Record one photo's stage times (a pipeline ``Timings`` gives the first three)."""
    for stage, ms in (("detect", detect_ms), ("align", align_ms), ("embed", embed_ms)):
        if ms:
            STAGE_LATENCY.labels(stage).observe(ms / 1000)
    if search_s is not None:
        STAGE_LATENCY.labels("search").observe(search_s)


def _update_gauges(app: FastAPI) -> None:
    service = getattr(app.state, "service", None)
    if service is not None:
        GALLERY_PEOPLE.set(len(service.galleries))
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i in range(torch.cuda.device_count()):
                GPU_MEMORY.labels(f"cuda:{i}", "allocated").set(torch.cuda.memory_allocated(i))
                GPU_MEMORY.labels(f"cuda:{i}", "reserved").set(torch.cuda.memory_reserved(i))
    except Exception:  # metrics never fail a request
        pass


def metrics_payload(multiproc_dir: str | None) -> bytes:
    """The registry's text; summed over every live worker's files when ``multiproc_dir`` is set."""
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_exiting(multiproc_dir: str | None) -> None:
    """Drop this worker's live gauges from the shared files (uvicorn has no hook of its own)."""
    if multiproc_dir:
        multiprocess.mark_process_dead(os.getpid())


# -- request ids and access logs ---------------------------------------------------------------
def _route_template(scope) -> str:
    """The matched route's path template (``/api/v1/people/{person_id}``), for a bounded label set; a
    collection's path as its own (``/api/v1/collections/{collection}/people/{person_id}``)."""
    template = _matched_template(scope)
    rewritten = scope.get(ROUTE_PREFIX_SCOPE)  # (the route's prefix, the path's prefix it was reached under)
    if rewritten and template.startswith(rewritten[0] + "/"):
        return rewritten[1] + template[len(rewritten[0]):]
    return template


def _matched_template(scope) -> str:
    context = (scope.get("fastapi") or {}).get("effective_route_context")  # FastAPI's full path, prefix included
    if getattr(context, "path", None):
        return context.path
    path = scope.get("path", "")
    if scope.get("route") is not None:  # other FastAPI versions: put the parameter names back into the path
        names = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
        return "/".join(f"{{{names[seg]}}}" if seg in names else seg for seg in path.split("/"))
    mount = scope.get("root_path", "")[len(scope.get("app_root_path", "")):]
    if scope.get("endpoint") is not None and mount:  # a mounted app (the admin page's static files)
        return mount + "/{path}"
    # unmatched paths share one label: a scanner must not mint a time series per URL
    return "unmatched"


class ObservabilityMiddleware:
    """Request id in and out, one access log line, request count and latency per route template."""

    def __init__(self, app, fastapi_app: FastAPI):
        self.app, self.fastapi_app = app, fastapi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status, started = 500, False
        t0 = time.perf_counter()

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))  # a stored face crop is never sniffed
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise  # half an answer is out: only closing the connection ends it
            # answered here, not by Starlette's outermost handler: it re-raises, and the server then drops the
            # client's keep-alive connection with the 500
            log.exception("unhandled error")
            await error_response(500, "internal_error", "Something went wrong on our side.")(
                scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - t0
            route, method = _route_template(scope), scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route, str(status)).observe(elapsed)
            _update_gauges(self.fastapi_app)
            access_log.info("request", extra={"request_id": request_id, "method": method, "route": route,
                                              "path": scope.get("path", ""),
                                              "status": status, "duration_ms": round(elapsed * 1000, 1)})
            request_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid, request id and any access fields."""

    FIELDS = ("method", "route", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime


def log_config(level: str = "info") -> dict:
    """uvicorn's ``log_config``: JSON lines on stdout for uvicorn, faceshot and the access log."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},  # ours has the request id
            "faceshot": {"handlers": ["stdout"], "level": level, "propagate": False},
            "app": {"handlers": ["stdout"], "level": level, "propagate": False},
            "models": {"handlers": ["stdout"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["stdout"], "level": "WARNING"},
    }


def install_observability(app: FastAPI, multiproc_dir: str | None = None) -> None:
    """``/metrics`` (summed over workers when ``multiproc_dir`` is set) and the request-id/access-log/metrics
    middleware."""

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request):
        _update_gauges(request.app)
        return Response(metrics_payload(multiproc_dir), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(ObservabilityMiddleware, fastapi_app=app)
