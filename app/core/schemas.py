"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.inputs import MAX_METADATA_BYTES, check_metadata
from app.core.openapi_examples import EXAMPLES
from app.core.tables import COLLECTION_PATTERN, Face, Person, as_utc

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    try:
        return check_metadata(value)
    except Exception as exc:  # pydantic wants ValueError to report it as a field error
        raise ValueError(getattr(exc, "message", str(exc))) from None


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata),
                     Field(description=f"a JSON object stored with the person (at most {MAX_METADATA_BYTES} bytes)")]


class _Strict(BaseModel):
    """A request body that refuses fields it does not have: `{"nmae": ...}` is a 422, not a 200 that did nothing."""

    model_config = ConfigDict(extra="forbid")


class PersonCreate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["PersonCreate"]]})
    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)


class PersonUpdate(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["PersonUpdate"]]})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: Metadata | None = None


class FaceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["FaceOut"]]})
    id: str
    person_id: str
    box: list[float]
    det_score: float
    encoder_hash: str
    has_image: bool
    created_at: UtcDatetime
    origin: Literal["upload", "camera"] = Field(
        "upload", description="upload: a photo sent to the API; camera: a face added from a recognition event (its "
                              "person is held to a capture class's threshold)")

    @classmethod
    def of(cls, f: Face) -> FaceOut:
        return cls(id=f.id, person_id=f.person_id, box=f.box, det_score=f.det_score, encoder_hash=f.encoder_hash,
                   has_image=f.image_file is not None, created_at=f.created_at, origin=f.origin or "upload")


class PersonOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["PersonOut"]]})
    id: str
    name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, p: Person) -> PersonOut:
        return cls(id=p.id, name=p.name, external_id=p.external_id, metadata=p.meta or {},
                   face_count=len(p.faces), created_at=p.created_at, updated_at=p.updated_at)


class PeoplePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["PeoplePage"]]})
    items: list[PersonOut]
    total: int
    limit: int
    offset: int


class EnrollOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["EnrollOut"]]})
    person: PersonOut
    faces: list[FaceOut]
    warnings: list[dict[str, Any]]


class KeyCreate(_Strict):
    collection: str | None = Field(default=None, max_length=64,
                                   description="the one collection the key works in (default: every collection)")
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["KeyCreate"]]})
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(pattern="^(admin|recognition)$")


class KeyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["KeyOut"]]})
    id: str
    name: str
    role: str
    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None
    collection: str | None = Field(default=None, description="the one collection it works in; null: every one")


class KeyCreated(KeyOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["KeyCreated"]]})
    key: str = Field(description="The secret; shown this once, stored only as a hash")


# -- recognition results: app.recognition.results dataclasses as JSON ----------------
class _FromResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PersonRefOut(_FromResult):
    id: str
    name: str


class FaceBoxOut(_FromResult):
    box: list[float] = Field(description="x1, y1, x2, y2 in the photo's pixels")
    landmarks: list[list[float]] = Field(description="eyes, nose, mouth corners: five (x, y) points")
    det_score: float = Field(description="the detector's confidence, 0-1")
    quality: dict[str, Any] = Field(description="face_size, sharpness, eye_distance, too_small, blurry, low_confidence")


class CandidateOut(_FromResult):
    person: PersonRefOut | None = Field(description="null when this caller may not see who it is")
    distance: float
    similarity: float = Field(description="raw cosine (1 - distance²/2), not a probability: strangers often score "
                                          "0.8-0.9; decide by `match`, never by a cut-off on this")
    match: bool = Field(description="true for the candidate the face is named as (at most one a face), at the "
                                    "calibrated threshold the face's `threshold` states")


class IdentifiedFaceOut(FaceBoxOut):
    box: list[float] | None = Field(description="x1, y1, x2, y2 in the photo's pixels; null when an embedding was "
                                                "sent instead of a photo")
    landmarks: list[list[float]] | None = Field(description="five (x, y) points; null for an embedding")
    det_score: float | None = Field(description="the detector's confidence, 0-1; null for an embedding")
    person: PersonRefOut | None = Field(description="the person named, or null: unknown")
    distance: float | None = Field(description="Euclidean distance (0-2) to the nearest person's prototype")
    similarity: float | None = Field(description="cosine similarity, 1 - distance²/2 (not a probability: see "
                                                 "`person` and the candidates' `match`)")
    threshold: float | None = Field(description="the distance a face must be within to be named")
    stranger_accept_rate: float | None = Field(
        description="the fraction of strangers' faces this gallery names as someone at the thresholds applied")
    candidates: list[CandidateOut]


