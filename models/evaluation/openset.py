"""The open-set "company" protocol: K people enrolled with S photos, everyone else a stranger.

Per seed: K people are drawn from those with at least ``max(shots) + 1``
photos; each is enrolled with S of their photos (the prototype is the
normalised mean of the support embeddings) and queried with up to 10 of the
others, the same queries for every S. Every person not enrolled contributes
up to two stranger photos. We report

* rank-1: known queries whose nearest prototype is their own person;
* DIR@FAR=x: known queries accepted *and* correctly named at the threshold
  that accepts a fraction x of strangers;
* at the encoder's own threshold: known photos named correctly, strangers
  rejected, and their mean (balanced accuracy).

Photos where no face was found count as wrong when known and as rejected
when strangers (the service would name nobody), and are reported.
Embeddings come in precomputed, so seeds and shot counts cost nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.errors import TrainingError
from models.prototypes import normalise, prototypes

MAX_QUERIES_PER_PERSON = 10
MAX_STRANGER_PHOTOS = 2


@dataclass
class EmbeddedPhotos:
    """Everything evaluation needs about a dataset: per person, per photo, one embedding (zero where no face)."""

    people: dict[str, list[int]]  # person -> indices into embeddings / ok
    embeddings: np.ndarray  # (N, D); rows of failed photos are zero
    ok: np.ndarray  # (N,) bool: a face was found

    def labels(self) -> np.ndarray:
        """(N,) the person of each row: what calibration and fusion measure distances by."""
        labels = np.empty(len(self.ok), dtype=object)
        for person, idx in self.people.items():
            labels[idx] = person
        return labels


def embedded_photos(files_by_person: dict[str, list[str]], vectors: dict[str, np.ndarray | None]) -> EmbeddedPhotos:
    people: dict[str, list[int]] = {}
    rows, ok = [], []
    dim = next((len(v) for v in vectors.values() if v is not None), 0)
    for person in sorted(files_by_person):
        idx = []
        for f in sorted(files_by_person[person]):
            v = vectors.get(f)
            idx.append(len(rows))
            rows.append(np.zeros(dim, np.float32) if v is None else np.asarray(v, np.float32))
            ok.append(v is not None)
        people[person] = idx
    return EmbeddedPhotos(people, np.array(rows, dtype=np.float32).reshape(len(rows), dim), np.array(ok, bool))


@dataclass
class Split:
    known: list[str]
    support: dict[str, list[int]]  # person -> max(shots) photo indices, in order
    queries: list[tuple[int, int]]  # (photo index, label = index into known)
    strangers: list[int]


def make_split(g: EmbeddedPhotos, k: int, max_shots: int, seed: int) -> Split:
    """K enrolled people (those with a further photo to query first; past them, people enrolled without
    one, who still count as gallery members), their support photos and queries, and every other person's
    photos as strangers."""
    rng = np.random.default_rng(seed)
    names = sorted(g.people)
    enrollable = [p for p in names if int(g.ok[g.people[p]].sum()) >= max_shots]
    queried = [p for p in enrollable if len(g.people[p]) >= max_shots + 1]
    if len(enrollable) < k + 1:  # TrainingError is a ValueError: a sweep skips such a K
        raise TrainingError(f"K={k} people enrolled with {max_shots} photo(s) each needs at least {k + 1} people "
                            f"with {max_shots} photo(s) in which a face was found (one more as a stranger); the data "
                            f"has {len(enrollable)}. Give a smaller --k"
                            + (f" (at most {len(enrollable) - 1})" if len(enrollable) > 1 else "")
                            + " or more people.", {"k": k, "people": len(enrollable), "shots": max_shots})
    if len(queried) >= k:
        known = rng.choice(queried, size=k, replace=False).tolist()
    else:
        silent = [p for p in enrollable if p not in set(queried)]
        known = queried + rng.choice(silent, size=k - len(queried), replace=False).tolist()
    known = sorted(known)
    support, queries = {}, []
    for label, person in enumerate(known):
        photos = list(rng.permutation(g.people[person]))
        detected = [i for i in photos if g.ok[i]]
        sup = detected[:max_shots]
        rest = [i for i in photos if i not in sup][:MAX_QUERIES_PER_PERSON]
        support[person] = sup
        queries += [(i, label) for i in rest]
    known_set = set(known)
    strangers = []
    for person in names:
        if person in known_set:
            continue
        photos = rng.permutation(g.people[person])[:MAX_STRANGER_PHOTOS]
        strangers += [int(i) for i in photos]
    return Split(known, support, queries, strangers)


def nearest(
    g: EmbeddedPhotos, split: Split, shots: int, idx: np.ndarray, *, aggregate: str = "prototype",
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(nearest label, distance) for photos ``idx``; distance = inf where no face was found."""
    emb = normalise(g.embeddings) if normalize else g.embeddings
    q = emb[idx]
    if aggregate == "prototype":
        groups = [split.support[p][:shots] for p in split.known]
        # the service's rule (models.prototypes), or plain means for the unnormalised ablation
        protos = prototypes(emb, groups) if normalize else np.stack([emb[i].mean(axis=0) for i in groups])
        d = np.linalg.norm(q[:, None, :] - protos[None, :, :], axis=2)
    elif aggregate == "nearest":  # compare to every support photo, keep the closest per person
        sup = [(lab, i) for lab, p in enumerate(split.known) for i in split.support[p][:shots]]
        labels = np.array([lab for lab, _ in sup])
        ds = np.linalg.norm(q[:, None, :] - emb[[i for _, i in sup]][None, :, :], axis=2)
        d = np.full((len(idx), len(split.known)), np.inf)
        for lab in range(len(split.known)):
            d[:, lab] = ds[:, labels == lab].min(axis=1)
    else:
        raise ValueError(aggregate)
    best = d.argmin(axis=1)
    dist = d[np.arange(len(idx)), best]
    dist[~g.ok[idx]] = np.inf
    return best, dist


