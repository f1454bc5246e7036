"""Unknown visitors grouped as their faces arrive: each new face joins one group or starts its own.

A group is treated as a person enrolled with its faces: its prototype is the one prototype rule
(:mod:`models.prototypes`) over its members, and a face joins when it passes the test the
service's gallery puts a stranger to. The rule, for a new face x and a group C of n faces:

* **prototype**: x is within the threshold of C's prototype for n photos, from the gallery-aware
  operating point (:func:`models.operating_point.operating_point`) with the groups as the gallery
  and ``false_merge_rate`` as its target: a face of someone no group holds joins *some* group with
  that probability, whatever the number of groups (the same 1 - (1 - p)^K_eff model, fitted on the
  calibration identities), so the bar tightens as groups accumulate;
* **and a majority of members**: x is within the one-photo threshold (the same per-pair rate p) of
  at least half of C's faces. The calibration measures prototypes of up to 3 photos; a large
  group's prototype sits nearer the centre of everyone and draws strangers more often than the
  3-photo class says, and a group grown by one wrong join would otherwise pull in more of the
  wrong person. Two people in one group is the costly error (every pair across them is wrong,
  and naming the group enrolls a mixed person), so the rule buys precision with recall: a person
  split over two groups costs an admin one merge.

The nearest passing group (prototype distance) wins. After a join, the grown group absorbs
another whose every face now passes the rule against it (``auto_merge``; the smaller group's
faces are put to the larger one), never across a cannot-link. Groups an admin said are different
people (a split, a "not the same" decision, one of them named) are cannot-linked: no merge, automatic
or asked for, joins them, and the link follows a group through its merges.

What it reaches (bench/cluster_unknowns.py, dlib, people no calibration saw, at the default 1 %):
pairwise precision 0.994-0.998 from 100 to 10,000 events of LFW-like photos, and about 0.5 % of
new visitors put into a group (under the 1 % stated); recall falls with the number of groups, as
the bar tightens (0.96 at 100 events, 0.79 at 1,000, 0.25 at 10,000 with camera-degraded copies).
On photos unlike the calibration's (CelebA's 89x109 crops) strangers come closer than it says and
precision drops below 0.99 at 10,000 events: the rate holds only where the calibration does.

Scale: the prototypes sit in one (capacity, D) float32 array with their sizes beside it, so a
face costs one matrix-vector product over the groups (numpy; exact, no index to keep in step,
removals are a swap with the last row) plus the member check on the few groups within threshold:
on one core, 0.17 ms a face among 1,000 groups of 128-d, 0.32 ms among 10,000, 0.9 ms among 30,000.
An exact FAISS flat index would do the same arithmetic and need its ids kept in step on every
merge and removal; FAISS pays off with approximate indexes, far beyond the groups a camera makes.

The order of arrival matters (as in any online clustering): what is guaranteed is that every
group's prototype equals the prototype rule over its current members (joins update a float64 sum,
removals recompute it) and that :meth:`UnknownClusters.restore` rebuilds exactly the state the
faces' stored assignments describe, without deciding anything again.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from models.calibration import SHOT_CLASSES, Calibration, shot_class
from models.errors import CannotLink
from models.operating_point import operating_point
from models.prototypes import normalise

DEFAULT_FALSE_MERGE_RATE = 0.01  # the service's own default stranger-accept target (FACESHOT_TARGET_FAR)
MEMBER_AGREEMENT = 0.5  # of a group's faces x must be within the one-photo threshold of (the majority rule)


@dataclass(frozen=True)
class Placement:
    """Where :meth:`UnknownClusters.add` put a face: ``cluster``; ``new`` when it started the group; the prototype
    distance and threshold it joined by (None for a new group); ``merged``: groups absorbed into it afterwards."""

    face: Hashable
    cluster: int
    new: bool
    distance: float | None = None
    threshold: float | None = None
    merged: tuple[int, ...] = ()


class _Group:
    __slots__ = ("rows", "total")

    def __init__(self, dim: int):
        self.rows: list[int] = []
        self.total = np.zeros(dim, np.float64)  # sum of the unit members: the prototype's direction


class UnknownClusters:
    """Faces of people no gallery knows, grouped incrementally (module docstring: the rule and what it costs).

    ``calibration``: the encoder's distance distributions; ``false_merge_rate``: the chance that a face of
    someone no group holds joins one of the groups; ``member_agreement``: the share of a group's faces a
    new face must be within the one-photo threshold of (0 keeps the prototype test alone).
    """

    def __init__(self, calibration: Calibration, dim: int, *, false_merge_rate: float = DEFAULT_FALSE_MERGE_RATE,
                 member_agreement: float = MEMBER_AGREEMENT, auto_merge: bool = True):
        if not 0.0 < false_merge_rate < 1.0:
            raise ValueError("false_merge_rate is a probability between 0 and 1")
        self.calibration, self.dim = calibration, dim
        self.false_merge_rate, self.member_agreement, self.auto_merge = false_merge_rate, member_agreement, auto_merge
        # faces: one row each in growable arrays; a removed face's row is left unused
        self._emb = np.zeros((64, dim), np.float32)
        self._quality = np.zeros(64, np.float64)
        self._face_ids: list[Hashable] = []
        self._row_of: dict[Hashable, int] = {}
        self._group_of_row: dict[int, int] = {}
        # groups: prototypes in slots 0..n-1 of one array, sizes beside them
        self._groups: dict[int, _Group] = {}
        self._protos = np.zeros((64, dim), np.float32)
        self._sizes = np.zeros(64, np.int64)
        self._slot_cluster: list[int] = []
        self._slot_of: dict[int, int] = {}
        self._cannot: dict[int, set[int]] = {}
        self._next_id = 1
        self._class_counts = dict.fromkeys(SHOT_CLASSES, 0)
        self._thresholds: dict[int, float] | None = None

    # -- reading -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, cluster: int) -> bool:
        return cluster in self._groups

    def clusters(self) -> list[int]:
        return list(self._groups)

    def members(self, cluster: int) -> list[Hashable]:
        return [self._face_ids[r] for r in self._groups[cluster].rows]

    def cluster_of(self, face: Hashable) -> int:
        return self._group_of_row[self._row_of[face]]

    def prototype(self, cluster: int) -> np.ndarray:
        return self._protos[self._slot_of[cluster]].copy()

    def cannot_links(self, cluster: int) -> set[int]:
        return set(self._cannot.get(cluster, ()))

    def labels(self) -> dict[Hashable, int]:
        """face -> its group, for every face held."""
        return {self._face_ids[r]: g for r, g in self._group_of_row.items()}

    def thresholds(self) -> dict[int, float]:
        """Prototype thresholds by shot class (1, 2, 3 = 3+) for the groups there are now."""
        if self._thresholds is None:
            self._thresholds = operating_point(self.calibration, self.false_merge_rate,
                                               self._class_counts).thresholds
        return self._thresholds

    def best_faces(self, cluster: int, k: int = 3) -> list[Hashable]:
        """The group's ``k`` best faces to show or enroll: highest quality first, the nearer the prototype on a tie."""
        rows = np.asarray(self._groups[cluster].rows)
        dist = self._distances(self._emb[rows], self._protos[self._slot_of[cluster]])
        order = np.lexsort((dist, -self._quality[rows]))  # last key first: quality, then distance
        return [self._face_ids[r] for r in rows[order[:k]]]

    # -- the stream --------------------------------------------------------------------------------
    def add(self, face: Hashable, embedding: np.ndarray, quality: float = 0.0) -> Placement:
        """Put a new face into the nearest group it passes the rule for, or into a group of its own."""
        if face in self._row_of:
            raise ValueError(f"face {face!r} is already grouped")
        x = normalise(np.asarray(embedding, np.float32).reshape(-1))
        n = len(self._slot_cluster)
        chosen = None
        if n:
            dist = self._distances(self._protos[:n], x)
            limit = self._slot_thresholds(n)
            candidates = np.flatnonzero(dist <= limit)
            for slot in candidates[np.argsort(dist[candidates])]:
                cluster = self._slot_cluster[slot]
                if self._members_agree(self._groups[cluster].rows, x[None, :]):
                    chosen = (cluster, float(dist[slot]), float(limit[slot]))
                    break
        row = self._new_row(face, x, quality)
        if chosen is None:
            cluster = self._new_group()
            self._attach(row, cluster)
            return Placement(face, cluster, True)
        cluster, distance, threshold = chosen
        self._attach(row, cluster)
        merged = self._absorb_neighbours(cluster) if self.auto_merge else ()
        return Placement(face, self.cluster_of(face), False, distance, threshold, merged)

    # -- what an admin does ------------------------------------------------------------------------
    def cannot_link(self, a: int, b: int) -> None:
        """Record that groups ``a`` and ``b`` are different people: nothing merges them from now on."""
        if a == b:
            raise ValueError("a group cannot be told apart from itself")
        if a not in self._groups or b not in self._groups:
            raise KeyError(a if a not in self._groups else b)
        self._cannot.setdefault(a, set()).add(b)
        self._cannot.setdefault(b, set()).add(a)

    def merge(self, keep: int, other: int) -> int:
        """Move ``other``'s faces into ``keep`` (an admin's "same person"); CannotLink where one said otherwise."""
        if keep == other:
            return keep
        if other in self._cannot.get(keep, ()):
            raise CannotLink(f"groups {keep} and {other} were marked as different people",
                             {"clusters": [keep, other]})
        for row in list(self._groups[other].rows):
            self._group_of_row[row] = keep
        self._groups[keep].rows += self._groups[other].rows
        self._groups[keep].total += self._groups[other].total
        self._set_size(keep)
        for c in self._cannot.pop(other, set()):  # the link follows the group
            self._cannot[c].discard(other)
            self._cannot[c].add(keep)
            self._cannot.setdefault(keep, set()).add(c)
        self._drop_group(other)
        return keep

    def split_off(self, face: Hashable, *, different: bool = True) -> int:
        """Take one face out of its group into a new group of its own; ``different``: the two are cannot-linked
        (an admin splitting a face off says it is someone else)."""
        old = self.cluster_of(face)
        if len(self._groups[old].rows) == 1:
            return old
        row = self._row_of[face]
        self._detach(row)
        new = self._new_group()
        self._attach(row, new)
        if different:
            self.cannot_link(new, old)
        return new

    def remove_face(self, face: Hashable) -> None:
        """Forget a face (its event deleted or expired); a group left empty goes with it."""
        row = self._row_of.pop(face)
        self._detach(row)
        self._face_ids[row] = None

    def remove_cluster(self, cluster: int) -> list[Hashable]:
        """Forget a group and its faces (dismissed, deleted, or named and enrolled); returns the faces."""
        faces = self.members(cluster)
        for face in faces:
            self.remove_face(face)
        return faces

    # -- restart -----------------------------------------------------------------------------------
    @classmethod
    def restore(cls, calibration: Calibration, dim: int, faces: Iterable[tuple[Hashable, np.ndarray, float, int]],
                cannot_links: Iterable[tuple[int, int]] = (), next_id: int = 1, **options) -> UnknownClusters:
        """The state that stored rows describe: (face, embedding, quality, group) each, and the cannot-link pairs;
        nothing is decided again, so a restart keeps every group as the admin last saw it. ``next_id``: the least
        number a new group may get (numbers of groups deleted since are not given again)."""
        state = cls(calibration, dim, **options)
        state._next_id = max(state._next_id, next_id)
        for face, embedding, quality, cluster in faces:
            if cluster not in state._groups:
                state._new_group(cluster)
            state._attach(state._new_row(face, normalise(np.asarray(embedding, np.float32).reshape(-1)), quality),
                          cluster)
        for a, b in cannot_links:
            state.cannot_link(a, b)
        return state

    # -- the rule ----------------------------------------------------------------------------------
    @staticmethod
    def _distances(a: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Euclidean distance between unit vectors (the calibration's distance), rows of ``a`` to ``x``."""
        return np.sqrt(np.maximum(2.0 - 2.0 * (a @ x), 0.0))

    def _slot_thresholds(self, n: int) -> np.ndarray:
        t = self.thresholds()
        table = np.array([t[shot_class(s)] for s in range(SHOT_CLASSES[-1] + 1)])
        return table[np.minimum(self._sizes[:n], SHOT_CLASSES[-1])]

    def _members_agree(self, rows: list[int], faces: np.ndarray) -> bool:
        """Every face in ``faces`` (k, D) within the one-photo threshold of at least the agreed share of ``rows``."""
        if self.member_agreement <= 0 or len(rows) < 2:  # one member is the prototype, already tested
            return True
        near = (self._emb[rows] @ faces.T) >= 1.0 - self.thresholds()[1] ** 2 / 2.0  # distance <= t, as a cosine
        return bool(np.all(near.sum(axis=0) >= math.ceil(self.member_agreement * len(rows))))

    def _passes(self, cluster: int, rows: list[int]) -> bool:
        """Whether each of the faces at ``rows`` would join ``cluster`` on its own."""
        faces = self._emb[rows]
        limit = self.thresholds()[shot_class(len(self._groups[cluster].rows))]
        dist = self._distances(faces, self._protos[self._slot_of[cluster]])
        return bool(np.all(dist <= limit)) and self._members_agree(self._groups[cluster].rows, faces)

    def _absorb_neighbours(self, cluster: int) -> tuple[int, ...]:
        """Merge into the grown group every group whose faces all pass the rule against the larger of the two."""
        n = len(self._slot_cluster)
        dist = self._distances(self._protos[:n], self._protos[self._slot_of[cluster]])
        near = np.flatnonzero(dist <= max(self.thresholds().values()))
        merged = []
        for other in [self._slot_cluster[slot] for slot in near[np.argsort(dist[near])]]:  # ids: merges move slots
            if other == cluster or other in self._cannot.get(cluster, ()) or other not in self._groups:
                continue
            small, large = sorted((other, cluster), key=lambda c: len(self._groups[c].rows))
            if self._passes(large, self._groups[small].rows):
                cluster = self.merge(large, small)
                merged.append(small)
        return tuple(merged)

    # -- bookkeeping -------------------------------------------------------------------------------
    def _new_row(self, face: Hashable, x: np.ndarray, quality: float) -> int:
        row = len(self._face_ids)
        if row == len(self._emb):
            self._emb = np.concatenate([self._emb, np.zeros_like(self._emb)])
            self._quality = np.concatenate([self._quality, np.zeros_like(self._quality)])
        self._emb[row], self._quality[row] = x, float(quality)
        self._face_ids.append(face)
        self._row_of[face] = row
        return row

    def _new_group(self, cluster: int | None = None) -> int:
        if cluster is None:
            cluster = self._next_id
        self._next_id = max(self._next_id, cluster + 1)
        slot = len(self._slot_cluster)
        if slot == len(self._protos):
            self._protos = np.concatenate([self._protos, np.zeros_like(self._protos)])
            self._sizes = np.concatenate([self._sizes, np.zeros_like(self._sizes)])
        self._groups[cluster] = _Group(self.dim)
        self._slot_cluster.append(cluster)
        self._slot_of[cluster] = slot
        self._sizes[slot] = 0
        return cluster

    def _attach(self, row: int, cluster: int) -> None:
        group = self._groups[cluster]
        group.rows.append(row)
        group.total += self._emb[row]
        self._group_of_row[row] = cluster
        self._set_size(cluster)

    def _detach(self, row: int) -> None:
        cluster = self._group_of_row.pop(row)
        group = self._groups[cluster]
        group.rows.remove(row)
        if not group.rows:
            self._drop_group(cluster)
            return
        group.total = self._emb[group.rows].astype(np.float64).sum(axis=0)  # recomputed: no drift from subtraction
        self._set_size(cluster)

    def _set_size(self, cluster: int) -> None:
        slot, group = self._slot_of[cluster], self._groups[cluster]
        before, after = int(self._sizes[slot]), len(group.rows)
        self._protos[slot] = normalise(group.total)
        self._sizes[slot] = after
        self._recount(before, after)

    def _recount(self, before: int, after: int) -> None:
        old = shot_class(before) if before else None
        new = shot_class(after) if after else None
        if old != new:
            if old:
                self._class_counts[old] -= 1
            if new:
                self._class_counts[new] += 1
            self._thresholds = None

    def _drop_group(self, cluster: int) -> None:
        slot, last = self._slot_of.pop(cluster), len(self._slot_cluster) - 1
        self._recount(int(self._sizes[slot]), 0)
        if slot != last:  # the last slot fills the hole: the arrays stay dense
            moved = self._slot_cluster[last]
            self._protos[slot], self._sizes[slot] = self._protos[last], self._sizes[last]
            self._slot_cluster[slot] = moved
            self._slot_of[moved] = slot
        self._slot_cluster.pop()
        del self._groups[cluster]
        for c in self._cannot.pop(cluster, set()):
            self._cannot[c].discard(cluster)
