"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from .inputs import MAX_METADATA_BYTES, check_metadata
from .models import Face, Person


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for DateTime(timezone=True); every stored time is UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    try:
        return check_metadata(value)
    except Exception as exc:  # pydantic wants ValueError to report it as a field error
        raise ValueError(getattr(exc, "message", str(exc))) from None


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata),
                     Field(description=f"a JSON object stored with the person (at most {MAX_METADATA_BYTES} bytes)")]


class PersonCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)


class PersonUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    metadata: Metadata | None = None


class FaceOut(BaseModel):
    id: str
    person_id: str
    box: list[float]
    det_score: float
    encoder_hash: str
    has_image: bool
    created_at: UtcDatetime

    @classmethod
    def of(cls, f: Face) -> FaceOut:
        return cls(id=f.id, person_id=f.person_id, box=f.box, det_score=f.det_score, encoder_hash=f.encoder_hash,
                   has_image=f.image_file is not None, created_at=f.created_at)


class PersonOut(BaseModel):
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
    items: list[PersonOut]
    total: int
    limit: int
    offset: int


class EnrollOut(BaseModel):
    person: PersonOut
    faces: list[FaceOut]
    warnings: list[dict[str, Any]]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(pattern="^(admin|recognition)$")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret; shown this once, stored only as a hash")
