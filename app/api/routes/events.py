"""A collection's recognition events (watchers post them with a recognition key; admins read them), presence and
webhooks."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.access.audit import Actor
from app.api.deps import (
    AdminKey,
    CollectionDep,
    EventsDep,
    InferenceSlot,
    RecognitionKey,
    ReviewDep,
    SuggestionsDep,
    WebhooksDep,
)
from app.api.gate import GatedRoute
from app.core.errors import ValidationFailed
from app.core.schemas import (
    CorrectionsOut,
    DeliveryOut,
    EnrollOut,
    EventEnrollIn,
    EventIn,
    EventOut,
    EventsDeleted,
    EventsPage,
    FaceOut,
    PersonOut,
    PresenceOut,
    SuggestionsOut,
    SupportDistancesOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    error_responses,
)
from app.live.events import NewEvent, event_dict

router = APIRouter(tags=["events"], route_class=GatedRoute, responses=error_responses(401, 403, 422, 429, 503))

Since = Annotated[datetime | None, Query(description="events at or after this time (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="events before this time (ISO 8601)")]
PersonFilter = Annotated[str | None, Query(max_length=32, description="one person's events")]
SourceFilter = Annotated[str | None, Query(max_length=100, description="one camera's events, e.g. door-1")]
UnknownFilter = Annotated[bool | None, Query(description="true: unknown faces only; false: enrolled people only")]


@router.post("/events", status_code=status.HTTP_201_CREATED, response_model=EventOut,
             responses=error_responses(404, 413), summary="Record one recognition event (for watchers)")
def post_event(events: EventsDep, _key: RecognitionKey, collection: CollectionDep, body: EventIn):
    """What `faceshot watch --server` sends once per tracked face. The face crop and the embedding are kept only as
    FACESHOT_EVENT_FACES and FACESHOT_EVENT_UNKNOWN_FACES say; every webhook gets the event. An `embedding` is
    checked as /identify checks one, kept or not: 422 `validation_error` (not a unit vector, no `encoder_hash`) or
    `encoder_mismatch` (another encoder's, or another size)."""
    crop = None
    if body.face:
        try:
            crop = base64.b64decode(body.face, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("`face` is not valid base64.", {"field": "face"}) from None
    embedding = None if body.embedding is None else events.checked_embedding(body.embedding, body.encoder_hash)
    event = events.record(NewEvent(
        time=body.time or datetime.now(timezone.utc), source=body.source, person_id=body.person_id,
        distance=body.distance, threshold=body.threshold, box=body.box, quality=dict(body.quality),
        frames=body.frames, duration_s=body.duration_s, face_crop=crop, collection=collection,
        embedding=embedding, encoder_hash=body.encoder_hash))
    return event_dict(event)


@router.get("/events", response_model=EventsPage, summary="Recognition events, newest first (paged)")
def list_events(events: EventsDep, _key: AdminKey, collection: CollectionDep, person_id: PersonFilter = None,
                source: SourceFilter = None, since: Since = None, until: Until = None, unknown: UnknownFilter = None,
                limit: Annotated[int, Query(ge=1, le=1000, description="events per page")] = 100,
                offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="events to skip")] = 0):
    """Filter by person, camera, time range, and unknown or known faces."""
    rows, total = events.list(collection=collection, person_id=person_id, source=source, since=since,
                                      until=until, unknown=unknown, limit=limit, offset=offset)
    return {"items": [event_dict(e) for e in rows], "total": total, "limit": limit, "offset": offset}


@router.delete("/events", response_model=EventsDeleted,
               summary="Forget one camera: delete its events (and its Home Assistant device)")
def delete_camera_events(events: EventsDep, key: AdminKey, collection: CollectionDep,
                         source: Annotated[str, Query(min_length=1, max_length=100,
                                                      description="the camera whose events go, e.g. door-1")]):
    """Every event of one camera in this collection, with their face crops and pending deliveries; the camera's
    Home Assistant device is removed with them (MQTT discovery). ``source`` is required: there is no "delete
    everything" here. Audit-logged."""
    return {"deleted": events.forget_source(source, Actor.of_key(key), collection), "source": source}


@router.get("/events.csv", response_class=Response, summary="Recognition events as CSV (oldest first)",
            responses={200: {"content": {"text/csv": {"example": "id,time,source,person_id,person_name,distance,"
                                                                 "threshold,frames,duration_s\n"}}}})
