"""Review of recognition events: a kept face enrolled like any photo, and which support photo pulled a wrong match.

An event's face crop goes through People's own enrollment (the one-face rule, the quality gate, the warnings about
repeats and look-alikes, the audit entry, the prototype and operating point that follow), so a face added from the
camera is an ordinary face of the person, removed like any other. "Not this person" itself is the event log's
(:meth:`app.live.events.EventLog.correct`); here is what an admin needs to act on it: the distance from the event's
kept embedding to each of the person's support faces, nearest first.
"""

from __future__ import annotations

import numpy as np

from app.access.audit import Actor
from app.core.errors import Conflict, ValidationFailed
from app.core.tables import DEFAULT_COLLECTION, RecognitionEvent
from app.gallery.people import EnrollResult, People
from app.live.events import EventLog


class EventReview:
    def __init__(self, events: EventLog, people: People):
        self.events, self.people = events, people

    def _crop(self, event: RecognitionEvent) -> bytes:
        if event.face_crop is None:
            raise Conflict("No face was kept with this event (FACESHOT_EVENT_FACES, and FACESHOT_EVENT_UNKNOWN_FACES "
                           "for unknown faces): there is nothing to enroll.",
                           {"event_id": event.id, "reason": "no_face_kept"})
        return event.face_crop

    def enroll(self, event_id: str, *, person_id: str | None = None, name: str | None = None,
               new_person: bool = False, collection: str = DEFAULT_COLLECTION,
               actor: Actor | None = None) -> EnrollResult:
        """The event's kept face added to ``person_id``, or enrolled as a new person called ``name``: the same
        checks, warnings and refusals as a photo uploaded to POST /people/{id}/faces or /enroll."""
        if (person_id is None) == (name is None):
            raise ValidationFailed("Send `person_id` (add the face to that person) or `name` (enroll a new person), "
                                   "one of them.", {"field": "person_id"})
        event = self.events.get(event_id, collection)
        if person_id is not None:
            self.people.get_person(person_id, collection)  # 404 before the face is run through the pipeline
        prepared = [self.people.prepare(self._crop(event))]
        prepared[0].origin = "camera"  # held to the capture rule (models/calibration.py counted_photos)
        origin = {"event_id": event_id}
        if person_id is not None:
            result = self.people.add_faces(person_id, prepared, collection, actor, origin=origin)
        else:
            result = self.people.enroll(name, prepared, collection=collection, actor=actor, new_person=new_person,
                                        origin=origin)
        result.person = self.people.get_person(result.person.id, None)  # with all of their faces, as answered
        return result

    def support_distances(self, event_id: str, collection: str = DEFAULT_COLLECTION) -> dict:
        """The named person's support faces by distance from the event's kept embedding, nearest first: the ones
        that pulled a wrong match to this person are at the top."""
        event = self.events.get(event_id, collection)
        if event.person_id is None:
            raise Conflict("This event names no enrolled person (unknown, or the person was deleted).",
                           {"event_id": event_id, "reason": "event_unknown"})
        if event.embedding is None:
            raise Conflict("No embedding was kept with this event (FACESHOT_EVENT_FACES).",
                           {"event_id": event_id, "reason": "no_embedding_kept"})
        if event.encoder_hash != self.people.encoder.content_hash:
            raise Conflict("This event's embedding was made by another encoder (before a reembed): it cannot be "
                           "compared.", {"event_id": event_id, "reason": "encoder_mismatch"})
        query = event.vector
        person = self.people.get_person(event.person_id, collection)
        faces = sorted(((float(np.linalg.norm(f.vector - query)), f) for f in person.faces
                        if f.encoder_hash == event.encoder_hash), key=lambda pair: pair[0])
        return {"event_id": event_id, "person": {"id": person.id, "name": person.name},
                "event_distance": event.distance, "corrected": event.corrected_at is not None,
                "faces": [{"face_id": f.id, "distance": round(d, 4), "has_image": f.image_file is not None,
                           "created_at": f.created_at} for d, f in faces]}
