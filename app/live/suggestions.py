"""Suggested additions: correctly named events whose face the camera saw unlike the person's enrolled photos.

A support set of one badge photo misses how a camera sees the person (angle, light, resolution). An event that named
the person, that no admin corrected, but only just (its distance in the upper part of the threshold it was decided
on), with a good view of the face, is the capture worth adding: offered here, read-only, never added automatically.
Accepting one is POST /events/{id}/enroll (:class:`app.live.review.EventReview`), which records the event's id in the
audit entry; from then on it is no longer offered, nor is one an admin dismissed (an audit entry too: no table of its
own), nor one whose face is already among the person's (the same capture enrolled another way).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import select

from app.access import audit
from app.access.audit import Actor
from app.core.db import begin_write, get_collection
from app.core.paths import api_base
from app.core.tables import DEFAULT_COLLECTION, AuditEntry, Face, Person, RecognitionEvent, as_utc
from app.live.events import EventLog

# Offered from this share of the event's own threshold up to the threshold itself: with one badge photo, dlib's
# calibration puts the median correct match at 0.67 of the 1% threshold (1 person; 0.75 at 10, 0.85 at 100), and
# the LFW fixtures' second photos at 0.57-0.74: the farther ones are the views the support set covers least.
MIN_DISTANCE_FRACTION = 0.65
# The event's quality score (app.live.tracking.quality_score: size x sharpness x frontal x detector, 0-1), and none
# of the detector's warning hints: the better-seen half of the fixtures' faces (0.3-0.85); a poor view would be
# warned about at enrollment anyway, and a capture is worth adding for the look it adds, not for its blur.
MIN_QUALITY = 0.4
QUALITY_HINTS = ("too_small", "blurry", "low_confidence")
PER_PERSON = 3  # a few per person, the best first: an admin reviews them; more would crowd out everyone else
ENROLLED_FROM = ("face.add", "person.enroll")  # People's audit actions, with the event's id as `event_id`
DISMISSED = "suggestion.dismiss"


@dataclass(frozen=True)
class Suggestion:
    """One event offered as "add to support set"."""

    event_id: str
    person_id: str
    person_name: str
    source: str
    time: datetime
    distance: float
    threshold: float
    quality: float
    face_url: str

    @property
    def score(self) -> float:
        """How much it should add: far (within the threshold) and well seen."""
        return self.distance * self.quality


def good_quality(quality: dict) -> float | None:
    """The event's quality score when it is good enough to suggest the face, else None."""
    score = quality.get("score") if isinstance(quality, dict) else None
    if not isinstance(score, (int, float)) or isinstance(score, bool) or score < MIN_QUALITY:
        return None
    if any(quality.get(hint) is True for hint in QUALITY_HINTS):
        return None
    return float(score)


class Suggestions:
    def __init__(self, events: EventLog):
        self.events, self.settings, self.sessions = events, events.settings, events.sessions

    rule = {"min_distance_fraction": MIN_DISTANCE_FRACTION, "min_quality": MIN_QUALITY, "per_person": PER_PERSON}

    def list(self, collection: str = DEFAULT_COLLECTION, limit: int = 50) -> list[Suggestion]:
        """The events worth adding to their person's support set, best first, at most PER_PERSON per person."""
        encoder = self.events.encoder  # whose embeddings the events kept (None: none kept)
        if encoder is None:
            return []
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.settings.event_retention_days)
        e = RecognitionEvent
        with self.sessions() as session:
            rows = session.execute(
                select(e.id, e.person_id, Person.name, e.source, e.time, e.distance, e.threshold, e.quality,
                       e.embedding)
                .join(Person, Person.id == e.person_id)  # still enrolled, in this collection
                .where(e.collection == collection, Person.collection == collection, e.time >= cutoff,
                       e.corrected_at.is_(None), e.face_crop.is_not(None), e.embedding.is_not(None),
                       e.encoder_hash == encoder.content_hash, e.distance.is_not(None),
                       e.threshold.is_not(None), e.distance <= e.threshold,
                       e.distance >= MIN_DISTANCE_FRACTION * e.threshold)).all()
            if not rows:
                return []
            decided = self._decided(session, collection, cutoff)
            support: dict[str, list[np.ndarray]] = defaultdict(list)
            for person_id, vector in session.execute(
                    select(Face.person_id, Face.embedding).where(Face.person_id.in_({r.person_id for r in rows}),
                                                                 Face.encoder_hash == encoder.content_hash)):
                support[person_id].append(np.frombuffer(vector, dtype="<f4"))
        near = self.settings.near_duplicate_distance  # enrollment's own "almost the same photo"
        base = api_base(collection)
        per_person: dict[str, list[Suggestion]] = defaultdict(list)
        for r in rows:
            quality = good_quality(r.quality)
            if quality is None or r.id in decided:
                continue
            vector = np.frombuffer(r.embedding, dtype="<f4")
            if any(float(np.linalg.norm(vector - s)) < near for s in support[r.person_id]):
                continue  # this capture (or all but) is one of the person's faces already
            per_person[r.person_id].append(Suggestion(
                event_id=r.id, person_id=r.person_id, person_name=r.name, source=r.source, time=as_utc(r.time),
                distance=float(r.distance), threshold=float(r.threshold), quality=quality,
                face_url=f"{base}/events/{r.id}/face"))
        best = [s for group in per_person.values()
                for s in sorted(group, key=lambda s: (-s.score, s.event_id))[:PER_PERSON]]
        return sorted(best, key=lambda s: (-s.score, s.event_id))[:limit]

    @staticmethod
    def _decided(session, collection: str, since: datetime) -> set[str]:
        """Events enrolled from or dismissed (the audit log says which): never offered again."""
        out = set()
        for action, target, details in session.execute(
                select(AuditEntry.action, AuditEntry.target, AuditEntry.details).where(
                    AuditEntry.collection == collection, AuditEntry.time >= since,
                    AuditEntry.action.in_((*ENROLLED_FROM, DISMISSED)))):
            if action == DISMISSED:
                out.add(target)
            elif isinstance(details, dict) and details.get("event_id"):
                out.add(details["event_id"])
        return out

    def dismiss(self, event_id: str, actor: Actor | None, collection: str = DEFAULT_COLLECTION) -> None:
        """Stop offering an event (the face stays with the event); audit-logged once, with who said it."""
        self.events.get(event_id, collection)  # 404 event_not_found
        with begin_write(self.sessions) as session:
            get_collection(session, collection, lock="share")
            done = session.scalar(select(AuditEntry.id).where(
                AuditEntry.collection == collection, AuditEntry.action == DISMISSED, AuditEntry.target == event_id))
            if done is None:
                audit.record(session, actor, DISMISSED, collection=collection, target=event_id)
