"""Recognition events: the log of who passed which camera when, its queries, retention and the attendance sheet.

An event is written by ``faceshot watch`` (in-process, or through ``POST /api/v1/events``) once
per tracked face. Privacy by default: a face crop, and the track's embedding, are kept only when
FACESHOT_EVENT_FACES is on, and an unknown face's only when FACESHOT_EVENT_UNKNOWN_FACES is on too; events older than
FACESHOT_EVENT_RETENTION_DAYS are deleted (at start, hourly, and as events arrive). Each new
event is queued for every webhook in the same transaction (:mod:`app.live.webhooks`), so a delivery
is never lost between the two.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
from PIL import Image
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from app.access import audit
from app.access.audit import Actor
from app.core.config import Settings
from app.core.db import Database, begin_write, get_collection, page
from app.core.errors import Conflict, NotFound, ValidationFailed, database_error
from app.core.inputs import clean_label
from app.core.paths import api_base
from app.core.spreadsheet import csv_document
from app.core.tables import DEFAULT_COLLECTION, Person, RecognitionEvent, as_utc, new_id
from app.gallery.embeddings import embedding_from_client
from app.live.sinks import CORRECTED, CORRECTION_UNDONE, RECORDED, EventSink
from models.imageio import load_image

CSV_FIELDS = ("id", "time", "source", "person_id", "person_name", "distance", "threshold", "frames", "duration_s")


@dataclass
class NewEvent:
    """What a watcher saw: one track's decision."""

    time: datetime
    source: str
    person_id: str | None
    distance: float | None
    threshold: float | None
    box: list[float]
    quality: dict
    frames: int = 1
    duration_s: float = 0.0
    face_crop: bytes | None = None
    collection: str = DEFAULT_COLLECTION  # the gallery it was decided against; its webhooks get it
    embedding: np.ndarray | None = None  # the track's unit vector (checked already), kept as the crop is
    encoder_hash: str | None = None  # the encoder that made it (None: this service's own)


def reencoded_crop(data: bytes) -> bytes:
    """A face crop as a JPEG made here: whatever came (HTML, SVG, a program) was served back as image/jpeg; now
    only pixels that decoded are kept."""
    image = load_image(data, max_bytes=CROP_MAX_BYTES, max_pixels=CROP_MAX_PIXELS)
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=90)
    return out.getvalue()


def event_dict(e: RecognitionEvent, *, with_crop_url: bool = True) -> dict:
    """An event as the API, the webhooks and the CSV export show it (the crop by URL, never inline)."""
    return {"id": e.id, "time": as_utc(e.time).isoformat(), "source": e.source,
            "person": {"id": e.person_id, "name": e.person_name} if e.person_name is not None else None,
            "distance": e.distance, "threshold": e.threshold, "stranger_accept_rate": e.stranger_accept_rate,
            "box": e.box, "quality": e.quality,
            "frames": e.frames, "duration_s": e.duration_s,
            "collection": e.collection,
            "embedding_kept": e.embedding is not None,
            "corrected": correction_dict(e),
            "face_url": f"{api_base(e.collection)}/events/{e.id}/face" if (with_crop_url and e.face_crop) else None}


def correction_dict(e: RecognitionEvent) -> dict | None:
    """An event's "not this person" as the outputs show it (who said it, when), or None: not corrected."""
    if e.corrected_at is None:
        return None
    return {"kind": "not_this_person", "at": as_utc(e.corrected_at).isoformat(),
            "by": {"kind": e.corrected_by_kind, "id": e.corrected_by_id, "name": e.corrected_by_name}}


def queued_correction(e: RecognitionEvent, kind: str) -> dict | None:
    """What an output's queue row keeps of an event's correction (its snapshot): for a correction or its undo, the
    correction as it is in that transaction; nothing for a recorded event."""
    return None if kind == RECORDED else correction_dict(e)


def sent_event_dict(e: RecognitionEvent, kind: str, correction: dict | None) -> dict:
    """An event as an output sends it: a correction with the correction as it was when queued (``correction``, the
    queue row's snapshot), not as it is now (it may have been undone since); an undo with none; a recorded event as
    it is now. A correction queued before its row kept a snapshot (0015) is sent as it is now, as it was then."""
    out = event_dict(e)
    if kind == CORRECTED and correction is not None:
        out["corrected"] = correction
    elif kind == CORRECTION_UNDONE:
        out["corrected"] = None
    return out


