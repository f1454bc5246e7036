"""The in-process recognizer of ``faceshot watch`` (no ``--server``): this process's pipeline, gallery and event log.

Apart from :mod:`app.live.watch` because it needs the face pipeline (torch); ``watch --server`` does not.
"""

from __future__ import annotations

import numpy as np

from app.core.tables import DEFAULT_COLLECTION
from app.live.events import NewEvent
from app.live.tracking import Observation, quality_score
from app.live.watch import Decision, crop_around


class LocalRecognizer:
    """The pipeline, gallery and event log of this process (a service built on the data directory)."""

    def __init__(self, service, collection: str | None = None):
        self.service, self.collection = service, collection or DEFAULT_COLLECTION
        self.keeps_crops = service.settings.event_faces
        self.encoder_hash = service.pipeline.encoder.content_hash  # the event log keeps the track's embedding
        service.collections.check_collection(self.collection)

    def observe(self, image: np.ndarray, t: float) -> list[Observation]:
        _, faces = self.service.inference.analyze_image(image)
        return [Observation(t, f.face.box.copy(), f.embedding, quality_score(f.face), dict(f.face.quality),
                            crop_around(image, f.face.box) if self.keeps_crops else None) for f in faces]

    def decide(self, embedding: np.ndarray) -> Decision:
        face = self.service.recognition.identify(None, top_k=1, embedding=embedding,
                                                 collection=self.collection).faces[0]
        return Decision(face.person.id if face.person else None, face.person.name if face.person else None,
                        face.distance, face.threshold)

    def record(self, event: NewEvent) -> dict:
        """The event stored, as the API shows it (the same JSON as a server's, for the output)."""
        from app.core.schemas import EventOut
        from app.live.events import event_dict

        event.collection = self.collection
        return EventOut.model_validate(event_dict(self.service.events.record(event))).model_dump(mode="json")
