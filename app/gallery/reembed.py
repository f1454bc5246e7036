"""Re-embedding after an encoder change: every stored face made again from its kept photo, in one transaction.

After an encoder change the service refuses to start on the old embeddings (they would
be silently wrong). Each face is re-made from its stored photo, choosing the same face
by its stored box. A face that cannot be re-made (its photo was not kept, or the face is
no longer found in it) stops the whole change unless ``delete_unrecoverable``, which
removes those faces instead (their people stay, to be enrolled again).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core.tables import Face
from app.gallery import queries
from app.gallery.photo_store import PhotoStore
from app.gallery.sync import GallerySync
from app.inference.runner import Inference, PreparedFace
from models.errors import FaceshotError


def reembed(sync: GallerySync, inference: Inference, photos: PhotoStore, *, delete_unrecoverable: bool = False,
            progress=None) -> dict[str, Any]:
    """What was stale, re-made, deleted, and which faces could not be re-made (with why)."""
    current = sync.encoder_hash
    with sync.sessions() as session:
        stale = queries.stale_faces(session, encoder_hash=current)
    remade: dict[str, PreparedFace] = {}
    unrecoverable: list[dict[str, Any]] = []
    for face_id, person_id, box, image_file in progress(stale) if progress else stale:
        data = photos.read(image_file) if image_file else None
        if data is None:
            unrecoverable.append({"face_id": face_id, "person_id": person_id, "code": "photo_not_kept"})
            continue
        try:
            remade[face_id] = inference.prepare(data, box)
        except FaceshotError as exc:
            unrecoverable.append({"face_id": face_id, "person_id": person_id, "code": exc.code})
    summary: dict[str, Any] = {"encoder": current, "stale": len(stale), "reembedded": 0, "deleted": 0,
                               "unrecoverable": unrecoverable}
    if not stale or (unrecoverable and not delete_unrecoverable):
        return summary
    doomed: list[str] = []

    def work(session):
        for face_id, prepared in remade.items():
            face = session.get(Face, face_id)
            if face is not None:
                face.embedding = np.asarray(prepared.embedding, dtype="<f4").tobytes()
                face.encoder_hash, face.box, face.det_score = current, prepared.box, prepared.det_score
                summary["reembedded"] += 1
        for item in unrecoverable:
            face = session.get(Face, item["face_id"])
            if face is not None:
                if face.image_file:
                    doomed.append(face.image_file)
                session.delete(face)
                summary["deleted"] += 1
        photos.doom(session, doomed)

    sync.write(work, touched={person_id for _, person_id, _, _ in stale})
    photos.remove(doomed)
    return summary
