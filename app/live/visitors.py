"""Unknown visitors grouped as their events arrive: "Unknown #N — seen M times, at <cameras>, first/last seen".

Each new unknown event whose embedding was kept (FACESHOT_EVENT_FACES and FACESHOT_EVENT_UNKNOWN_FACES) joins a group
in the event's own transaction: this is an event sink (:mod:`app.live.sinks`) whose ``queue`` is the grouping. The
rule is :class:`models.clustering.UnknownClusters`' (the encoder's calibration, FACESHOT_VISITOR_FALSE_MERGE_RATE),
one per collection, restored from the tables at first use. An admin names a group (one new person enrolled from its
best 1-3 faces through People's enrollment, and the group closed), merges two, splits a face off (the two are then
cannot-linked: never merged again), dismisses one (hidden; the same visitor's faces still join it, so it does not
come back as a new group) or deletes one (its events stay in the log, but their kept faces and embeddings go).

Serialised across threads and workers: every change runs in a write transaction (SQLite's ``BEGIN IMMEDIATE``, or a
PostgreSQL transaction-level advisory lock) and writes a new version token per collection; a worker whose copy was
made at another token rebuilds it from the tables (:meth:`UnknownClusters.restore`, nothing decided again). A copy
changed in a transaction that then rolled back carries a token the table never got, so it is rebuilt too.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import numpy as np
from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.access import audit
from app.access.audit import Actor
from app.core.config import Settings
from app.core.db import begin_write, get_collection
from app.core.errors import Conflict, NotFound
from app.core.paths import api_base
from app.core.tables import (
    DEFAULT_COLLECTION,
    RecognitionEvent,
    VisitorCannotLink,
    VisitorGroup,
    VisitorMember,
    VisitorState,
    as_utc,
    new_id,
)
from app.gallery.people import EnrollResult, People
from app.live.sinks import RECORDED
from models.clustering import UnknownClusters
from models.errors import CannotLink, FaceshotError

BEST_FACES = 3  # a group is named from (and shown by) its best faces, at most this many
ADVISORY_LOCK = 0x76697369  # PostgreSQL: one transaction at a time changes the groups ("visi")


def _quality(quality: dict | None) -> float:
    """One number per face for picking a group's best: the watcher's track score."""
    value = (quality or {}).get("score")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class VisitorGroups:
    def __init__(self, settings: Settings, sessions: sessionmaker, people: People):
        self.settings, self.sessions, self.people = settings, sessions, people
        self.encoder = people.encoder
        self._mutex = threading.RLock()  # taken after the database's write lock, never before
        self._copies: dict[str, tuple[str, UnknownClusters]] = {}  # collection -> (version token, its groups)

    @property
    def enabled(self) -> bool:
        """Grouping needs the encoder's calibration (the merge rule is derived from it)."""
        return self.encoder.calibration is not None

    # -- the event sink ------------------------------------------------------------------------
    def queue(self, session: Session, event: RecognitionEvent, kind: str = RECORDED) -> None:
        """A new unknown event with a kept embedding of this encoder joins a group, in the event's transaction."""
        if (kind != RECORDED or event.person_id is not None or event.embedding is None or not self.enabled
                or event.encoder_hash != self.encoder.content_hash):
            return
        self._lock(session)
        state = self._state(session, event.collection, create=True)
        with self._mutex:
            clusters = self._clusters(session, state)
            try:
                placement = clusters.add(event.id, event.vector, _quality(event.quality))
                final = clusters.cluster_of(event.id)
                if placement.new:
                    session.add(VisitorGroup(collection=event.collection, number=placement.cluster, status="active"))
                    state.next_number = max(state.next_number, placement.cluster + 1)
                session.add(VisitorMember(event_id=event.id, collection=event.collection, number=placement.cluster))
                session.flush()
                for other in placement.merged:  # groups the grown one absorbed (it may itself have been absorbed)
                    self._merge_rows(session, event.collection, final, other)
                self._changed(state, clusters)
            except BaseException:
                self._copies.pop(event.collection, None)
                raise

    def forget(self, session: Session, events: Select, collection: str | None = None) -> None:
        """Deleted events leave their groups (a group left empty goes); a deleted collection's groups all go."""
        self._lock(session)
        if collection is not None:
            for table in (VisitorMember, VisitorCannotLink, VisitorGroup, VisitorState):
                session.execute(delete(table).where(table.collection == collection))
            with self._mutex:
                self._copies.pop(collection, None)
            return
        doomed = session.execute(select(VisitorMember.collection, VisitorMember.number)
                                 .where(VisitorMember.event_id.in_(events)).distinct()).all()
        if not doomed:
            return
        session.execute(delete(VisitorMember).where(VisitorMember.event_id.in_(events)))
        by_collection: dict[str, set[int]] = defaultdict(set)
        for c, number in doomed:
            by_collection[c].add(number)
        for c, numbers in by_collection.items():
            left = set(session.scalars(select(VisitorMember.number).where(
                VisitorMember.collection == c, VisitorMember.number.in_(numbers)).distinct()))
            self._drop_groups(session, c, numbers - left)
            state = self._state(session, c)
            if state is not None:
                state.version = new_id()  # every worker's copy (this one's too) is rebuilt at its next use

    def start(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        pass

    # -- reading -------------------------------------------------------------------------------
    def list(self, collection: str = DEFAULT_COLLECTION, status: str | None = "active") -> list[dict]:
        """The collection's groups, most recently seen first: how often, where, when, and their best faces."""
        with self.sessions() as session:
            q = select(VisitorGroup).where(VisitorGroup.collection == collection)
            groups = session.scalars(q.where(VisitorGroup.status == status) if status else q).all()
            if not groups:
                return []
            numbers = [g.number for g in groups]
            joined = (select(VisitorMember.number, RecognitionEvent.source, RecognitionEvent.time,
                             RecognitionEvent.id)
                      .join(RecognitionEvent, RecognitionEvent.id == VisitorMember.event_id)
                      .where(VisitorMember.collection == collection, VisitorMember.number.in_(numbers)))
            seen: dict[int, list] = defaultdict(list)
            for number, source, when, event_id in session.execute(joined):
                seen[number].append((as_utc(when), source, event_id))
            links = session.execute(select(VisitorCannotLink.a, VisitorCannotLink.b).where(
                VisitorCannotLink.collection == collection)).all()
            state = self._state(session, collection)
            with self._mutex:
                clusters = self._clusters(session, state) if state is not None and self.enabled else None
                best = {n: [str(f) for f in clusters.best_faces(n, BEST_FACES)] if clusters and n in clusters
                        else [] for n in numbers}
        apart: dict[int, list[int]] = defaultdict(list)
        for a, b in links:
            apart[a].append(b)
            apart[b].append(a)
        rows = []
        for g in groups:
            events = sorted(seen.get(g.number, []))
            if not events:
                continue
            cameras = sorted({source for _, source, _ in events})
            best_ids = best[g.number] or [e for _, _, e in events[-BEST_FACES:]]
            rows.append({"id": g.number, "label": f"Unknown #{g.number}", "status": g.status, "seen": len(events),
                         "cameras": cameras, "first_seen": events[0][0], "last_seen": events[-1][0],
                         "best_event_ids": best_ids,
                         "best_face_urls": [f"{api_base(collection)}/events/{e}/face" for e in best_ids],
                         "cannot_link": sorted(apart.get(g.number, []))})
        return sorted(rows, key=lambda r: (r["last_seen"], r["id"]), reverse=True)

    def get(self, number: int, collection: str = DEFAULT_COLLECTION) -> dict:
        for row in self.list(collection, status=None):
            if row["id"] == number:
                return row
        raise self._not_found(number)

    # -- what an admin does --------------------------------------------------------------------
    def name(self, number: int, name: str, collection: str = DEFAULT_COLLECTION, actor: Actor | None = None, *,
             new_person: bool = False) -> tuple[EnrollResult, list[str]]:
        """One new person enrolled from the group's best 1-3 kept faces (People's enrollment: the one-face rule, the
        quality gate, the warnings, person_exists), and the group closed. Returns the enrollment and the events used."""
        group = self.get(number, collection)
        with self.sessions() as session:
            crops = dict(session.execute(select(RecognitionEvent.id, RecognitionEvent.face_crop).where(
                RecognitionEvent.id.in_(group["best_event_ids"]), RecognitionEvent.face_crop.is_not(None))).all())
        prepared, used, refusal = [], [], None
        for event_id in group["best_event_ids"]:
            if event_id not in crops:
                continue
            try:
                prepared.append(self.people.prepare(crops[event_id]))
                prepared[-1].origin = "camera"
                used.append(event_id)
            except FaceshotError as exc:  # a crop the gate refuses: the others may still do
                refusal = refusal or exc
        if not prepared:
            if refusal is not None:
                raise refusal
            raise Conflict("No face was kept with this group's events: there is nothing to enroll.",
                           {"visitor": number, "reason": "no_face_kept"})
        result = self.people.enroll(name, prepared, collection=collection, actor=actor, new_person=new_person,
                                    origin={"visitor": number, "event_ids": used})

        def close(session, state, clusters):
            if number in clusters:
                clusters.remove_cluster(number)
            self._drop_groups(session, collection, {number}, members=True)
            audit.record(session, actor, "visitor.name", collection=collection, target=result.person.id,
                         details={"visitor": number, "name": result.person.name, "events": group["seen"]})

        self._change(collection, number, close, must_exist=False)
        result.person = self.people.get_person(result.person.id, None)
        return result, used

    def merge(self, number: int, other: int, collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> dict:
        """``other``'s faces into group ``number`` (the same person); 409 ``cannot_link`` where an admin said they
        are different people."""
        if other == number:
            return self.get(number, collection)

        def work(session, state, clusters):
            if session.get(VisitorGroup, (collection, other)) is None:
                raise self._not_found(other)
            a, b = sorted((number, other))
            if session.get(VisitorCannotLink, (collection, a, b)) is not None:
                raise CannotLink(f"Unknown #{number} and Unknown #{other} were said to be different people.",
                                 {"visitors": [number, other], "reason": "cannot_link"})
            if number in clusters and other in clusters:
                clusters.merge(number, other)
            self._merge_rows(session, collection, number, other)
            audit.record(session, actor, "visitor.merge", collection=collection, target=str(number),
                         details={"visitor": number, "other": other})

        self._change(collection, number, work)
        return self.get(number, collection)

    def split(self, number: int, event_id: str, collection: str = DEFAULT_COLLECTION,
              actor: Actor | None = None) -> dict:
        """The event's face into a group of its own, cannot-linked with the one it left; returns the new group."""
        made: list[int] = []

        def work(session, state, clusters):
            member = session.get(VisitorMember, event_id)
            if member is None or member.collection != collection or member.number != number:
                raise NotFound(f"Event {event_id} is not in Unknown #{number}.",
                               {"event_id": event_id, "visitor": number, "reason": "not_a_member"})
            if session.scalar(select(func.count()).select_from(VisitorMember).where(
                    VisitorMember.collection == collection, VisitorMember.number == number)) < 2:
                raise Conflict("This is the group's only face: there is nothing to split it from.",
                               {"event_id": event_id, "visitor": number, "reason": "only_face"})
            try:
                new = clusters.split_off(event_id)
            except KeyError:
                raise Conflict("This event's embedding was made by another encoder (before a reembed).",
                               {"event_id": event_id, "reason": "encoder_mismatch"}) from None
            if new == number:  # the group's only face of this encoder (the others are from before a reembed)
                raise Conflict("This is the group's only face: there is nothing to split it from.",
                               {"event_id": event_id, "visitor": number, "reason": "only_face"})
            session.add(VisitorGroup(collection=collection, number=new, status="active"))
            state.next_number = max(state.next_number, new + 1)
            member.number = new
            session.add(VisitorCannotLink(collection=collection, a=min(new, number), b=max(new, number)))
            audit.record(session, actor, "visitor.split", collection=collection, target=str(number),
                         details={"visitor": number, "event_id": event_id, "new_visitor": new})
            made.append(new)

        self._change(collection, number, work)
        return self.get(made[0], collection)

    def dismiss(self, number: int, collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> dict:
        """Hidden from the list (``status`` dismissed); the visitor's next faces still join it, out of sight."""
        def work(session, state, clusters):
            session.get(VisitorGroup, (collection, number)).status = "dismissed"
            audit.record(session, actor, "visitor.dismiss", collection=collection, target=str(number),
                         details={"visitor": number})

        self._change(collection, number, work)
        return self.get(number, collection)

    def delete(self, number: int, collection: str = DEFAULT_COLLECTION, actor: Actor | None = None) -> dict:
        """The group goes, and its events' kept faces and embeddings with it (the events stay in the log, as unknown
        passings with nothing biometric left); returns how many events lost their face."""
        counted: list[int] = []

        def work(session, state, clusters):
            if number in clusters:
                clusters.remove_cluster(number)
            members = select(VisitorMember.event_id).where(VisitorMember.collection == collection,
                                                           VisitorMember.number == number)
            dropped = session.execute(update(RecognitionEvent).where(RecognitionEvent.id.in_(members)).values(
                face_crop=None, embedding=None, encoder_hash=None)).rowcount or 0
            self._drop_groups(session, collection, {number}, members=True)
            audit.record(session, actor, "visitor.delete", collection=collection, target=str(number),
                         details={"visitor": number, "events": dropped})
            counted.append(dropped)

        self._change(collection, number, work)
        return {"id": number, "events": counted[0]}

    # -- state -----------------------------------------------------------------------------------
    def _change(self, collection: str, number: int, work, must_exist: bool = True) -> None:
        """``work(session, state, clusters)`` on the group ``number``, in a write transaction holding the lock."""
        with begin_write(self.sessions) as session:
            get_collection(session, collection, lock="share")
            self._lock(session)
            state = self._state(session, collection)
            if state is None or session.get(VisitorGroup, (collection, number)) is None:
                if not must_exist:
                    return
                raise self._not_found(number)
            with self._mutex:
                clusters = self._clusters(session, state)
                try:
                    work(session, state, clusters)
                    session.flush()
                    self._changed(state, clusters)
                except BaseException:
                    self._copies.pop(collection, None)
                    raise

    @staticmethod
    def _not_found(number: int) -> NotFound:
        return NotFound(f"No unknown visitor #{number}.", {"visitor": number, "reason": "visitor_not_found"})

    @staticmethod
    def _lock(session: Session) -> None:
        """PostgreSQL: one transaction changes the groups at a time (SQLite's write transaction already is one)."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})

    @staticmethod
    def _state(session: Session, collection: str, create: bool = False) -> VisitorState | None:
        state = session.get(VisitorState, collection, populate_existing=True)
        if state is None and create:
            state = VisitorState(collection=collection, version=new_id(), next_number=1)
            session.add(state)
            session.flush()
        return state

    def _clusters(self, session: Session, state: VisitorState) -> UnknownClusters:
        """This worker's copy of the collection's groups, rebuilt from the tables when they moved on (mutex held)."""
        copy = self._copies.get(state.collection)
        if copy is not None and copy[0] == state.version:
            return copy[1]
        rows = session.execute(
            select(VisitorMember.event_id, RecognitionEvent.embedding, RecognitionEvent.quality, VisitorMember.number)
            .join(RecognitionEvent, RecognitionEvent.id == VisitorMember.event_id)
            .where(VisitorMember.collection == state.collection, RecognitionEvent.embedding.is_not(None),
                   RecognitionEvent.encoder_hash == self.encoder.content_hash)
            .order_by(RecognitionEvent.time, RecognitionEvent.id)).all()
        faces = [(event_id, np.frombuffer(blob, dtype="<f4"), _quality(q), number)
                 for event_id, blob, q, number in rows]
        held = {f[3] for f in faces}
        links = [(a, b) for a, b in session.execute(select(VisitorCannotLink.a, VisitorCannotLink.b).where(
            VisitorCannotLink.collection == state.collection)) if a in held and b in held]
        # numbers are never reused: a new group gets one past every number given so far, in any worker
        clusters = UnknownClusters.restore(self.encoder.calibration, self.encoder.metadata.embedding_size, faces,
                                           links, next_id=state.next_number,
                                           false_merge_rate=self.settings.visitor_false_merge_rate)
        self._copies[state.collection] = (state.version, clusters)
        return clusters

    def _changed(self, state: VisitorState, clusters: UnknownClusters) -> None:
        state.version = new_id()
        self._copies[state.collection] = (state.version, clusters)

    @staticmethod
    def _merge_rows(session: Session, collection: str, keep: int, other: int) -> None:
        """The tables' side of a merge: members moved, cannot-links carried to ``keep``, ``other`` deleted."""
        session.execute(update(VisitorMember).where(VisitorMember.collection == collection,
                                                    VisitorMember.number == other).values(number=keep))
        mine = VisitorCannotLink.collection == collection
        links = session.execute(select(VisitorCannotLink.a, VisitorCannotLink.b).where(
            mine, (VisitorCannotLink.a == other) | (VisitorCannotLink.b == other))).all()
        session.execute(delete(VisitorCannotLink).where(
            mine, (VisitorCannotLink.a == other) | (VisitorCannotLink.b == other)))
        for a, b in links:
            partner = b if a == other else a
            if partner != keep and session.get(VisitorCannotLink, (collection, *sorted((keep, partner)))) is None:
                session.add(VisitorCannotLink(collection=collection, a=min(keep, partner), b=max(keep, partner)))
        session.execute(delete(VisitorGroup).where(VisitorGroup.collection == collection,
                                                   VisitorGroup.number == other))
        session.flush()

    @staticmethod
    def _drop_groups(session: Session, collection: str, numbers: set[int], members: bool = False) -> None:
        if not numbers:
            return
        if members:
            session.execute(delete(VisitorMember).where(VisitorMember.collection == collection,
                                                        VisitorMember.number.in_(numbers)))
        mine = VisitorCannotLink.collection == collection
        session.execute(delete(VisitorCannotLink).where(
            mine, VisitorCannotLink.a.in_(numbers) | VisitorCannotLink.b.in_(numbers)))
        session.execute(delete(VisitorGroup).where(VisitorGroup.collection == collection,
                                                   VisitorGroup.number.in_(numbers)))