class OperatingPointOut(_FromResult):
    source: str = Field(description="FACESHOT_TARGET_FAR (gallery-aware), FACESHOT_THRESHOLD, request or "
                                    "encoder checkpoint")
    target_far: float | None
    gallery_size: int
    thresholds: dict[str, float] = Field(
        description="by photos enrolled: 1, 2, 3 (3 or more); and, where the encoder's calibration measured them, for "
                    "people with a face added from a camera event: with_camera (photos and captures), camera_only")
    stranger_accept_rate: float | None = Field(description="what the thresholds stand for at this gallery size")
    per_person_rate: float | None
    expected_recognition: dict[str, float] = Field(
        description="by photos enrolled (and capture class): the chance an enrolled person's photo falls within "
                    "their threshold")
    warnings: list[str]


class IdentifyOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["IdentifyOut"]]})
    faces: list[IdentifiedFaceOut] = Field(description="every face in the photo, largest first")
    took_ms: float
    encoder: dict[str, Any]
    operating_point: OperatingPointOut | None


class VerifyOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["VerifyOut"]]})
    match: bool
    distance: float
    similarity: float
    threshold: float
    person: PersonRefOut
    face: FaceBoxOut
    stranger_accept_rate: float | None = Field(
        description="the chance a stranger's photo passes as this person (one comparison)")


class CompareOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["CompareOut"]]})
    match: bool = Field(description="the two faces are one person, at `threshold`")
    distance: float = Field(description="Euclidean distance (0-2) between the two faces' embeddings")
    similarity: float = Field(description="raw cosine (1 - distance²/2), not a probability: decide by `match`")
    threshold: float = Field(description="the distance a pair must be within to match")
    threshold_source: str = Field(description="FACESHOT_TARGET_FAR (held for one comparison), FACESHOT_THRESHOLD, "
                                              "request or encoder checkpoint")
    stranger_accept_rate: float | None = Field(
        description="the chance two photos of different people match at this threshold (the FAR it stands for)")
    face_a: FaceBoxOut = Field(description="the face used in image_a")
    face_b: FaceBoxOut | None = Field(description="the face used in image_b; null when embedding_b was sent")
    encoder: dict[str, Any]


class EmbeddedFaceOut(FaceBoxOut):
    embedding: list[float] = Field(description="L2-normalised; send it to identify, compare or enroll with "
                                               "`encoder_hash`")


class EmbedOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["EmbedOut"]]})
    faces: list[EmbeddedFaceOut] = Field(description="every face in the photo, largest first")
    encoder: dict[str, Any] = Field(description="name, content_hash (send it with an embedding), embedding_size...")
    took_ms: float


class ImageSizeOut(_FromResult):
    width: int
    height: int


class DetectOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["DetectOut"]]})
    faces: list[FaceBoxOut]
    image: ImageSizeOut
    took_ms: float


class GalleryInfoOut(_FromResult):
    people: int
    faces: int
    indexed_people: int
    index_device: str


class EncoderChoiceOut(BaseModel):
    spec: str = Field(description="the FACESHOT_ENCODER spec the gallery's embeddings are made with")
    source: Literal["FACESHOT_ENCODER", "stored with the gallery"]
    reason: str | None = Field(description="why the gallery has this encoder, as recorded when it was decided")
    decided_at: UtcDatetime | None


class ModelOut(_FromResult):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["ModelOut"]]})
    encoder: dict[str, Any]
    threshold: float = Field(description="the threshold for a person enrolled with one photo")
    threshold_by_support: dict[str, float] | None = Field(description="per number of enrollment photos")
    threshold_source: str = Field(description="FACESHOT_THRESHOLD or encoder checkpoint")
    gallery: GalleryInfoOut
    store_images: bool
    operating_point: OperatingPointOut | None
    encoder_choice: EncoderChoiceOut | None = Field(
        None, description="which encoder this gallery uses and why: decided at its first start (the dlib+FaceNet "
                          "fusion on a GPU host with FaceNet's weights, else dlib), stored with the gallery")