def threshold_at_far(stranger_dist: np.ndarray, far: float) -> float:
    """The largest distance threshold that accepts at most ``far`` of the strangers."""
    d = np.sort(stranger_dist)
    allowed = int(np.floor(far * len(d)))
    if allowed == 0:
        return float(np.nextafter(d[0], -np.inf))
    t = d[allowed - 1]
    if allowed < len(d) and d[allowed] <= t:  # ties: step below them
        t = np.nextafter(d[allowed], -np.inf)
    return float(t)


def evaluate_split(
    g: EmbeddedPhotos, split: Split, shots: int, threshold: float, *, aggregate: str = "prototype",
    normalize: bool = True,
) -> dict:
    q_idx = np.array([i for i, _ in split.queries])
    q_lab = np.array([lab for _, lab in split.queries])
    s_idx = np.array(split.strangers)
    q_best, q_dist = nearest(g, split, shots, q_idx, aggregate=aggregate, normalize=normalize)
    _, s_dist = nearest(g, split, shots, s_idx, aggregate=aggregate, normalize=normalize)
    correct = q_best == q_lab
    correct &= np.isfinite(q_dist)
    out = {
        "known_queries": int(len(q_idx)),
        "stranger_queries": int(len(s_idx)),
        "failures_known": int((~g.ok[q_idx]).sum()),
        "failures_strangers": int((~g.ok[s_idx]).sum()),
        "rank1": float(correct.mean()),
    }
    for far in (0.01, 0.1):
        t = threshold_at_far(s_dist, far)
        out[f"dir@far={far:g}"] = float((correct & (q_dist <= t)).mean())
        out[f"threshold@far={far:g}"] = t
    named = float((correct & (q_dist <= threshold)).mean())
    rejected = float((s_dist > threshold).mean())
    out.update(
        known_named=named,
        strangers_rejected=rejected,
        stranger_accept_rate=1.0 - rejected,
        balanced_accuracy=(named + rejected) / 2,
        threshold=float(threshold),
    )
    out["_curve"] = (q_dist, correct, s_dist)
    return out


def run_protocol(
    g: EmbeddedPhotos,
    *,
    k: int = 50,
    shots: tuple[int, ...] = (1, 2),
    seeds: int = 5,
    threshold: float | dict[int, float] | Callable[[int, int], float],
    aggregate: str = "prototype",
    normalize: bool = True,
) -> dict:
    """Per shot count: every seed's figures and their mean and std.

    ``threshold`` may map the shot count to its own threshold (see ``Threshold.by_support``), or be a
    function of (K, S): the service's gallery-aware decision (``models.operating_point``).
    """
    results: dict = {}
    for seed in range(seeds):
        split = make_split(g, k, max(shots), seed)
        for s in shots:
            if callable(threshold):
                t = threshold(k, s)
            else:
                t = threshold[s] if isinstance(threshold, dict) else threshold
            r = evaluate_split(g, split, s, t, aggregate=aggregate, normalize=normalize)
            results.setdefault(s, []).append(r)
    summary = {}
    for s, runs in results.items():
        keys = [key for key in runs[0] if not key.startswith("_")]
        summary[s] = {
            "runs": [{key: r[key] for key in keys} for r in runs],
            "mean": {key: float(np.mean([r[key] for r in runs])) for key in keys},
            "std": {key: float(np.std([r[key] for r in runs])) for key in keys},
            "curves": [r["_curve"] for r in runs],
        }
    return summary


def calibrate_threshold(
    g: EmbeddedPhotos, *, far: float = 0.01, k: int = 50, shots=(1, 2), seeds: int = 5
) -> dict[int, float]:
    """Per shot count, the mean over seeds of the threshold that accepts ``far`` of the strangers."""
    ts: dict[int, list[float]] = {s: [] for s in shots}
    for seed in range(seeds):
        split = make_split(g, k, max(shots), seed)
        s_idx = np.array(split.strangers)
        for s in shots:
            _, s_dist = nearest(g, split, s, s_idx)
            ts[s].append(threshold_at_far(s_dist, far))
    return {s: float(np.mean(v)) for s, v in ts.items()}


def dir_far_curve(q_dist: np.ndarray, correct: np.ndarray, s_dist: np.ndarray, fars: np.ndarray) -> np.ndarray:
    return np.array([(correct & (q_dist <= threshold_at_far(s_dist, f))).mean() for f in fars])