def export_events(events: EventsDep, _key: AdminKey, collection: CollectionDep, person_id: PersonFilter = None,
                  source: SourceFilter = None, since: Since = None, until: Until = None, unknown: UnknownFilter = None):
    """The same filters as GET /events, every matching row, for a spreadsheet."""
    text = events.csv(collection=collection, person_id=person_id, source=source, since=since, until=until,
                              unknown=unknown)
    return Response(text, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="events.csv"'})


@router.get("/events/{event_id}/face", response_class=Response, responses={**error_responses(404), 200: {
    "content": {"image/jpeg": {}}}}, summary="The face crop kept with an event")
def event_face(events: EventsDep, _key: AdminKey, collection: CollectionDep, event_id: str):
    """404 when none was kept (FACESHOT_EVENT_FACES is off by default)."""
    return Response(events.face(event_id, collection), media_type="image/jpeg",
                    headers={"Cache-Control": "private"})


@router.post("/events/{event_id}/enroll", status_code=status.HTTP_201_CREATED, response_model=EnrollOut,
             responses=error_responses(404, 408, 409, 507),
             summary="Enroll an event's kept face: add it to a person, or name an unknown face as a new person")
def enroll_from_event(review: ReviewDep, key: AdminKey, collection: CollectionDep, _slot: InferenceSlot,
                      event_id: str, body: EventEnrollIn):
    """The event's kept face crop goes through the same enrollment as any photo: `{"person_id": ...}` as POST
    /people/{id}/faces, `{"name": ...}` as POST /enroll (the one-face rule, the quality gate, the warnings about
    repeats and look-alikes, 409 person_exists). The result is an ordinary face of the person (removed like any
    other, DELETE /people/{id}/faces/{face_id}); the prototype and the operating point follow. Audit-logged with
    the event's id.

    404 `not_found` (`details.reason` `event_not_found`: no such event in this collection; or the person);
    409 `conflict` with `details.reason` `no_face_kept` (FACESHOT_EVENT_FACES was off, or the face was unknown and
    FACESHOT_EVENT_UNKNOWN_FACES off); 422 `validation_error` (neither or both of `person_id` and `name`)."""
    result = review.enroll(event_id, person_id=body.person_id, name=body.name, new_person=body.new_person,
                           collection=collection, actor=Actor.of_key(key))
    return EnrollOut(person=PersonOut.of(result.person), faces=[FaceOut.of(f) for f in result.faces],
                     warnings=result.warnings)


@router.post("/events/{event_id}/not-this-person", response_model=EventOut, responses=error_responses(404, 409),
             summary="Say a named event was not that person (it no longer counts in presence)")
def not_this_person(events: EventsDep, key: AdminKey, collection: CollectionDep, event_id: str):
    """Recorded on the event with who said it (`corrected`), audit-logged; the event stays in the log, marked, and
    leaves the attendance sheet. Saying it again changes nothing. 404 `not_found` (`event_not_found`); 409
    `conflict` with `details.reason` `event_unknown` (the event named nobody)."""
    return event_dict(events.correct(event_id, Actor.of_key(key), collection))


@router.delete("/events/{event_id}/not-this-person", response_model=EventOut, responses=error_responses(404, 409),
               summary="Take back a \"not this person\" (the event counts in presence again)")
def undo_not_this_person(events: EventsDep, key: AdminKey, collection: CollectionDep, event_id: str):
    """Audit-logged; an event that was not corrected is answered as it is."""
    return event_dict(events.correct(event_id, Actor.of_key(key), collection, undo=True))


@router.get("/events/{event_id}/support-distances", response_model=SupportDistancesOut,
            responses=error_responses(404, 409),
            summary="Which of the named person's support photos pulled this match: distances, nearest first")
def support_distances(review: ReviewDep, _key: AdminKey, collection: CollectionDep, event_id: str):
    """The distance from the event's kept embedding to each of the person's support faces, nearest first: after a
    wrong match, the face at the top is the enrollment photo to look at (and perhaps remove). 409 `conflict` with
    `details.reason` `no_embedding_kept`, `event_unknown` (no enrolled person named) or `encoder_mismatch` (kept
    before a reembed)."""
    return review.support_distances(event_id, collection)


@router.get("/corrections", response_model=CorrectionsOut,
            summary="\"Not this person\" corrections per person, most first")
def corrections(events: EventsDep, _key: AdminKey, collection: CollectionDep, person_id: PersonFilter = None):
    """How many events named each person wrongly, as admins said (POST /events/{id}/not-this-person)."""
    return {"items": events.corrections(collection, person_id)}


@router.get("/suggestions", response_model=SuggestionsOut,
            summary="Suggested additions: named events the camera saw unlike the person's photos (read-only)")
def list_suggestions(suggestions: SuggestionsDep, _key: AdminKey, collection: CollectionDep,
                     limit: Annotated[int, Query(ge=1, le=500, description="suggestions at most")] = 50):
    """Events that named an enrolled person, that nobody corrected (not this person), whose face and embedding were
    kept (FACESHOT_EVENT_FACES), within retention, decided at a distance in the upper part of their threshold
    (`rule.min_distance_fraction` of it, up to it), with a good quality score and no too_small/blurry hint: the
    camera sees the person unlike their enrolled photos. At most `rule.per_person` per person, best (distance x
    quality) first. Nothing is added automatically: accept one with POST /events/{event_id}/enroll
    `{"person_id": ...}` (the usual enrollment checks), after which it is no longer offered; an event whose face is
    already one of the person's, or that was dismissed, is not offered either."""
    rows = suggestions.list(collection, limit)
    return {"items": [{"event_id": s.event_id, "person": {"id": s.person_id, "name": s.person_name},
                       "source": s.source, "time": s.time, "distance": s.distance, "threshold": s.threshold,
                       "quality": s.quality, "face_url": s.face_url} for s in rows],
            "rule": suggestions.rule}


@router.post("/suggestions/{event_id}/dismiss", status_code=status.HTTP_204_NO_CONTENT,
             responses=error_responses(404), summary="Stop suggesting an event's face (it stays with the event)")
def dismiss_suggestion(suggestions: SuggestionsDep, key: AdminKey, collection: CollectionDep, event_id: str):
    """Audit-logged (`suggestion.dismiss`) with who said it; saying it again changes nothing. 404 `not_found`
    (`details.reason` `event_not_found`)."""
    suggestions.dismiss(event_id, Actor.of_key(key), collection)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/presence", response_model=PresenceOut, summary="The attendance sheet: first and last seen per day")
def presence(events: EventsDep, _key: AdminKey, collection: CollectionDep,
             since: Annotated[date, Query(description="the first day (UTC), YYYY-MM-DD")],
             until: Annotated[date | None, Query(description="the last day (default: since)")] = None,
             source: SourceFilter = None):
    """Per day and enrolled person: when they were first and last seen, by how many events, at which cameras."""
    until = until or since
    if until < since:
        raise ValidationFailed("`until` is before `since`.", {"field": "until"})
    return {"since": since.isoformat(), "until": until.isoformat(),
            "rows": events.presence(since, until, source, collection)}


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated,
             responses=error_responses(409, 413), summary="Register a URL that receives every recognition event")