# -- collections --------------------------------------------------------------------------------------------
class CollectionIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "warehouse"}]})
    name: str = Field(min_length=1, max_length=64, pattern=COLLECTION_PATTERN,
                      description="lowercase letters, digits, - and _")


class CollectionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "warehouse", "created_at": "2026-12-02T09:30:00Z", "people": 50}]})
    name: str
    created_at: UtcDatetime
    people: int


# -- admin accounts ------------------------------------------------------------------------------------------
Right = Literal["admin", "viewer"]


class AccountIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["AccountIn"]]})
    name: str = Field(min_length=1, max_length=64, description="lowercase letters, digits, '.', '_', '@', '-'")
    password: str = Field(min_length=12, max_length=200, description="stored as an argon2id hash, never shown")
    deployment_admin: bool = Field(False, description="every collection, and the deployment's own settings")
    rights: dict[str, Right] = Field(default_factory=dict, description="collection -> admin or viewer")


class AccountPatch(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["AccountPatch"]]})
    password: str | None = Field(None, min_length=12, max_length=200, description="ends the account's sign-ins")
    deployment_admin: bool | None = None
    rights: dict[str, Right] | None = Field(None, description="replaces every right the account has")
    disabled: bool | None = Field(None, description="true ends its sign-ins and refuses new ones")


class AccountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["AccountOut"]]})
    id: str
    name: str
    deployment_admin: bool
    rights: dict[str, str]
    created_at: UtcDatetime
    disabled: bool


# -- recognition events and webhooks --------------------------------------------------------------------------
class EventIn(_Strict):
    """What a watcher reports for one tracked face (``faceshot watch --server`` sends it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["EventIn"]]})
    time: datetime | None = Field(default=None, description="when the face was seen (default: now), UTC")
    source: str = Field(min_length=1, max_length=100, description="the camera, e.g. door-1")
    person_id: str | None = Field(default=None, max_length=32, description="who it was; null: unknown")
    distance: float | None = Field(default=None, ge=0, le=2)
    threshold: float | None = Field(default=None, ge=0, le=2)
    box: list[float] = Field(default_factory=list, max_length=4)
    quality: dict[str, float | bool | None] = Field(default_factory=dict, max_length=16)
    frames: int = Field(default=1, ge=1, le=100_000)
    duration_s: float = Field(default=0.0, ge=0, le=86_400)
    face: str | None = Field(default=None, max_length=48_000, description="a small JPEG crop, base64; kept only "
                                                                          "when FACESHOT_EVENT_FACES is on")
    embedding: list[float] | None = Field(default=None, max_length=4096, description=(
        "the track's embedding as POST /embed made it (a unit vector), with `encoder_hash`; kept for review under "
        "the face crop's rules (FACESHOT_EVENT_FACES, FACESHOT_EVENT_UNKNOWN_FACES), refused when malformed or "
        "another encoder's (422 encoder_mismatch)"))
    encoder_hash: str | None = Field(default=None, max_length=64, description="with `embedding`: the encoder that "
                                                                              "made it")


class EventCorrection(BaseModel):
    kind: Literal["not_this_person"]
    at: UtcDatetime
    by: dict[str, Any] = Field(description="who said it: {kind (key, account, password, cli), id, name}")


class EventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["EventOut"]]})
    id: str
    time: UtcDatetime
    source: str
    person: dict[str, Any] | None = Field(description="{id, name} at the time; id null once deleted; null: unknown")
    distance: float | None
    threshold: float | None
    stranger_accept_rate: float | None = Field(
        None, description="the share of strangers' faces the collection's thresholds named as someone, at its size, "
                          "when the event was recorded (null: not known)")
    box: list[float]
    quality: dict[str, Any]
    frames: int
    duration_s: float
    collection: str = Field("default", description="the collection it was decided in")
    embedding_kept: bool = Field(False, description="the track's embedding is kept for review (as the crop is)")
    corrected: EventCorrection | None = Field(None, description="an admin said the name was wrong (not this person): "
                                                                "the event no longer counts in presence")
    face_url: str | None = Field(description="the kept face crop, when there is one")


class EventEnrollIn(_Strict):
    """Whom an event's kept face goes to: an enrolled person (``person_id``), or a new one (``name``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["EventEnrollIn"]]})
    person_id: str | None = Field(default=None, max_length=32, description="add the face to this person")
    name: str | None = Field(default=None, min_length=1, max_length=200,
                             description="instead: enroll a new person of this name from the face")
    new_person: bool = Field(default=False, description="with `name`: another person of a name already enrolled, "
                                                        "whose face this is (refused as person_exists otherwise)")


