"""The threshold policy, defined once: which distance names a face, for a gallery search and for one comparison.

A request's ``threshold`` or FACESHOT_THRESHOLD fixes one distance (and says what rate it stands for); otherwise a
gallery is held to FACESHOT_TARGET_FAR at its own size (recomputed when its composition changes), and one
comparison to FACESHOT_TARGET_FAR per comparison; an encoder without distance distributions falls back to its
checkpoint's fixed thresholds. A request that may not loosen them (a recognition key's) only tightens.
"""

from __future__ import annotations

from app.core.config import Settings
from app.core.tables import DEFAULT_COLLECTION
from app.gallery.index import Galleries
from models.calibration import SHOT_CLASSES
from models.encoders.encoder import Encoder
from models.operating_point import OperatingPoint, fixed_operating_point, one_to_one_threshold, operating_point


class Thresholds:
    def __init__(self, settings: Settings, encoder: Encoder, galleries: Galleries):
        self.settings, self.encoder, self.galleries = settings, encoder, galleries
        # per collection: (its gallery's composition, the operating point it gives)
        self._operating: dict[str, tuple[tuple, OperatingPoint]] = {}

    def operating_point(self, override: float | None = None, collection: str = DEFAULT_COLLECTION, *,
                        loosen: bool = True) -> OperatingPoint:
        """The thresholds a search of ``collection``'s gallery is held to now, and the stranger-accept rate they stand
        for at its size. ``loosen=False`` lets ``override`` only tighten them: threshold=2 would name everyone."""
        gallery = self.galleries.get(collection)
        counts, captured = gallery.composition(), gallery.captured()
        cal = self.encoder.calibration
        if override is not None:
            if not loosen:
                usual = self.operating_point(None, collection).thresholds
                return fixed_operating_point(cal, {s: min(override, t) for s, t in usual.items()}, counts, "request")
            return fixed_operating_point(cal, dict.fromkeys(SHOT_CLASSES, override), counts, "request")
        if self.settings.threshold is not None:
            return fixed_operating_point(cal, dict.fromkeys(SHOT_CLASSES, self.settings.threshold), counts,
                                         "FACESHOT_THRESHOLD")
        if cal is None:
            fixed = {s: self.encoder.threshold_for(s) for s in SHOT_CLASSES}
            return fixed_operating_point(None, fixed, counts, "encoder checkpoint")
        key = (*(counts[s] for s in SHOT_CLASSES), captured)
        cached = self._operating.get(collection)
        if cached is None or cached[0] != key:
            cached = self._operating[collection] = (
                key, operating_point(cal, self.settings.target_far, counts, captured=captured))
        return cached[1]

    def threshold_for(self, n_support: int, override: float | None = None,
                      collection: str = DEFAULT_COLLECTION, *, loosen: bool = True,
                      capture: str | None = None) -> float:
        """The threshold a person with ``n_support`` photos (``capture``: their capture class) is held to now (in
        their collection's gallery)."""
        return self.operating_point(override, collection, loosen=loosen).threshold_for(n_support, capture)

    def one_to_one(self, override: float | None = None) -> tuple[float, str]:
        """The distance within which two faces are called one person (compare; `faceshot compare` too), and where
        it comes from: a pair is one comparison, not a gallery search."""
        fixed = ((override, "request") if override is not None
                 else (self.settings.threshold, "FACESHOT_THRESHOLD") if self.settings.threshold is not None else None)
        return one_to_one_threshold(self.encoder.calibration, self.settings.target_far, fixed,
                                    checkpoint=self.encoder.threshold_for(1))

    def forget(self, collection: str) -> None:
        """A deleted collection's operating point."""
        self._operating.pop(collection, None)
