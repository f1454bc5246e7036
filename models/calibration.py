"""How likely a stranger's face, and an enrolled person's own photo, is to fall within distance d of one prototype.

Per shot count (a prototype of 1, 2, or 3 and more photos) the checkpoint carries two
distributions measured on identities no evaluation reports on:

* impostor: P(distance(stranger photo, someone else's prototype) <= d), from every
  photo against every other identity's prototypes — millions of pairs — with the far
  tail (below what the pairs can resolve) fitted, down to 1e-9;
* genuine: P(distance(a person's photo, their own prototype of other photos) <= d).

Each is stored as quantile knots: distances at log10-spaced probabilities, so turning
a per-person false-match rate into a threshold (and back) is one interpolation.

A prototype that holds a face a camera captured (added from a recognition event) is another kind of prototype: the
capture looks like the camera's strangers as much as like its person, so camera-seen strangers come nearer to it
than the photo-count classes say (counted as a second photo, 1.2-5 % of them were named at a 1 % target). Its
*capture classes* (:data:`CAPTURE_CLASSES`: a badge photo with a capture; captures only) have distributions of their
own, measured against strangers seen through the same simulated cameras (:func:`measure_capture`); a calibration
without them cannot state the rate for such people, and says so (:mod:`models.operating_point`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.errors import TrainingError

SHOT_CLASSES = (1, 2, 3)  # 3 stands for "3 or more photos"
LOG10_P_MIN = -9.0
KNOT_STEP = 0.05  # in log10 p
MIN_TAIL_COUNT = 25  # below this many pairs the empirical quantile is noise: the fitted tail takes over
TAIL_FIT_DECADES = 2.0  # the tail model is fitted on this many decades of p above the empirical limit


def shot_class(n_support: int) -> int:
    """The calibrated class of a prototype made of ``n_support`` photos."""
    return max(1, min(int(n_support), SHOT_CLASSES[-1]))


WITH_CAMERA, CAMERA_ONLY = "with_camera", "camera_only"
CAPTURE_CLASSES = (WITH_CAMERA, CAMERA_ONLY)


def capture_class(n_photos: int, n_captures: int) -> str | None:
    """The capture class of a prototype of ``n_photos`` faces, ``n_captures`` of them captured by a camera (None:
    none were, the photo-count classes hold it)."""
    if n_captures <= 0:
        return None
    return CAMERA_ONLY if n_captures >= n_photos else WITH_CAMERA


@dataclass
class DistanceDistribution:
    """P(distance <= d) as monotone knots (log10 p, d); ``pairs``: how many distances it was measured on."""

    log10_p: list[float]
    distance: list[float]
    pairs: int = 0

    def quantile(self, p: float) -> float:
        """The distance d with P(distance <= d) = p."""
        lp = np.log10(np.clip(p, 10**LOG10_P_MIN, 1.0))
        return float(np.interp(lp, self.log10_p, self.distance))

    def cdf(self, d: float) -> float:
        """P(distance <= d)."""
        if d <= self.distance[0]:
            return 10 ** self.log10_p[0] if d == self.distance[0] else 0.0
        return float(10 ** np.interp(d, self.distance, self.log10_p))

    def measured_down_to(self) -> float:
        """The smallest P(distance <= d) its pairs measure (MIN_TAIL_COUNT of them below d); below, the fitted tail.

        1.0 when the pair count is not recorded (then nothing is known to be measured).
        """
        return min(1.0, MIN_TAIL_COUNT / self.pairs) if self.pairs else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"log10_p": [round(v, 4) for v in self.log10_p], "distance": [round(v, 6) for v in self.distance],
                "pairs": self.pairs}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DistanceDistribution:
        lp, d = [float(v) for v in raw["log10_p"]], [float(v) for v in raw["distance"]]
        if len(lp) != len(d) or len(lp) < 2 or np.any(np.diff(lp) <= 0) or np.any(np.diff(d) < 0):
            raise ValueError("a distance distribution needs matching, increasing log10_p and distance knots")
        return cls(lp, d, int(raw.get("pairs", 0)))


@dataclass
class GalleryModel:
    """How many independent people a gallery of K behaves like, for strangers: K_eff = K ** beta.

    Under independence a stranger passes a gallery of K with 1 - (1 - p)^K. Real strangers
    are not independent across people (one who looks like an enrolled person tends to look
    like others too), so fewer pass: K_eff < K. ``beta`` is fitted per shot class and target
    rate by simulating galleries drawn from the calibration identities (:func:`fit_gallery_model`);
    ``beta = 1`` is plain independence.
    """

    log10_alpha: list[float]  # the targets beta was fitted at
    beta: dict[int, list[float]]  # shot class -> beta at each target
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def exponent(self, shot: int, alpha: float) -> float:
        return float(np.interp(np.log10(alpha), self.log10_alpha, self.beta[shot_class(shot)]))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "effective_gallery_size_power", "log10_alpha": self.log10_alpha,
                "beta": {str(s): b for s, b in self.beta.items()}, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GalleryModel:
        if raw.get("kind") != "effective_gallery_size_power":
            raise ValueError(f"unknown gallery model {raw.get('kind')!r}")
        beta = {int(s): [float(v) for v in b] for s, b in raw["beta"].items()}
        if set(beta) != set(SHOT_CLASSES) or any(len(b) != len(raw["log10_alpha"]) for b in beta.values()):
            raise ValueError("the gallery model needs one beta per target for every shot class")
        return cls([float(v) for v in raw["log10_alpha"]], beta, dict(raw.get("fitted_on", {})))


INDEPENDENT = GalleryModel([-2.0], {s: [1.0] for s in SHOT_CLASSES}, {"kind": "independence"})


@dataclass
class CaptureCalibration:
    """Impostor and genuine distributions per capture class, and the cameras they were measured through."""

    impostor: dict[str, DistanceDistribution]
    genuine: dict[str, DistanceDistribution]
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"impostor": {c: d.to_dict() for c, d in self.impostor.items()},
                "genuine": {c: d.to_dict() for c, d in self.genuine.items()}, "source": self.source}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CaptureCalibration:
        impostor = {c: DistanceDistribution.from_dict(d) for c, d in raw["impostor"].items()}
        genuine = {c: DistanceDistribution.from_dict(d) for c, d in raw["genuine"].items()}
        if set(impostor) != set(CAPTURE_CLASSES) or set(genuine) != set(CAPTURE_CLASSES):
            raise ValueError(f"a capture calibration needs distributions for {CAPTURE_CLASSES}")
        return cls(impostor, genuine, dict(raw.get("source", {})))


@dataclass
class Calibration:
    """The impostor and genuine distributions per shot class, the gallery model, and where they were measured;
    ``capture``: those of prototypes holding camera captures, where they were measured (else None)."""

    impostor: dict[int, DistanceDistribution]
    genuine: dict[int, DistanceDistribution]
    source: dict[str, Any] = field(default_factory=dict)
    gallery: GalleryModel = field(default_factory=lambda: INDEPENDENT)
    capture: CaptureCalibration | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"impostor": {str(s): d.to_dict() for s, d in self.impostor.items()},
               "genuine": {str(s): d.to_dict() for s, d in self.genuine.items()},
               "gallery_model": self.gallery.to_dict(), "source": self.source}
        if self.capture is not None:
            out["capture"] = self.capture.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Calibration:
        impostor = {int(s): DistanceDistribution.from_dict(d) for s, d in raw["impostor"].items()}
        genuine = {int(s): DistanceDistribution.from_dict(d) for s, d in raw["genuine"].items()}
        if set(impostor) != set(SHOT_CLASSES) or set(genuine) != set(SHOT_CLASSES):
            raise ValueError(f"a calibration needs impostor and genuine distributions for shot classes {SHOT_CLASSES}")
        gallery = GalleryModel.from_dict(raw["gallery_model"]) if raw.get("gallery_model") else INDEPENDENT
        capture = CaptureCalibration.from_dict(raw["capture"]) if raw.get("capture") else None
        return cls(impostor, genuine, dict(raw.get("source", {})), gallery, capture)


# -- measuring ------------------------------------------------------------------------------------
def knots_from_samples(samples: np.ndarray, *, fit_tail: bool) -> DistanceDistribution:
    """Quantile knots of measured distances; below ``MIN_TAIL_COUNT`` pairs, a fitted tail (when ``fit_tail``).

    The tail model: in the decades just above the empirical limit, the distance is close
    to linear in log10 p (the lower tail of a distance between unit vectors decays like
    a Gaussian's, whose log-probability is near-linear over a few decades); the line fitted
    there carries the quantiles down to 1e-9, never past distance 0.
    """
    d = np.sort(np.asarray(samples, np.float64))
    n = len(d)
    if n < 2 * MIN_TAIL_COUNT:
        raise TrainingError(f"only {n} distances: too few identities and photos to calibrate on",
                            {"distances": n, "least": 2 * MIN_TAIL_COUNT})
    limit = np.log10(MIN_TAIL_COUNT / n)
    grid = np.round(np.arange(LOG10_P_MIN, 0.0 + KNOT_STEP / 2, KNOT_STEP), 4)
    measured = grid[grid >= limit]
    q = np.quantile(d, 10**measured, method="linear")
    if not fit_tail:
        start = measured
        dist = q
    else:
        window = measured <= limit + TAIL_FIT_DECADES
        slope, intercept = np.polyfit(measured[window], q[window], 1)
        tail_lp = grid[grid < limit]
        tail = np.minimum(np.maximum(slope * tail_lp + intercept, 0.0), q[0])
        start, dist = np.concatenate([tail_lp, measured]), np.concatenate([tail, q])
    dist = np.maximum.accumulate(dist)  # monotone, whatever the noise
    return DistanceDistribution([float(v) for v in start], [float(v) for v in dist], n)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _prototypes(unit: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    return _unit(np.stack([unit[list(g)].mean(axis=0) for g in groups]))


FIT_ALPHAS = (0.003, 0.01, 0.03)
FIT_KS = (10, 20, 50, 100, 200, 400, 700)


def fit_gallery_model(unit: np.ndarray, photo_owner: np.ndarray, impostor: dict[int, DistanceDistribution], *,
                      seed: int = 0, reps: int = 30, alphas=FIT_ALPHAS, ks=FIT_KS, per_person: int = 2) -> GalleryModel:
    """Simulate galleries of K calibration people (S photos each) against the others' photos (``per_person`` each).

    For each target alpha and K: the threshold t_K that lets alpha of the strangers through,
    the per-person rate p = F_S(t_K), and K_eff = log(1 - alpha) / log(1 - p); beta is the
    least-squares slope of log K_eff on log K through the origin, kept in [0.7, 1]. K only
    up to half the calibration people, so that enough strangers remain; shot classes with
    too few people for three sizes take the class below's beta.
    """
    rng = np.random.default_rng(seed)
    people = [np.flatnonzero(photo_owner == o) for o in range(photo_owner.max() + 1)]
    beta: dict[int, list[float]] = {}
    used: dict[str, list[int]] = {}
    for s in SHOT_CLASSES:
        able = [o for o, idx in enumerate(people) if len(idx) >= s]
        sizes = [k for k in ks if k <= len(people) // 2 and k <= len(able)]
        if len(sizes) < 3:
            beta[s] = list(beta[s - 1]) if s > 1 else [1.0] * len(alphas)
            continue
        mins: dict[int, np.ndarray] = {}
        for k in sizes:
            found = []
            for _ in range(reps):
                gallery = rng.choice(able, size=k, replace=False)
                protos = _prototypes(unit, [rng.choice(people[o], size=s, replace=False) for o in gallery])
                strangers = np.concatenate([_per_person(people[o], per_person, rng)
                                            for o in np.setdiff1d(np.arange(len(people)), gallery)])
                cos = unit[strangers] @ protos.T
                found.append(np.sqrt(np.maximum(2.0 - 2.0 * cos.max(axis=1), 0.0)))
            mins[k] = np.concatenate(found)
        per_alpha = []
        for alpha in alphas:
            logk, logkeff = [], []
            for k in sizes:
                p = impostor[s].cdf(float(np.quantile(mins[k], alpha)))
                if 0 < p < 1:
                    logk.append(np.log(k))
                    logkeff.append(np.log(np.log(1 - alpha) / np.log(1 - p)))
            b = float(np.dot(logk, logkeff) / np.dot(logk, logk)) if logk else 1.0
            per_alpha.append(round(min(1.0, max(0.7, b)), 4))
        beta[s] = per_alpha
        used[str(s)] = sizes
    return GalleryModel([round(float(np.log10(a)), 4) for a in alphas], beta,
                        {"reps": reps, "k": used, "seed": seed})


def _per_person(idx: np.ndarray, n: int, rng) -> np.ndarray:
    return idx if len(idx) <= n else rng.choice(idx, size=n, replace=False)


def measure(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0, per_person: int = 2,
            block: int = 1024, gallery_model: bool = True) -> Calibration:
    """Impostor and genuine distributions per shot class from photos of known identity (``labels``).

    Identities count alike, as they do in a gallery and among strangers: at most
    ``per_person`` photos of each person stand in as strangers, and each person gives at
    most ``per_person`` prototypes (otherwise one person with 500 photos would make most of
    the pairs). Impostor pairs: every prototype against every stranger photo of the other
    identities. Genuine pairs: every prototype against its person's other photos (at most
    ``2 * per_person`` of them).
    """
    rng = np.random.default_rng(seed)
    unit = _unit(np.asarray(embeddings, np.float32))
    _, photo_owner = np.unique(np.asarray(labels), return_inverse=True)
    by_person = [np.flatnonzero(photo_owner == o) for o in range(photo_owner.max() + 1)]
    strangers = np.sort(np.concatenate([_per_person(idx, per_person, rng) for idx in by_person]))
    impostor, genuine = {}, {}
    for s in SHOT_CLASSES:
        groups: list[tuple[int, ...]] = []
        owners: list[int] = []
        for person, idx in enumerate(by_person):
            if len(idx) < s:
                continue
            if s == 1:
                picks = {(int(i),) for i in _per_person(idx, per_person, rng)}
            else:
                picks = {tuple(sorted(rng.choice(idx, size=s, replace=False).tolist())) for _ in range(per_person)}
            groups += sorted(picks)
            owners += [person] * len(picks)
        protos = _prototypes(unit, groups)
        owner_of = np.array(owners)
        imp_parts, gen_parts = [], []
        for start in range(0, len(protos), block):
            p = protos[start:start + block]
            dist = np.sqrt(np.maximum(2.0 - 2.0 * (p @ unit[strangers].T), 0.0))
            imp_parts.append(dist[owner_of[start:start + block, None] != photo_owner[strangers][None, :]])
            for row, g in enumerate(groups[start:start + block]):
                rest = np.setdiff1d(by_person[owner_of[start + row]], g)
                if len(rest):
                    rest = _per_person(rest, 2 * per_person, rng)
                    gen_parts.append(np.sqrt(np.maximum(2.0 - 2.0 * (unit[rest] @ p[row]), 0.0)))
        for kind, parts, out in (("impostor", imp_parts, impostor), ("genuine", gen_parts, genuine)):
            try:
                samples = np.concatenate(parts) if parts else np.zeros(0)
                out[s] = knots_from_samples(samples, fit_tail=kind == "impostor")
            except TrainingError as exc:  # say which distribution, and what data would make it
                need = f"people with {s + 1} or more photos" if kind == "genuine" else "people"
                raise TrainingError(
                    f"too few photos to calibrate on: {exc.details['distances']} {kind} distances for {s}-photo "
                    f"prototypes, at least {exc.details['least']} needed. The data has {len(by_person)} people and "
                    f"{len(photo_owner)} photos with a face; calibrate needs more {need} (hundreds of people for "
                    "thresholds worth serving).", {**exc.details, "kind": kind, "shots": s}) from None
    source = {"photos": int(len(photo_owner)), "identities": len(by_person), "seed": seed,
              "per_person": per_person, "stranger_photos": int(len(strangers)),
              "impostor_pairs": {str(s): impostor[s].pairs for s in SHOT_CLASSES},
              "genuine_pairs": {str(s): genuine[s].pairs for s in SHOT_CLASSES}}
    model = (fit_gallery_model(unit, photo_owner, impostor, seed=seed, per_person=per_person) if gallery_model
             else INDEPENDENT)
    return Calibration(impostor, genuine, source, model)


# -- capture classes ---------------------------------------------------------------------------------
def _pointwise(distributions: Sequence[DistanceDistribution], reduce) -> DistanceDistribution:
    """At each probability of their one grid (:func:`knots_from_samples` with its fitted tail), ``reduce`` (np.min,
    np.max) of their distances; monotone again, counting the fewest pairs any of them had."""
    if len({tuple(d.log10_p) for d in distributions}) != 1:
        raise ValueError("combining distance distributions needs them on one grid of probabilities")
    dist = reduce(np.array([d.distance for d in distributions]), axis=0)
    return DistanceDistribution(list(distributions[0].log10_p), [float(v) for v in np.maximum.accumulate(dist)],
                                min(d.pairs for d in distributions))


def worst_case(distributions: Sequence[DistanceDistribution]) -> DistanceDistribution:
    """At each probability, the smallest distance any of ``distributions`` reaches it at: a threshold read from it
    holds every one of them to the rate."""
    return _pointwise(distributions, np.min)


def measure_capture(original: np.ndarray, cameras: Sequence[np.ndarray], labels: np.ndarray, found: np.ndarray, *,
                    camera_names: Sequence[str], seed: int = 0, per_person: int = 2,
                    block: int = 1024) -> CaptureCalibration:
    """The capture classes' distributions, from photos of known identity as they are (``original``) and through
    each of several cameras (``cameras[i]``, row for row; ``found[i]``: a face was found in that copy).

    Per camera and person with two or more photos, up to ``per_person`` prototypes of each class: ``with_camera``
    = one original photo and another photo through the camera; ``camera_only`` = one photo through the camera.
    Impostor pairs: each prototype against up to ``per_person`` photos of every other identity *through the same
    camera* (the strangers at that door); genuine: against the person's other photos through it. A deployment's
    camera is one of them, so each distribution is the worst case over the cameras (:func:`worst_case`): its
    thresholds hold strangers to the rate at each camera measured, at the price of some recognition at the others.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    _, owner = np.unique(labels, return_inverse=True)
    orig_unit = _unit(np.asarray(original, np.float32))
    per_camera: dict[str, dict[str, list[DistanceDistribution]]] = {
        kind: {c: [] for c in CAPTURE_CLASSES} for kind in ("impostor", "genuine")}
    pairs: dict[str, dict[str, int]] = {}
    for cam_i, (cam, seen) in enumerate(zip(cameras, found)):
        cam_unit = _unit(np.asarray(cam, np.float32))
        usable = np.asarray(seen, bool)
        by_person = [np.flatnonzero((owner == o) & usable) for o in range(owner.max() + 1)]
        strangers = np.sort(np.concatenate([_per_person(idx, per_person, rng) for idx in by_person if len(idx)]))
        for cls_name in CAPTURE_CLASSES:
            protos, owners, used = [], [], []
            for person, idx in enumerate(by_person):
                if len(idx) < 2:
                    continue
                for _ in range(per_person):
                    badge, capture = rng.choice(idx, size=2, replace=False)
                    vec = cam_unit[capture] if cls_name == CAMERA_ONLY else orig_unit[badge] + cam_unit[capture]
                    protos.append(vec / max(float(np.linalg.norm(vec)), 1e-12))
                    owners.append(person)
                    used.append((badge, capture) if cls_name == WITH_CAMERA else (capture,))
            protos_arr, owner_of = np.stack(protos), np.array(owners)
            imp_parts, gen_parts = [], []
            for start in range(0, len(protos_arr), block):
                p = protos_arr[start:start + block]
                dist = np.sqrt(np.maximum(2.0 - 2.0 * (p @ cam_unit[strangers].T), 0.0))
                imp_parts.append(dist[owner_of[start:start + block, None] != owner[strangers][None, :]])
                for row in range(len(p)):
                    rest = np.setdiff1d(by_person[owner_of[start + row]], used[start + row])
                    if len(rest):
                        rest = _per_person(rest, 2 * per_person, rng)
                        gen_parts.append(np.sqrt(np.maximum(2.0 - 2.0 * (cam_unit[rest] @ p[row]), 0.0)))
            for kind, parts in (("impostor", imp_parts), ("genuine", gen_parts)):
                per_camera[kind][cls_name].append(knots_from_samples(np.concatenate(parts), fit_tail=True))
            pairs.setdefault(camera_names[cam_i], {})[cls_name] = int(sum(len(x) for x in imp_parts))
    impostor = {c: worst_case(per_camera["impostor"][c]) for c in CAPTURE_CLASSES}
    # recognition is what a deployment can expect at the camera that names the fewest of its people
    genuine = {c: _least_recognition(per_camera["genuine"][c]) for c in CAPTURE_CLASSES}
    source = {"cameras": list(camera_names), "identities": int(owner.max() + 1), "photos": int(len(labels)),
              "seed": seed, "per_person": per_person, "impostor_pairs": pairs, "rule": "worst case over cameras"}
    return CaptureCalibration(impostor, genuine, source)


def _least_recognition(distributions: Sequence[DistanceDistribution]) -> DistanceDistribution:
    """At each probability, the largest distance: the camera whose people's photos are farthest from them."""
    return _pointwise(distributions, np.max)
