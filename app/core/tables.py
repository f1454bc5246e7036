"""Database tables. Embeddings are float32 bytes beside the encoder hash that produced them."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """A stored time in UTC: SQLite hands back naive datetimes for DateTime(timezone=True), and every stored time
    is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


DEFAULT_COLLECTION = "default"
COLLECTION_PATTERN = "^[a-z0-9][a-z0-9_-]{0,63}$"  # a collection's name: it is a path segment too


class Collection(Base):
    """A gallery of its own: its people, index and operating point; keys may be bound to one."""

    __tablename__ = "collections"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection: Mapped[str] = mapped_column(ForeignKey("collections.name"), index=True, default=DEFAULT_COLLECTION,
                                            server_default=DEFAULT_COLLECTION)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    faces: Mapped[list[Face]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                             passive_deletes=True, order_by="Face.created_at")


class Face(Base):
    __tablename__ = "faces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    encoder_hash: Mapped[str] = mapped_column(String(64), index=True)
    box: Mapped[list] = mapped_column(JSON)
    det_score: Mapped[float] = mapped_column(Float)
    image_file: Mapped[str | None] = mapped_column(String(200), nullable=True)
    image_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "upload" (a photo sent to the API) or "camera" (a face added from a recognition event): a camera capture
    # strengthens the prototype but does not move its person to a looser shot class (models/calibration.py)
    origin: Mapped[str] = mapped_column(String(10), default="upload", server_default="upload")

    person: Mapped[Person] = relationship(back_populates="faces")

    @property
    def vector(self) -> np.ndarray:
        return np.frombuffer(self.embedding, dtype="<f4")


class AdminAccount(Base):
    """A named person who signs in to the admin page: a password (argon2 hash) and rights per collection."""

    __tablename__ = "admin_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # every collection, and what only the whole deployment has (collections, accounts, deployment keys)
    deployment_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # who signs in as it, when a company's sign-in made it ("proxy:<user>", later "oidc:<issuer>|<sub>"): such an
    # account has no password of its own and its rights follow the sign-in's groups (app/access/accounts.py)
    external_subject: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    grants: Mapped[list[AdminGrant]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                     order_by="AdminGrant.collection")


class AdminGrant(Base):
    """An account's right in one collection: admin (change anything in it) or viewer (look, try, never change)."""

    __tablename__ = "admin_grants"

    account_id: Mapped[str] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"), primary_key=True)
    collection: Mapped[str] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # admin | recognition
    # the one collection it works in; None: every collection (keys made before collections, deployment admins)
    collection: Mapped[str | None] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"), nullable=True)
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the admin account that made it (on the admin page): disabling or deleting the account revokes it
    created_by_account: Mapped[str | None] = mapped_column(String(32), nullable=True)


class GalleryState(Base):
    """One row; ``version`` moves with every write to people or faces, so other processes notice."""

    __tablename__ = "gallery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class GalleryChange(Base):
    """Which people a gallery version touched, so other processes refresh just those prototypes."""

    __tablename__ = "gallery_changes"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class DeploymentIdentity(Base):
    """One row: the id this database shares with its data directory (``<data dir>/instance_id``).

    Neither is used with a stranger: a data directory bound to another database (a mistyped
    ``FACESHOT_DATABASE_URL``, a fresh PostgreSQL volume) stops the start instead of being swept.
    """

    __tablename__ = "deployment_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the encoder this deployment's gallery was started with, and why (app/core/encoder_choice.py): a later start
    # uses it unless FACESHOT_ENCODER says otherwise, so a restart on other hardware never flips it
    encoder: Mapped[str | None] = mapped_column(String(500), nullable=True)
    encoder_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    encoder_decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the admin page's cookie-signing secret (app/access/admin_sessions.py): one for every worker and replica
    session_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)