FUTURE_SKEW = timedelta(minutes=5)  # a camera's clock a little ahead of the server's
CROP_MAX_BYTES = 64 * 1024
CROP_MAX_PIXELS = 512 * 512


class EventLog:
    def __init__(self, settings: Settings, db: Database, sinks: Sequence[EventSink] = (),
                 stated_rate: Callable[[str], float | None] = lambda collection: None, encoder=None):
        self.settings, self.db, self.sessions = settings, db, db.sessions
        self.encoder = encoder  # whose embeddings an event may keep (a watcher's are checked against it)
        # the stranger-accept rate a collection's operating point states now: recorded with each event, by the
        # server (a watcher does not get to say it), so what an automation reads is what the threshold stood for
        self.stated_rate = stated_rate
        self.sinks = list(sinks)  # every output of an event, each queued in the event's own transaction
        self._last_purge: datetime | None = None

    def _checked_time(self, when: datetime) -> datetime:
        """An event's time within FACESHOT_EVENT_MAX_AGE_H of the server's clock (five minutes ahead at most): a
        year-9999 event outlived retention, a back-dated one rewrote a past day's attendance."""
        when, now = as_utc(when), datetime.now(timezone.utc)
        oldest = now - timedelta(hours=self.settings.event_max_age_h)
        if not oldest <= when <= now + FUTURE_SKEW:
            raise ValidationFailed(f"An event's time must lie between {oldest.isoformat(timespec='seconds')} and "
                                   f"{(now + FUTURE_SKEW).isoformat(timespec='seconds')} (the server's clock, "
                                   "FACESHOT_EVENT_MAX_AGE_H back).", {"field": "time", "server_time": now.isoformat()})
        return when

    # -- writing -------------------------------------------------------------------------------
    def record(self, new: NewEvent) -> RecognitionEvent:
        """Store one event (its crop only as configured) and queue it for its collection's webhooks, in one
        transaction."""
        new.source = clean_label(new.source, "source", 100)
        when = self._checked_time(new.time)
        keeps = self._keeps_crop(new.person_id is not None)
        crop = reencoded_crop(new.face_crop) if new.face_crop and keeps else None
        vector = self._kept_embedding(new) if keeps else None
        self.db.check_writable()
        rate = self.stated_rate(new.collection)
        try:
            return self._record(new, when, crop, vector, rate)
        except DBAPIError as exc:
            raise database_error(exc) from exc

    def checked_embedding(self, value, encoder_hash: str | None) -> np.ndarray:
        """A watcher's embedding for an event, accepted as /identify accepts one: this encoder's unit vector."""
        if self.encoder is None:
            raise ValidationFailed("This service keeps no event embeddings.", {"field": "embedding"})
        return embedding_from_client(self.encoder, value, encoder_hash)

    def _kept_embedding(self, new: NewEvent) -> bytes | None:
        """The event's embedding as stored, or None: none sent, or another encoder's (in-process, a reembed)."""
        if new.embedding is None or self.encoder is None:
            return None
        if (new.encoder_hash or self.encoder.content_hash) != self.encoder.content_hash:
            return None
        return np.asarray(new.embedding, dtype="<f4").tobytes()

    def _record(self, new: NewEvent, when: datetime, crop: bytes | None, vector: bytes | None,
                rate: float | None) -> RecognitionEvent:
        with begin_write(self.sessions) as session:
            get_collection(session, new.collection, lock="share")  # not in a collection being deleted
            name = None
            if new.person_id is not None:
                person = session.get(Person, new.person_id)
                if person is None or person.collection != new.collection:
                    raise NotFound(f"No person with id {new.person_id}.", {"person_id": new.person_id})
                name = person.name
            event = RecognitionEvent(id=new_id(), time=when, source=new.source, person_id=new.person_id,
                                     person_name=name, distance=new.distance, threshold=new.threshold,
                                     stranger_accept_rate=rate,
                                     box=list(new.box), quality=dict(new.quality), frames=new.frames,
                                     duration_s=new.duration_s, face_crop=crop, collection=new.collection,
                                     embedding=vector,
                                     encoder_hash=self.encoder.content_hash if vector is not None else None)
            session.add(event)
            session.flush()
            for sink in self.sinks:
                sink.queue(session, event)
            session.expunge(event)
        for sink in self.sinks:
            sink.wake()
        self.purge_expired(at_most_hourly=True)
        return event

    def _keeps_crop(self, known: bool) -> bool:
        return self.settings.event_faces and (known or self.settings.event_unknown_faces)

    def purge_expired(self, *, at_most_hourly: bool = False) -> int:
        """Delete events past retention (their crops and deliveries with them); returns how many."""
        now = datetime.now(timezone.utc)
        if at_most_hourly and self._last_purge and now - self._last_purge < timedelta(hours=1):
            return 0
        self._last_purge = now
        cutoff = now - timedelta(days=self.settings.event_retention_days)
        with self.sessions.begin() as session:
            doomed = select(RecognitionEvent.id).where(RecognitionEvent.time < cutoff)
            for sink in self.sinks:
                sink.forget(session, doomed)
            return session.execute(delete(RecognitionEvent).where(RecognitionEvent.time < cutoff)).rowcount or 0

    def forget_source(self, source: str, actor=None, collection: str = DEFAULT_COLLECTION) -> int:
        """Delete one camera's events in a collection (a camera taken down or renamed), and what each sink keeps of
        them: Home Assistant's device for it goes with them. Returns how many; audit-logged."""
        with begin_write(self.sessions) as session:
            get_collection(session, collection, lock="share")
            where = (RecognitionEvent.collection == collection) & (RecognitionEvent.source == source)
            for sink in self.sinks:
                sink.forget(session, select(RecognitionEvent.id).where(where))
            deleted = session.execute(delete(RecognitionEvent).where(where)).rowcount or 0
            # the camera's name in the details: it may be longer than an audit target (an id) can be
            audit.record(session, actor, "events.delete_source", collection=collection,
                         details={"source": source, "events": deleted})
        return deleted

    def correct(self, event_id: str, actor: Actor | None, collection: str = DEFAULT_COLLECTION, *,
                undo: bool = False) -> RecognitionEvent:
        """"Not this person" on a named event (``undo``: take it back), with who said it; audit-logged. A corrected
        event stays in the log, marked, and no longer counts in presence. Saying it twice changes nothing."""
        actor = actor or audit.SYSTEM
        with begin_write(self.sessions) as session:
            get_collection(session, collection, lock="share")
            event = session.get(RecognitionEvent, event_id)
            if event is None or event.collection != collection:
                raise NotFound(f"No event with id {event_id}.", {"event_id": event_id, "reason": "event_not_found"})
            if event.person_name is None:
                raise Conflict("This event named nobody (an unknown face): there is no name to correct.",
                               {"event_id": event_id, "reason": "event_unknown"})
            if (event.corrected_at is None) == undo:  # already as asked
                session.expunge(event)
                return event
            if undo:
                event.corrected_at = event.corrected_by_kind = event.corrected_by_id = event.corrected_by_name = None
            else:
                event.corrected_at = datetime.now(timezone.utc)
                event.corrected_by_kind, event.corrected_by_id = actor.kind, actor.id
                event.corrected_by_name = actor.name[:200]
            audit.record(session, actor, "event.correction_undone" if undo else "event.not_this_person",
                         collection=collection, target=event_id,
                         details={"person_id": event.person_id, "name": event.person_name})
            session.flush()
            for sink in self.sinks:  # sent again, so a receiver can take back what it did with the first
                sink.queue(session, event, CORRECTION_UNDONE if undo else CORRECTED)
            session.expunge(event)
        for sink in self.sinks:
            sink.wake()
        return event

    def delete_collection(self, session, collection: str) -> None:
        """A deleted collection's events, and what each sink keeps of them (in the deletion's transaction)."""
        events = select(RecognitionEvent.id).where(RecognitionEvent.collection == collection)
        for sink in self.sinks:
            sink.forget(session, events, collection)
        session.execute(delete(RecognitionEvent).where(RecognitionEvent.collection == collection))

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _filtered(q, collection, person_id, source, since, until, unknown):
        q = q.where(RecognitionEvent.collection == collection)
        if person_id:
            q = q.where(RecognitionEvent.person_id == person_id)
        if source:
            q = q.where(RecognitionEvent.source == source)
        if since:
            q = q.where(RecognitionEvent.time >= as_utc(since))
        if until:
            q = q.where(RecognitionEvent.time < as_utc(until))
        if unknown is not None:
            known = RecognitionEvent.person_name
            q = q.where(known.is_(None) if unknown else known.is_not(None))
        return q

    def list(self, *, collection=DEFAULT_COLLECTION, person_id=None, source=None, since=None, until=None,
             unknown=None, limit=100, offset=0):
        """A page of a collection's events, newest first, and how many match."""
        with self.sessions() as session:
            q = self._filtered(select(RecognitionEvent), collection, person_id, source, since, until, unknown)
            return page(session, q, RecognitionEvent.time.desc(), RecognitionEvent.id, limit=limit,
                             offset=offset)

    def csv(self, *, collection=DEFAULT_COLLECTION, **filters) -> str:
        """Every matching event as CSV, oldest first (a spreadsheet reads a day top to bottom)."""
        with self.sessions() as session:
            q = self._filtered(select(RecognitionEvent), collection, **filters).order_by(RecognitionEvent.time)
            return csv_document(CSV_FIELDS, ([e.id, as_utc(e.time).isoformat(), e.source, e.person_id or "",
                                              e.person_name or "unknown", e.distance, e.threshold, e.frames,
                                              e.duration_s] for e in session.scalars(q)))

    def presence(self, since: date, until: date, source: str | None = None,
                 collection: str = DEFAULT_COLLECTION) -> list[dict]:
        """The attendance sheet: per day (UTC) and enrolled person, when they were first and last seen."""
        start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
        end = datetime(until.year, until.month, until.day, tzinfo=timezone.utc) + timedelta(days=1)
        if end - start > timedelta(days=366):
            raise ValidationFailed("A presence sheet covers at most 366 days.", {"field": "until"})
        sheet: dict[tuple, dict] = {}
        with self.sessions() as session:
            # an event an admin said was not this person does not count as their being there
            q = self._filtered(select(RecognitionEvent), collection, None, source, start, end, False).where(
                RecognitionEvent.corrected_at.is_(None)).order_by(RecognitionEvent.time)
            for e in session.scalars(q):
                when = as_utc(e.time)
                key = (when.date().isoformat(), e.person_id or e.person_name)
                row = sheet.setdefault(key, {"day": key[0], "person": {"id": e.person_id, "name": e.person_name},
                                             "first_seen": when.isoformat(), "last_seen": when.isoformat(),
                                             "events": 0, "sources": []})
                row["last_seen"] = when.isoformat()
                row["events"] += 1
                if e.source not in row["sources"]:
                    row["sources"].append(e.source)
        return sorted(sheet.values(), key=lambda r: (r["day"], r["first_seen"]))

    def get(self, event_id: str, collection: str = DEFAULT_COLLECTION) -> RecognitionEvent:
        """One event of the collection (404 ``not_found`` with ``details.reason`` ``event_not_found`` otherwise)."""
        with self.sessions() as session:
            event = session.get(RecognitionEvent, event_id)
            if event is None or event.collection != collection:
                raise NotFound(f"No event with id {event_id}.", {"event_id": event_id, "reason": "event_not_found"})
            session.expunge(event)
            return event

    def corrections(self, collection: str = DEFAULT_COLLECTION, person_id: str | None = None) -> list[dict]:
        """Per person: how many of their events an admin said were not them, and when last; most first."""
        with self.sessions() as session:
            q = (select(RecognitionEvent.person_id, RecognitionEvent.person_name, RecognitionEvent.corrected_at)
                 .where(RecognitionEvent.collection == collection, RecognitionEvent.corrected_at.is_not(None),
                        RecognitionEvent.person_id.is_not(None)))
            if person_id:
                q = q.where(RecognitionEvent.person_id == person_id)
            rows = session.execute(q).all()
            names = {r.person_id: r.person_name for r in rows}
            names.update(session.execute(select(Person.id, Person.name).where(
                Person.id.in_(set(names)))).all() if rows else [])
        counts = Counter(r.person_id for r in rows)
        last: dict[str, datetime] = {}
        for r in rows:
            last[r.person_id] = max(last.get(r.person_id, as_utc(r.corrected_at)), as_utc(r.corrected_at))
        return sorted(({"person": {"id": pid, "name": names.get(pid)}, "corrections": n,
                        "last_corrected_at": last[pid].isoformat()} for pid, n in counts.items()),
                      key=lambda row: (-row["corrections"], row["person"]["id"]))

    def face(self, event_id: str, collection: str = DEFAULT_COLLECTION) -> bytes:
        with self.sessions() as session:
            event = session.get(RecognitionEvent, event_id)
            if event is None or event.collection != collection:
                raise NotFound(f"No event with id {event_id}.", {"event_id": event_id})
            if event.face_crop is None:
                raise NotFound("No face was kept with this event (FACESHOT_EVENT_FACES).", {"event_id": event_id})
            return event.face_crop
