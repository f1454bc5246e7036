"""Faces followed across frames, so that one person passing a camera is one decision, made on their best frames.

Each sampled frame's faces are matched to the live tracks greedily: a face joins a track only
when its embedding is within ``max_distance`` of the track's last one (so the next person at
the same spot starts a new track), the nearest in looks and then in place (box overlap) first;
a face that matches nothing starts a track. A track whose face has been gone for ``max_gap_s``
is closed and handed back; the caller decides who it was from its ``best`` observations (the
sharpest, largest, most frontal, surest), not from thirty contradictory frames. Written here
because the trackers in libraries (SORT, ByteTrack) follow boxes only and bring their own
detector and Kalman state for frame rates we do not have; ours needs both cues and 100 lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.boxes import iou


@dataclass
class Observation:
    """One face in one frame."""

    time: float  # seconds since the start of the stream
    box: np.ndarray
    embedding: np.ndarray
    quality: float  # 0-1, higher is better (:func:`quality_score`)
    details: dict = field(default_factory=dict)  # the detector's quality hints, for the event
    crop: np.ndarray | None = None  # a small RGB crop of the face, kept only if an event may store it


@dataclass
class Track:
    id: int
    observations: list[Observation] = field(default_factory=list)

    @property
    def first(self) -> Observation:
        return self.observations[0]

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    def best(self, k: int = 3) -> list[Observation]:
        return sorted(self.observations, key=lambda o: o.quality, reverse=True)[:k]

    def embedding(self, k: int = 3) -> np.ndarray:
        """The normalised mean of the best ``k`` frames' embeddings: the face as its best views show it."""
        mean = np.mean([o.embedding for o in self.best(k)], axis=0)
        return mean / np.linalg.norm(mean)


def quality_score(face) -> float:
    """How good a view a detected face is: large, sharp, frontal, surely a face (each 0-1, multiplied)."""
    q = face.quality or {}
    size = min(1.0, float(q.get("face_size", 0.0)) / 112.0)
    sharp = min(1.0, float(q.get("sharpness", 0.0)) / 150.0)
    frontal = 1.0
    marks = np.asarray(getattr(face, "landmarks", None) if getattr(face, "landmarks", None) is not None else [])
    if marks.shape == (5, 2):  # the nose between the eyes, not towards one of them
        eyes, nose = marks[:2], marks[2]
        span = abs(float(eyes[1, 0] - eyes[0, 0])) or 1.0
        frontal = max(0.0, 1.0 - abs(float(nose[0] - eyes[:, 0].mean())) / (span / 2))
    return size * sharp * (0.25 + 0.75 * frontal) * float(face.score)


class FaceTracker:
    # max_distance: one face from frame to frame stays well within 0.2 (dlib); two people who look alike
    # can be 0.5 apart (two LFW people at 0.50 were one track at 0.5), so the bar sits well below that
    def __init__(self, *, max_gap_s: float = 1.0, max_distance: float = 0.35, min_frames: int = 2):
        self.max_gap_s, self.max_distance, self.min_frames = max_gap_s, max_distance, min_frames
        self.live: list[Track] = []
        self._next = 1

    def update(self, time: float, faces: list[Observation]) -> list[Track]:
        """Add one frame's faces; returns the tracks this frame closed (gone for longer than ``max_gap_s``)."""
        pairs = []
        for ti, track in enumerate(self.live):
            for fi, face in enumerate(faces):
                distance = float(np.linalg.norm(track.last.embedding - face.embedding))
                if distance > self.max_distance:  # another person, wherever they stand (the next one at the door)
                    continue
                overlap = iou(track.last.box, face.box)
                pairs.append((distance - 0.5 * overlap, ti, fi))  # close in looks, then in place
        used_tracks, used_faces = set(), set()
        for _, ti, fi in sorted(pairs):
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            self.live[ti].observations.append(faces[fi])
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                self.live.append(Track(self._next, [face]))
                self._next += 1
        closed = [t for t in self.live if time - t.last.time > self.max_gap_s]
        self.live = [t for t in self.live if t not in closed]
        return [t for t in closed if len(t.observations) >= self.min_frames]

    def flush(self) -> list[Track]:
        """The end of the stream: every live track is closed."""
        closed, self.live = self.live, []
        return [t for t in closed if len(t.observations) >= self.min_frames]
