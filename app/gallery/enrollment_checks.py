"""What enrollment warns about before it stores a photo: a face like someone else's, or one already enrolled."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.gallery.index import Gallery
from app.inference.runner import PreparedFace
from models.prototypes import prototype

# The photo hints the admin page shows before saving (models.detection.quality_hints), as enrollment warnings.
QUALITY_WARNINGS = (
    ("too_small", "face_too_small", "The face is small ({face_size:.0f} px); a closer photo works better."),
    ("blurry", "face_blurry", "The face looks blurry; a sharper photo works better."),
    ("low_confidence", "low_detection_confidence",
     "The detector is not sure this is a face (poor light, turned away?)."),
)


def quality_warnings(prepared: list[PreparedFace]) -> list[dict]:
    """What the detector's hints say of each photo (none for faces sent as embeddings: no photo to judge)."""
    return [{"code": code, "image_index": i, "message": text.format(face_size=p.quality.get("face_size", 0.0)),
             "quality": {k: p.quality[k] for k in ("face_size", "sharpness") if k in p.quality}}
            for i, p in enumerate(prepared) for flag, code, text in QUALITY_WARNINGS if p.quality.get(flag)]


def enrollment_warnings(gallery: Gallery, person_id: str | None, existing: list[np.ndarray],
                        prepared: list[PreparedFace], *, threshold_for: Callable[..., float],
                        near_duplicate_distance: float,
                        support_of: Callable[[str], list[np.ndarray]]) -> list[dict]:
    """Warnings for ``prepared`` joining ``person_id`` (None: a new person) who already has ``existing``;
    ``support_of(person_id)`` reads another person's enrolled embeddings (to tell a repeated photo from a
    look-alike)."""
    warnings = quality_warnings(prepared)
    new = [p.embedding for p in prepared]
    for i, emb in enumerate(new):
        # the person's *other* photos (none for a first photo: then there is no distance to them to report)
        rest = existing + new[:i] + new[i + 1:]
        d_own = float(np.linalg.norm(emb - prototype(np.stack(rest)))) if rest else None
        others = [m for m in gallery.forward(emb, k=2)[0] if m.person_id != person_id]
        nearest = others[0] if others else None
        if nearest and nearest.distance < max(d_own or 0.0, threshold_for(nearest.n_support, nearest.capture)):
            repeat = min((float(np.linalg.norm(emb - s)) for s in support_of(others[0].person_id)), default=2.0)
            if repeat < near_duplicate_distance:  # the same photo (or all but), not merely a similar face
                warnings.append({
                    "code": "duplicate_photo", "image_index": i,
                    "message": f"This photo (or one almost identical) is already enrolled as {others[0].name}.",
                    "person": {"id": others[0].person_id, "name": others[0].name}, "distance": round(repeat, 4),
                })
                continue
            warning = {
                "code": "looks_like_other_person", "image_index": i,
                "message": f"This photo is closer to {others[0].name} than a different person should be.",
                "person": {"id": others[0].person_id, "name": others[0].name},
                "distance": round(others[0].distance, 4),
            }
            if d_own is not None:
                warning["distance_to_own"] = round(d_own, 4)
            warnings.append(warning)
        for other in existing + new[:i]:
            d = float(np.linalg.norm(emb - other))
            if d < near_duplicate_distance:
                warnings.append({
                    "code": "near_duplicate", "image_index": i,
                    "message": "This photo is almost identical to one already enrolled; a different photo adds more.",
                    "distance": round(d, 4),
                })
                break
    return warnings