class CorrectionRow(BaseModel):
    person: dict[str, Any] = Field(description="{id, name}")
    corrections: int = Field(description="events named as this person that an admin said were not them")
    last_corrected_at: UtcDatetime


class CorrectionsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["CorrectionsOut"]]})
    items: list[CorrectionRow] = Field(description="per person, most corrections first")


class SupportDistance(BaseModel):
    face_id: str
    distance: float = Field(description="from the event's kept embedding to this support face")
    has_image: bool
    created_at: UtcDatetime


class SupportDistancesOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["SupportDistancesOut"]]})
    event_id: str
    person: dict[str, Any] = Field(description="{id, name}: whom the event named")
    event_distance: float | None = Field(description="the distance the event was decided on (to the prototype)")
    corrected: bool = Field(description="an admin said this was not the person")
    faces: list[SupportDistance] = Field(description="the person's support faces, nearest first")


class Suggestion(BaseModel):
    event_id: str = Field(description="accept: POST /events/{event_id}/enroll {\"person_id\": person.id}")
    person: dict[str, Any] = Field(description="{id, name}: whom the event named (still enrolled)")
    source: str = Field(description="the camera")
    time: UtcDatetime
    distance: float = Field(description="the distance the event was decided on (to the person's prototype)")
    threshold: float = Field(description="the threshold it was decided against")
    quality: float = Field(description="the event's quality score (0-1: size, sharpness, frontal, detector)")
    face_url: str = Field(description="the kept face crop")


class SuggestionRule(BaseModel):
    min_distance_fraction: float = Field(description="offered from this share of the event's threshold up to it")
    min_quality: float = Field(description="the least quality score offered (and no too_small/blurry hint)")
    per_person: int = Field(description="at most this many per person, the best (distance x quality) first")


class SuggestionsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["SuggestionsOut"]]})
    items: list[Suggestion] = Field(description="best first (distance x quality)")
    rule: SuggestionRule


class VisitorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["VisitorOut"]]})
    id: int = Field(description="the group's number in its collection (Unknown #id)")
    label: str = Field(description='"Unknown #N"')
    status: Literal["active", "dismissed"]
    seen: int = Field(description="events (faces whose embedding was kept) in the group")
    cameras: list[str]
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    best_event_ids: list[str] = Field(description="its best 1-3 faces (events): shown, and enrolled when named")
    best_face_urls: list[str]
    cannot_link: list[int] = Field(description="groups an admin said are someone else: never merged with this one")


class VisitorsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["VisitorsOut"]]})
    items: list[VisitorOut] = Field(description="most recently seen first")


class VisitorNameIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["VisitorNameIn"]]})
    name: str = Field(min_length=1, max_length=200, description="the new person's name")
    new_person: bool = Field(default=False, description="another person of a name already enrolled (refused as "
                                                        "person_exists otherwise)")


class VisitorNamed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["VisitorNamed"]]})
    person: PersonOut
    faces: list[FaceOut]
    warnings: list[dict[str, Any]]
    visitor: int = Field(description="the group named (now closed)")
    event_ids: list[str] = Field(description="the events whose faces were enrolled")


class VisitorMergeIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["VisitorMergeIn"]]})
    other: int = Field(ge=1, description="the group whose faces move into this one (it goes)")


class VisitorSplitIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["VisitorSplitIn"]]})
    event_id: str = Field(min_length=1, max_length=32, description="the face (event) taken out into its own group")


class VisitorDeleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["VisitorDeleted"]]})
    id: int
    events: int = Field(description="events that lost their kept face and embedding (they stay in the log)")


class EventsDeleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"deleted": 412, "source": "door-1"}]})
    deleted: int = Field(description="events deleted, with their face crops and pending deliveries")
    source: str


class EventsPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["EventsPage"]]})
    items: list[EventOut]
    total: int
    limit: int
    offset: int


class PresenceRow(BaseModel):
    day: str
    person: dict[str, Any]
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    events: int
    sources: list[str]


class PresenceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["PresenceOut"]]})
    since: str
    until: str
    rows: list[PresenceRow] = Field(description="per day (UTC) and person: first and last seen")


class WebhookIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLES["WebhookIn"]]})
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL that receives each event")


class WebhookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["WebhookOut"]]})
    id: str
    url: str
    created_at: UtcDatetime
    collection: str = Field("default", description="whose events it receives")
    signature_format: Literal["standard", "legacy"] = Field(
        "standard", description="how its deliveries are signed. standard: Standard Webhooks (webhook-id, "
                                "webhook-timestamp, webhook-signature: v1,<base64>; any Standard Webhooks verifier "
                                "checks them with the secret), and the legacy X-Faceshot-* headers beside them for "
                                "one release; legacy (a webhook created before): X-Faceshot-* only")
    deliveries: dict[str, int] = Field(description="how many are pending, delivered, failed")


class WebhookCreated(WebhookOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["WebhookCreated"]]})
    secret: str = Field(description="signs every delivery: whsec_ and the base64 of the HMAC key, as Standard "
                                    "Webhooks specifies (give it as it is to a verifier); shown this once")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLES["DeliveryOut"]]})
    id: str
    event_id: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: UtcDatetime
    last_status: int | None = Field(description="the last answer's HTTP status; public receivers only (the others' "
                                                "failures read alike, so no one can probe a private network)")
    last_error: str | None = Field(description="why the last attempt failed, one of: invalid_url, refused_address, "
                                               "dns_failed, connect_failed, no_response, timeout, http_error, "
                                               "receiver_failed (on an allowed private network), internal_error, "
                                               "withheld (recorded by an earlier version); the server log has the "
                                               "detail")
    delivered_at: UtcDatetime | None


class AuditEntryOut(BaseModel):
    time: UtcDatetime
    actor: dict[str, Any] = Field(description="{kind: key|account|password|cli|system, id, name}: who did it")
    collection: str | None
    action: str = Field(description="person.enroll, person.create, person.import, person.update, person.delete, "
                                    "person.move, face.add, face.delete, key.create, key.revoke, webhook.create, "
                                    "webhook.delete, collection.create, collection.delete, account.create, "
                                    "account.update, account.delete, admin.sign_in")
    target: str | None = Field(description="the person's, key's, webhook's, collection's or account's id")
    details: dict[str, Any] = Field(description="e.g. the person's name, the fields changed, where to")


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["AuditPage"]]})
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


# -- the one error shape ------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="stable and machine-readable, e.g. no_face, image_too_large, unauthorized")
    message: str = Field(description="for people")
    details: dict[str, Any] = Field(description="what the code needs: the field, the limit, the boxes...")


class ErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["ErrorOut"]]})
    error: ErrorBody


ERROR_STATUSES = {
    400: "invalid_image, invalid_multipart",
    401: "unauthorized: no key, or not a valid one",
    403: "forbidden: a recognition key on an admin route",
    404: "not_found",
    405: "method_not_allowed: the path exists, not with this method (the Allow header lists those it takes)",
    408: "request_timeout: the body stopped arriving",
    409: "conflict",
    413: "image_too_large, request_too_large",
    415: "unsupported_media_type: send photos as multipart/form-data or as JSON with base64",
    422: "validation_error, no_face, multiple_faces, no_face_in_box, too_many_images, decode_timeout, "
         "encoder_mismatch",
    429: "rate_limited (with Retry-After)",
    503: "unavailable, overloaded (with Retry-After), storage_unavailable",
    507: "storage_unavailable: the disk is full",
}


def error_responses(*statuses: int) -> dict[int, dict]:
    """OpenAPI ``responses=`` for the statuses a route can answer, in the shape the server really sends."""
    return {s: {"model": ErrorOut, "description": ERROR_STATUSES[s]} for s in statuses}
