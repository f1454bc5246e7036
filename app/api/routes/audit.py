"""The audit log (deployment admin key): who changed which people, faces, keys, webhooks and collections, when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import AuditDep, DeploymentAdminKey
from app.api.gate import GatedRoute
from app.core.schemas import AuditPage, error_responses

router = APIRouter(tags=["audit"], route_class=GatedRoute, responses=error_responses(401, 403, 422, 429, 503))
Since = Annotated[datetime | None, Query(description="entries at or after this time (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="entries before this time (ISO 8601)")]


@router.get("/audit", response_model=AuditPage, summary="The audit log: who changed what, when (newest first)")
def audit_log(audit: AuditDep, _key: DeploymentAdminKey,
              collection: Annotated[str | None, Query(max_length=64, description="one collection's changes")] = None,
              action: Annotated[str | None, Query(max_length=40, description="e.g. person.delete")] = None,
              since: Since = None, until: Until = None,
              limit: Annotated[int, Query(ge=1, le=1000, description="entries per page")] = 100,
              offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="entries to skip")] = 0):
    """Every enrollment, change, move and deletion of people and faces, and every key, webhook and collection made
    or removed, with the key (or password, or command line) that did it; written in the change's own
    transaction."""
    items, total = audit.list(collection=collection, action=action, since=since, until=until,
                                      limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/audit.csv", response_class=Response, summary="The audit log as CSV (oldest first)",
            responses={200: {"content": {"text/csv": {"example": "time,actor,actor_id,collection,action,target,"
                                                                 "details\n"}}}})
def audit_csv(audit: AuditDep, _key: DeploymentAdminKey,
              collection: Annotated[str | None, Query(max_length=64, description="one collection's changes")] = None,
              action: Annotated[str | None, Query(max_length=40, description="e.g. person.delete")] = None,
              since: Since = None, until: Until = None):
    """The same filters as GET /audit, every matching entry."""
    text = audit.csv(collection=collection, action=action, since=since, until=until)
    return Response(text, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
