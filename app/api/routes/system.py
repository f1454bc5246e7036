"""Model facts, liveness, readiness, API keys."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from app.access.audit import Actor
from app.api.deps import CollectionDep, DeploymentAdminKey, KeysDep, RecognitionDep, RecognitionKey
from app.api.gate import GatedRoute
from app.core.schemas import KeyCreate, KeyCreated, KeyOut, ModelOut, error_responses

router = APIRouter(tags=["system"], route_class=GatedRoute)


@router.get("/model", response_model=ModelOut, responses=error_responses(401, 429, 503),
            summary="The encoder, the thresholds that apply, the gallery's size")
def model(recognition: RecognitionDep, _key: RecognitionKey, collection: CollectionDep):
    """The encoder, the thresholds in force (by number of enrollment photos) and the stranger-accept rate they
    stand for at this gallery's size."""
    return recognition.model_info(collection)


@router.get("/health")
async def health():
    """Liveness: answered on the event loop, never queued behind photos; no key."""
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
    return KeyOut(id=k.id, name=k.name, role=k.role, prefix=k.prefix, created_at=k.created_at, revoked_at=k.revoked_at,
                  collection=k.collection)


KEY_ERRORS = error_responses(401, 403, 422, 429, 503)


@router.get("/keys", response_model=list[KeyOut], responses=KEY_ERRORS)
def list_keys(keys: KeysDep, _key: DeploymentAdminKey):
    """Every API key (secrets are never shown again; only their first characters)."""
    return [_key_out(k) for k in keys.list()]


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED,
             responses={**KEY_ERRORS, **error_responses(413)})
def create_key(keys: KeysDep, by: DeploymentAdminKey, body: KeyCreate):
    """A new key for a role (admin or recognition); its secret is in the answer, shown this once."""
    key, secret = keys.create(body.name, body.role, collection=body.collection, actor=Actor.of_key(by))
    return KeyCreated(**_key_out(key).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyOut, responses={**KEY_ERRORS, **error_responses(404, 409)})
def revoke_key(keys: KeysDep, by: DeploymentAdminKey, key_id: str):
    """Revoke a key: it stops working at once. The last admin key cannot be revoked."""
    return _key_out(keys.revoke(key_id, Actor.of_key(by)))
