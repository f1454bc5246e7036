"""Model facts, liveness, readiness, API keys."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from ... import keys
from ...schemas import KeyCreate, KeyCreated, KeyOut
from ..deps import AdminKey, RecognitionKey, ServiceDep
from ..gate import GatedRoute

router = APIRouter(tags=["system"], route_class=GatedRoute)


@router.get("/model")
def model(service: ServiceDep, _key: RecognitionKey):
    enc = service.pipeline.encoder
    service.sync()  # the gallery size as of now, other workers' writes included
    return {
        "encoder": enc.describe(),
        "threshold": service.threshold_for(1),
        "threshold_by_support": None if service.settings.threshold is not None else enc.metadata.threshold.by_support,
        "threshold_source": "FACESHOT_THRESHOLD" if service.settings.threshold is not None else "encoder checkpoint",
        "gallery": {**service.counts(), "index_device": service.gallery.device},
        "store_images": service.settings.store_images,
    }


@router.get("/health")
async def health():
    # async: answered on the event loop, never behind requests waiting for the thread pool
    return {"status": "ok"}


@router.get("/ready", summary="Ready to serve: model loaded, database reachable; storage problems reported")
async def ready(request: Request):
    """503 unless recognition can work (model, database). A photo folder that cannot take writes
    (read-only, nearly full) only stops enrollment: it is reported under ``storage`` and ``degraded``."""
    service = getattr(request.app.state, "service", None)
    if service is None:
        report = {"checks": {"model_loaded": False, "database": False}, "storage": None, "problems": {}}
    else:
        limiter = getattr(request.app.state, "ready_threads", None)
        if limiter is None:
            limiter = request.app.state.ready_threads = anyio.CapacityLimiter(2)
        report = await anyio.to_thread.run_sync(service.readiness, limiter=limiter)
    ok = all(report["checks"].values())
    return JSONResponse({"ready": ok, "degraded": bool(report["problems"]), **report},
                        status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE)


def _key_out(k) -> KeyOut:
    return KeyOut(id=k.id, name=k.name, role=k.role, prefix=k.prefix, created_at=k.created_at, revoked_at=k.revoked_at)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(service: ServiceDep, _key: AdminKey):
    return [_key_out(k) for k in keys.list_keys(service.sessions)]


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(service: ServiceDep, _key: AdminKey, body: KeyCreate):
    key, secret = keys.create_key(service.sessions, body.name, body.role)
    return KeyCreated(**_key_out(key).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(service: ServiceDep, _key: AdminKey, key_id: str):
    return _key_out(keys.revoke_key(service.sessions, key_id))
