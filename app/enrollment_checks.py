"""What enrollment warns about before it stores a photo: a face like someone else's, or one already enrolled."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.prototypes import prototype

from .gallery import Gallery
from .inference import PreparedFace


def enrollment_warnings(gallery: Gallery, person_id: str | None, existing: list[np.ndarray],
                        prepared: list[PreparedFace], *, threshold_for: Callable[[int], float],
                        near_duplicate_distance: float) -> list[dict]:
    """Warnings for ``prepared`` joining ``person_id`` (None: a new person) who already has ``existing``."""
    warnings = []
    new = [p.embedding for p in prepared]
    for i, emb in enumerate(new):
        # the person's *other* photos (none for a first photo: then there is no distance to them to report)
        rest = existing + new[:i] + new[i + 1:]
        d_own = float(np.linalg.norm(emb - prototype(np.stack(rest)))) if rest else None
        others = [m for m in gallery.forward(emb, k=2)[0] if m.person_id != person_id]
        if others and others[0].distance < max(d_own or 0.0, threshold_for(others[0].n_support)):
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