class StoredPhoto(Base):
    """An enrollment photo kept in the database (FACESHOT_PHOTO_STORE=database, app/gallery/photo_db.py), written in
    its face's own transaction; ``name`` is what ``faces.image_file`` says, as for a file of the folder store."""

    __tablename__ = "photos"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PhotoJournal(Base):
    """A stored photo a write is about to create (``write``) or has just deleted (``delete``).

    A ``write`` row is committed before the file is written and removed in the transaction
    that commits its face; a ``delete`` row commits with the deletion and goes once the file
    is gone. So a row left behind names a file of an interrupted write, and these rows are
    the only files the start-up sweep may touch.
    """

    __tablename__ = "photo_journal"

    file_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # write | delete
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminSignIn(Base):
    """A sign-in to the admin page; the cookie names it, and signing out ends it here."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    signed_in_by: Mapped[str] = mapped_column(String(32))  # an admin key's id, "password" or "account"
    account_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the account, for "account"
    password_tag: Mapped[str | None] = mapped_column(String(64), nullable=True)  # which password signed in
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecognitionEvent(Base):
    """One person passing a camera (one track, decided on its best frames): who, or unknown, where and when.

    ``person_name`` is the name at the time, so the log reads the same after a rename or a delete
    (``person_id`` is cleared then). ``face_crop`` only when FACESHOT_EVENT_FACES=true (unknown faces
    only with FACESHOT_EVENT_UNKNOWN_FACES=true as well); rows older than FACESHOT_EVENT_RETENTION_DAYS go.
    """

    __tablename__ = "recognition_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    collection: Mapped[str] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"),
                                            default=DEFAULT_COLLECTION, index=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True,
                                                  index=True)
    person_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    # what the collection's operating point stated when the event was recorded: the share of strangers' faces named
    # as someone at its size (an automation may require, say, <= 1% before it opens a door); None: not known
    stranger_accept_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    box: Mapped[list] = mapped_column(JSON, default=list)
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    frames: Mapped[int] = mapped_column(Integer, default=1)  # frames the face was tracked over
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)  # first to last frame of the track
    face_crop: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # JPEG, when configured
    # the track's embedding (float32 bytes) and the encoder that made it, kept under the crop's rules, for review
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    encoder_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # "not this person": an admin said the name was wrong; who said it (as the audit log names an actor)
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    corrected_by_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    corrected_by_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    corrected_by_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def vector(self) -> np.ndarray | None:
        return None if self.embedding is None else np.frombuffer(self.embedding, dtype="<f4")


class MqttMessage(Base):
    """An event waiting to be published to the MQTT broker (app/live/mqtt.py), queued in the event's transaction.

    Published in ``id`` order (so in order per camera) by the one worker that holds the ``mqtt`` lease, and deleted
    once the broker acknowledged it: a broker that is down only lets the queue grow until it is back (or until
    retention deletes the event).
    """

    __tablename__ = "mqtt_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("recognition_events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="recorded", server_default="recorded")  # app/live/sinks.py
    # a correction's "not this person" as it was when queued (None: recorded, or undone): it may be undone before sent
    correction: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerLease(Base):
    """Which worker does a job that only one may do at a time (app/core/leases.py), and until when."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Webhook(Base):
    """A URL every recognition event of one collection is POSTed to, signed with its own secret."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection: Mapped[str] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"),
                                            default=DEFAULT_COLLECTION)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "standard" (Standard Webhooks headers, and the legacy ones for one release; Webhooks.create says so) or
    # "legacy" (X-Faceshot-* only): a row that does not say (made before 0009, or by the previous release's worker
    # during an upgrade) has a url-safe secret the spec's verifiers cannot decode
    signature_format: Mapped[str] = mapped_column(String(10), server_default="legacy")


class WebhookDelivery(Base):
    """One event to one webhook: pending until the receiver answers 2xx, retried with backoff, then failed."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("recognition_events.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending | delivered | failed
    kind: Mapped[str] = mapped_column(String(20), default="recorded", server_default="recorded")  # app/live/sinks.py
    # a correction's "not this person" as it was when queued (None: recorded, or undone): it may be undone before sent
    correction: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """One change and who made it (app/access/audit.py)."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    collection: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class VisitorGroup(Base):
    """One group of unknown faces (app/live/visitors.py): "Unknown #<number>" in its collection, active or dismissed.

    Its faces are events (:class:`VisitorMember`); when it was seen, how often and where are read from them.
    """

    __tablename__ = "visitor_groups"

    collection: Mapped[str] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | dismissed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VisitorMember(Base):
    """An unknown event whose kept embedding is in a visitor group; goes with the event."""

    __tablename__ = "visitor_members"

    event_id: Mapped[str] = mapped_column(ForeignKey("recognition_events.id", ondelete="CASCADE"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[int] = mapped_column(Integer, index=True)


class VisitorCannotLink(Base):
    """Two visitor groups an admin said are different people (``a`` < ``b``): nothing merges them."""

    __tablename__ = "visitor_cannot_links"

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    a: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    b: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class VisitorState(Base):
    """Per collection: the groups' version (a new token with every change, so another worker rebuilds its copy)
    and the next "Unknown #N" number (numbers are not reused)."""

    __tablename__ = "visitor_state"

    collection: Mapped[str] = mapped_column(ForeignKey("collections.name", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    next_number: Mapped[int] = mapped_column(Integer, default=1)
