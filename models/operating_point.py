"""An operating point, not a distance: the thresholds that keep a gallery's stranger-accept rate at a target.

A stranger is named as someone when *any* of the K enrolled prototypes is within its
threshold. Model (stated in the README, checked by ``faceshot eval-openset --k ...``):
each person's prototype accepts a stranger with the per-person rate p that the
calibration's impostor distribution gives at the threshold, and a gallery of K people
behaves like K_eff = K ** beta independent ones:

    stranger-accept rate of the gallery = 1 - (1 - p) ** K_eff

Plain independence (beta = 1) over-counts: a stranger who looks like one enrolled person
tends to look like others too, so the same strangers pass many people. beta (about 0.94
for dlib at 1 %) is fitted by simulating galleries on the calibration identities
(:func:`models.calibration.fit_gallery_model`). Every person is held to the same p,
p = 1 - (1 - target) ** (1 / K_eff); each shot class gets the distance at which its
impostor distribution reaches p.

The service and the open-set evaluation both call :func:`operating_point`, so what is
measured is what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.calibration import SHOT_CLASSES, Calibration, shot_class

DEFAULT_TARGET_FAR = 0.01
# Below this expected recognition rate the target "names almost nobody": say so, and what helps.
LOW_RECOGNITION = 0.5


@dataclass
class OperatingPoint:
    """Thresholds by shot class for one gallery, the stranger-accept rate they stand for, and what they cost."""

    thresholds: dict[int, float]  # shot class (1, 2, 3 = 3+) -> distance
    stranger_accept_rate: float  # of the whole gallery, under the model above
    per_person_rate: float | None  # p, when every person is held to the same one
    gallery_size: int
    source: str  # "target", "FACESHOT_THRESHOLD", "request", "checkpoint"
    target_far: float | None = None
    expected_recognition: dict[int, float] = field(default_factory=dict)  # own photo within the threshold
    warnings: list[str] = field(default_factory=list)

    def threshold_for(self, n_support: int) -> float:
        return self.thresholds[shot_class(n_support)]


def composition(n_supports) -> dict[int, int]:
    """How many people of a gallery fall in each shot class, from their photo counts."""
    counts = dict.fromkeys(SHOT_CLASSES, 0)
    for n in n_supports:
        counts[shot_class(n)] += 1
    return counts


def effective_size(cal: Calibration, alpha: float, counts: Mapping[int, int]) -> float:
    """K_eff of a gallery: K ** beta, beta the head-count-weighted mean of its shot classes' exponents."""
    k = max(1, sum(counts.values()))
    weights = {s: counts.get(s, 0) for s in SHOT_CLASSES}
    total = sum(weights.values()) or 1
    beta = sum(cal.gallery.exponent(s, alpha) * w for s, w in weights.items()) / total if sum(weights.values()) \
        else cal.gallery.exponent(1, alpha)
    return float(k ** beta)


def _expected_recognition(cal: Calibration, thresholds: Mapping[int, float]) -> dict[int, float]:
    return {s: round(cal.genuine[s].cdf(t), 4) for s, t in thresholds.items()}


def operating_point(cal: Calibration, target_far: float, counts: Mapping[int, int]) -> OperatingPoint:
    """The thresholds that hold a gallery of ``counts`` (people per shot class) to ``target_far``."""
    k = max(1, sum(counts.values()))
    p = 1.0 - (1.0 - target_far) ** (1.0 / effective_size(cal, target_far, counts))
    thresholds = {s: round(cal.impostor[s].quantile(p), 6) for s in SHOT_CLASSES}
    expected = _expected_recognition(cal, thresholds)
    warnings = []
    present = [s for s in SHOT_CLASSES if counts.get(s)] or [1]
    worst = min(present, key=lambda s: expected[s])
    if expected[worst] < LOW_RECOGNITION:
        label = "one photo" if worst == 1 else f"{worst}{'+' if worst == SHOT_CLASSES[-1] else ''} photos"
        warnings.append(
            f"With {k} people enrolled, holding strangers to {target_far:.2%} names only about "
            f"{expected[worst]:.0%} of the photos of people enrolled with {label}. Enroll a second photo per person "
            "(a two-photo prototype is much more distinctive), or accept a higher FACESHOT_TARGET_FAR.")
    if p <= 10 ** (-8.5):
        warnings.append(f"The per-person false-match rate this needs ({p:.1e}) is beyond what the calibration "
                        "resolves; the thresholds are extrapolated.")
    # the gallery's own size is reported (an empty one is 0), though its thresholds are those of a first person
    return OperatingPoint(thresholds, target_far, p, sum(counts.values()), "target", target_far, expected, warnings)


def fixed_operating_point(cal: Calibration | None, thresholds: Mapping[int, float], counts: Mapping[int, int],
                          source: str) -> OperatingPoint:
    """Thresholds someone chose (a setting, a request, an uncalibrated checkpoint), and the rate they stand for."""
    thresholds = {s: float(thresholds[s]) for s in SHOT_CLASSES}
    k = sum(counts.values())
    if cal is None:
        return OperatingPoint(thresholds, float("nan"), None, k, source)
    # each person counts K_eff / K; the exponent at the rate that comes out (one fixed-point step from 1 %)
    keep, rate = 1.0, DEFAULT_TARGET_FAR
    for _ in range(2):
        scale = effective_size(cal, rate, counts) / max(1, k)
        keep = 1.0
        for s in SHOT_CLASSES:
            keep *= (1.0 - cal.impostor[s].cdf(thresholds[s])) ** (counts.get(s, 0) * scale)
        rate = min(max(1.0 - keep, 1e-6), 0.5)
    return OperatingPoint(thresholds, 1.0 - keep, None, k, source,
                          expected_recognition=_expected_recognition(cal, thresholds))


def one_to_one_threshold(cal: Calibration | None, target_far: float, fixed: tuple[float, str] | None = None, *,
                         checkpoint: float | None = None) -> tuple[float, str]:
    """The distance within which two photos are called one person (compare, verify's rule), and where it comes from.

    A pair is one comparison, not a gallery search: the distance at which the one-photo impostor
    distribution reaches ``target_far`` (source ``FACESHOT_TARGET_FAR``). ``fixed`` is a threshold
    someone chose, with its source's name (a request's, ``FACESHOT_THRESHOLD``), and wins; without
    a calibration the encoder's own ``checkpoint`` threshold is all there is. ``faceshot compare``
    and ``POST /compare`` both decide by this, so they cannot disagree.
    """
    if fixed is not None:
        return float(fixed[0]), fixed[1]
    if cal is not None:
        return cal.impostor[1].quantile(target_far), "FACESHOT_TARGET_FAR"
    if checkpoint is None:
        raise ValueError("an uncalibrated encoder needs its checkpoint threshold")
    return float(checkpoint), "encoder checkpoint"


def one_to_one_rate(cal: Calibration | None, n_support: int, threshold: float) -> float | None:
    """The chance that a stranger's photo is within ``threshold`` of one given person's prototype (verify)."""
    return None if cal is None else cal.impostor[shot_class(n_support)].cdf(threshold)
