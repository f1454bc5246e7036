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

People whose prototype holds a camera capture (a face added from an event) are held to the same p through their
capture class's own impostor distribution (:data:`models.calibration.CAPTURE_CLASSES`); a calibration without those
distributions holds them to their photo count's threshold and warns that the stated rate does not cover them.

The service and the open-set evaluation both call :func:`operating_point`, so what is
measured is what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models.calibration import CAPTURE_CLASSES, SHOT_CLASSES, Calibration, shot_class

DEFAULT_TARGET_FAR = 0.01
# Below this expected recognition rate the target "names almost nobody": say so, and what helps.
LOW_RECOGNITION = 0.5


@dataclass
class OperatingPoint:
    """Thresholds by shot class for one gallery, the stranger-accept rate they stand for, and what they cost."""

    thresholds: dict[int | str, float]  # shot class (1, 2, 3 = 3+), and capture class where calibrated -> distance
    stranger_accept_rate: float  # of the whole gallery, under the model above
    per_person_rate: float | None  # p, when every person is held to the same one
    gallery_size: int
    source: str  # "target", "FACESHOT_THRESHOLD", "request", "checkpoint"
    target_far: float | None = None
    expected_recognition: dict[int, float] = field(default_factory=dict)  # own photo within the threshold
    warnings: list[str] = field(default_factory=list)

    def threshold_for(self, n_support: int, capture: str | None = None) -> float:
        """The threshold of a prototype of ``n_support`` faces; ``capture``: its capture class, if it has one."""
        if capture is not None and capture in self.thresholds:
            return self.thresholds[capture]
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


def _genuine(cal: Calibration, key: int | str):
    return cal.capture.genuine[key] if isinstance(key, str) else cal.genuine[key]


def _expected_recognition(cal: Calibration, thresholds: Mapping[int | str, float]) -> dict[int | str, float]:
    return {s: round(_genuine(cal, s).cdf(t), 4) for s, t in thresholds.items()}


def operating_point(cal: Calibration, target_far: float, counts: Mapping[int, int], *,
                    captured: int = 0) -> OperatingPoint:
    """The thresholds that hold a gallery of ``counts`` (people per shot class, by their faces) to ``target_far``;
    ``captured``: how many of them hold a camera capture (only a warning when the calibration has no capture
    classes)."""
    k = max(1, sum(counts.values()))
    p = 1.0 - (1.0 - target_far) ** (1.0 / effective_size(cal, target_far, counts))
    thresholds: dict[int | str, float] = {s: round(cal.impostor[s].quantile(p), 6) for s in SHOT_CLASSES}
    if cal.capture is not None:
        thresholds.update({c: round(cal.capture.impostor[c].quantile(p), 6) for c in CAPTURE_CLASSES})
    expected = _expected_recognition(cal, thresholds)
    warnings = []
    if captured and cal.capture is None:
        warnings.append(
            f"{captured} of these people have faces added from camera events, and this encoder's calibration does "
            "not cover such prototypes: strangers seen by the camera may be named more often than stated for them "
            "(bench/calibrate_captures.py measures it).")
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
    thresholds = {s: float(t) for s, t in thresholds.items() if s in SHOT_CLASSES or s in CAPTURE_CLASSES}
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


def one_to_one_rate(cal: Calibration | None, n_support: int, threshold: float,
                    capture: str | None = None) -> float | None:
    """The chance that a stranger's photo is within ``threshold`` of one given person's prototype (verify);
    ``capture``: the prototype's capture class, where the calibration has it."""
    if cal is None:
        return None
    if capture is not None and cal.capture is not None:
        return cal.capture.impostor[capture].cdf(threshold)
    return cal.impostor[shot_class(n_support)].cdf(threshold)
