"""Unknown visitors, grouped as their events arrive (app/live/visitors.py): list, name, merge, split, dismiss, delete.
Admin keys only; under /collections/{name}/visitors too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.access.audit import Actor
from app.api.deps import AdminKey, CollectionDep, InferenceSlot, VisitorsDep
from app.api.gate import GatedRoute
from app.core.schemas import (
    FaceOut,
    PersonOut,
    VisitorDeleted,
    VisitorMergeIn,
    VisitorNamed,
    VisitorNameIn,
    VisitorOut,
    VisitorsOut,
    VisitorSplitIn,
    error_responses,
)

router = APIRouter(tags=["visitors"], route_class=GatedRoute, responses=error_responses(401, 403, 422, 429, 503))

VisitorId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the group's number (Unknown #id)")]


@router.get("/visitors", response_model=VisitorsOut, summary="Unknown visitors: groups of unknown faces")
def list_visitors(visitors: VisitorsDep, _key: AdminKey, collection: CollectionDep,
                  status: Annotated[str, Query(pattern="^(active|dismissed|all)$",
                                               description="active (default), dismissed, or all")] = "active"):
    """Unknown events whose embedding was kept (FACESHOT_EVENT_FACES and FACESHOT_EVENT_UNKNOWN_FACES), grouped as
    they arrive: "Unknown #N", seen how often, at which cameras, first and last seen, its best faces. A face joins a
    group when it passes the test the gallery puts a stranger to, at FACESHOT_VISITOR_FALSE_MERGE_RATE (the
    encoder's calibration); none is grouped with an encoder that has no calibration."""
    return {"items": visitors.list(collection, None if status == "all" else status)}


@router.post("/visitors/{visitor_id}/name", status_code=201, response_model=VisitorNamed,
             responses=error_responses(404, 408, 409, 507),
             summary="Name an unknown visitor: enroll one new person from the group's best 1-3 faces")
def name_visitor(visitors: VisitorsDep, key: AdminKey, collection: CollectionDep, _slot: InferenceSlot,
                 visitor_id: VisitorId, body: VisitorNameIn):
    """The group's best kept faces go through the same enrollment as photos (POST /enroll: the one-face rule, the
    quality gate, warnings, 409 person_exists unless `new_person`); audit-logged with the events' ids. The group is
    closed; the person's next events are named. 409 `conflict` with `details.reason` `no_face_kept`."""
    result, used = visitors.name(visitor_id, body.name, collection, Actor.of_key(key), new_person=body.new_person)
    return VisitorNamed(person=PersonOut.of(result.person), faces=[FaceOut.of(f) for f in result.faces],
                        warnings=result.warnings, visitor=visitor_id, event_ids=used)


@router.post("/visitors/{visitor_id}/merge", response_model=VisitorOut, responses=error_responses(404, 409),
             summary="Merge another unknown visitor into this one (the same person)")
def merge_visitors(visitors: VisitorsDep, key: AdminKey, collection: CollectionDep, visitor_id: VisitorId,
                   body: VisitorMergeIn):
    """`other`'s faces join this group, which keeps its number; `other` goes. 409 `cannot_link` where an admin said
    the two are different people (a split). Audit-logged."""
    return visitors.merge(visitor_id, body.other, collection, Actor.of_key(key))


@router.post("/visitors/{visitor_id}/split", status_code=201, response_model=VisitorOut,
             responses=error_responses(404, 409), summary="Split one face off an unknown visitor: someone else")
def split_visitor(visitors: VisitorsDep, key: AdminKey, collection: CollectionDep, visitor_id: VisitorId,
                  body: VisitorSplitIn):
    """The event's face becomes a group of its own (answered), and the two are never merged again (cannot-linked).
    404 `not_found` (`not_a_member`); 409 `conflict` with `details.reason` `only_face`. Audit-logged."""
    return visitors.split(visitor_id, body.event_id, collection, Actor.of_key(key))


@router.post("/visitors/{visitor_id}/dismiss", response_model=VisitorOut, responses=error_responses(404),
             summary="Dismiss an unknown visitor (hidden; their next faces still join it)")
def dismiss_visitor(visitors: VisitorsDep, key: AdminKey, collection: CollectionDep, visitor_id: VisitorId):
    """Out of the list (GET /visitors?status=dismissed shows it); the same visitor's new faces join it out of sight
    rather than come back as a new group. Audit-logged."""
    return visitors.dismiss(visitor_id, collection, Actor.of_key(key))


@router.delete("/visitors/{visitor_id}", response_model=VisitorDeleted, responses=error_responses(404),
               summary="Delete an unknown visitor and the faces kept of them")
def delete_visitor(visitors: VisitorsDep, key: AdminKey, collection: CollectionDep, visitor_id: VisitorId):
    """The group goes, and so do its events' kept face crops and embeddings (biometric data); the events stay in
    the log as unknown passings. Audit-logged."""
    return visitors.delete(visitor_id, collection, Actor.of_key(key))