def create_webhook(webhooks: WebhooksDep, key: AdminKey, collection: CollectionDep, body: WebhookIn):
    """Each event is POSTed as JSON, signed as Standard Webhooks specifies (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`: any Standard Webhooks verifier checks a delivery with the secret answered here, once; the
    legacy `X-Faceshot-*` headers come beside them for one release), retried with backoff (docs/api.md, Webhooks).

    422 `validation_error` with `details.reason` `invalid_url` (not an http(s) URL httpx can send) or
    `refused_address` (the host is, or resolves to, a loopback, private, link-local or other non-public address
    the operator has not allowed in FACESHOT_WEBHOOK_ALLOW_PRIVATE); 409 `too_many_webhooks` past 10 webhooks in
    the collection."""
    hook, secret = webhooks.create(body.url, Actor.of_key(key), collection)
    return {"id": hook.id, "url": hook.url, "created_at": hook.created_at, "secret": secret,
            "collection": hook.collection, "signature_format": hook.signature_format,
            "deliveries": {"pending": 0, "delivered": 0, "failed": 0}}


@router.get("/webhooks", response_model=list[WebhookOut], summary="The registered webhooks with delivery counts")
def list_webhooks(webhooks: WebhooksDep, _key: AdminKey, collection: CollectionDep):
    """Secrets are not shown again."""
    return webhooks.list(collection)


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404),
               summary="Remove a webhook and its pending deliveries")
def delete_webhook(webhooks: WebhooksDep, key: AdminKey, collection: CollectionDep, webhook_id: str):
    """Deliveries in flight finish; nothing new is sent to it."""
    webhooks.delete(webhook_id, Actor.of_key(key), collection)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=error_responses(404),
            summary="A webhook's latest deliveries and their state")
def list_deliveries(webhooks: WebhooksDep, _key: AdminKey, collection: CollectionDep, webhook_id: str):
    """pending (with the next attempt's time), delivered, or failed, with the last attempt's error as one word
    (invalid_url, refused_address, dns_failed, connect_failed, no_response, timeout, http_error, receiver_failed,
    internal_error, withheld) and, for public receivers only, their status; the server log has the detail."""
    return webhooks.deliveries(webhook_id, collection=collection)

