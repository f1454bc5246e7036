"""faceshot's decision as CompreFace's ``similarity`` (0..1), for the CompreFace-compatible API.

Why: CompreFace answers a similarity and leaves the decision to its client, who compares it with a threshold of
their own; faceshot decides on the server, with a distance threshold calibrated for the gallery it has (at
FACESHOT_TARGET_FAR, tightening as the gallery grows). A client written for CompreFace keeps comparing with its
default, so the similarity we answer must make that comparison come out as faceshot's decision. The defaults:

- CompreFace: 0.5 ("most correct guesses have a threshold of more than 0.5", docs/Face-Recognition-Similarity-
  Threshold.md in exadel-inc/CompreFace);
- Double Take: a match at ``detect.match.confidence: 60`` (percent), and below ``detect.unknown.confidence: 40``
  the face is named ``unknown`` (api/src/constants/defaults.js in jakowenko/double-take; its CompreFace detector,
  api/src/util/detectors/compreface.js, reads ``confidence = round(similarity * 100, 2)``).

The mapping, with ``d`` the distance and ``t`` the threshold faceshot held the face to (``D`` = 2, the largest
distance between unit embeddings), monotonic (a nearer face never gets a lower similarity) and anchored at ``t``:

- accepted (``d <= t``): ``0.6 + 0.4 * (1 - d / t)``, from 0.6 at the threshold to 1 for the same embedding;
- refused (``d > t``): ``0.39 * (D - d) / (D - t)``, from 0.39 just beyond the threshold to 0 at ``D``.

So every accepted face is at or above both defaults (0.6 >= 0.5), every refused one below both, and also below
Double Take's 40 % for ``unknown`` (0.39 stays under it after its rounding), so Double Take names the face
``unknown`` exactly when faceshot does. No similarity falls in [0.39, 0.6): a client threshold anywhere in it
makes faceshot's decision. A stricter client threshold ``s`` above 0.6 accepts ``d <= t * (1 - (s - 0.6) / 0.4)``
(0.8: half the threshold's distance). Similarities are rounded to 5 decimals, as CompreFace rounds them.
"""

from __future__ import annotations

COMPREFACE_DEFAULT = 0.5  # CompreFace's documented similarity threshold
DOUBLE_TAKE_MATCH = 0.60  # Double Take's default match confidence (60 %)
DOUBLE_TAKE_UNKNOWN = 0.40  # Double Take's default confidence below which a face is named unknown (40 %)

ACCEPT_FLOOR = max(COMPREFACE_DEFAULT, DOUBLE_TAKE_MATCH)  # an accepted face's least similarity
REFUSE_CEILING = 0.39  # a refused face's greatest: under 40 % after Double Take rounds to hundredths of a percent
MAX_DISTANCE = 2.0  # between two unit embeddings


def similarity(distance: float, threshold: float, accepted: bool | None = None) -> float:
    """The similarity CompreFace's clients read as faceshot's decision on a face ``distance`` from the nearest
    prototype, held to ``threshold``. ``accepted``: the decision as the server made it (the distances answered are
    rounded, and must not move a face across the threshold); by default ``distance <= threshold``."""
    if accepted is None:
        accepted = distance <= threshold
    if accepted:
        nearness = 1 - distance / threshold if threshold > 0 else 0.0
        value = ACCEPT_FLOOR + (1 - ACCEPT_FLOOR) * min(1.0, max(0.0, nearness))
    else:
        room = MAX_DISTANCE - threshold
        value = REFUSE_CEILING * min(1.0, max(0.0, (MAX_DISTANCE - distance) / room)) if room > 0 else 0.0
    return round(value, 5)
