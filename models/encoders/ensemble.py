"""An encoder made of encoders: each member crops and embeds a face its own way, the unit embeddings are fused.

Encoders trained on different data err differently, so fusing them is the cheapest
accuracy to be had offline. A manifest (JSON) names the members by their encoder spec
and content hash, the fusion (one weight per member: z = normalise(concat(w_i * e_i))),
and one calibration for the whole (threshold, distance distributions). The service,
`eval-openset`, `calibrate` and `reembed` treat an :class:`EnsembleEncoder` as any
encoder: it has the same metadata, ``chips`` and ``embed``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np

from models.calibration import Calibration
from models.encoders.checkpoint import EncoderMetadata, Threshold
from models.errors import CheckpointError


def ensemble_hash(members: list[tuple[str, float]]) -> str:
    """Content hash of a fusion: its members' hashes and weights, in order."""
    raw = json.dumps([[h, round(float(w), 6)] for h, w in members])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class EnsembleEncoder:
    """The members' embeddings, each unit length, weighted, concatenated and normalised again."""

    def __init__(self, manifest: dict[str, Any], members: list):
        self.manifest = manifest
        self.members = members
        specs = manifest["members"]
        for spec, member in zip(specs, members):
            want = spec.get("content_hash")
            if want and want != member.content_hash:
                raise CheckpointError(
                    f"Ensemble member {spec['encoder']!r} has content hash {member.content_hash}, the manifest was "
                    f"made with {want}: other weights would be silently wrong.", {"member": spec["encoder"]})
        self.weights = np.array([float(s.get("weight", 1.0)) for s in specs], np.float32)
        first = members[0].metadata
        threshold = Threshold(**manifest["threshold"]) if manifest.get("threshold") else Threshold(
            distance=1.0, far=None, calibrated=False)
        self.metadata: EncoderMetadata = replace(
            first, name=manifest["name"], architecture="ensemble",
            embedding_size=int(sum(m.metadata.embedding_size for m in members)), threshold=threshold,
            recipe={**manifest.get("recipe", {}), "members": [dict(s) for s in specs]}, data={},
            flip_average=False, calibration=manifest.get("calibration"), architecture_config={},
            content_hash=ensemble_hash([(m.content_hash, w) for m, w in zip(members, self.weights)]))
        self.device = members[0].device
        self.fp16 = any(m.fp16 for m in members)

    # the Encoder interface ---------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.metadata.input_size

    @property
    def template(self) -> np.ndarray:
        return np.asarray(self.metadata.alignment_template, dtype=np.float64)

    @property
    def content_hash(self) -> str:
        return self.metadata.content_hash

    def threshold_for(self, n_support: int) -> float:
        return self.metadata.threshold.for_support(n_support)

    @cached_property
    def calibration(self) -> Calibration | None:
        raw = self.metadata.calibration
        return Calibration.from_dict(raw) if raw else None

    def describe(self) -> dict:
        base = self.members[0].describe()
        return {**base, "name": self.metadata.name, "architecture": "ensemble",
                "embedding_size": self.metadata.embedding_size, "content_hash": self.content_hash,
                "threshold": self.metadata.threshold.distance, "threshold_far": self.metadata.threshold.far,
                "threshold_by_support": self.metadata.threshold.by_support,
                "calibrated_distributions": self.metadata.calibration is not None,
                "members": [{"name": m.metadata.name, "weight": float(w), "content_hash": m.content_hash,
                             "runtime": m.runtime}
                            for m, w in zip(self.members, self.weights)]}

    def chips(self, image: np.ndarray, faces) -> list[np.ndarray]:
        """One set of chips per member, each by its own crop rule."""
        return [m.chips(image, faces) for m in self.members]

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """The fused (N, D) unit embeddings of the members' chips (as :meth:`chips` makes them)."""
        parts = [m.embed(c) * w for m, c, w in zip(self.members, chips, self.weights)]
        fused = np.concatenate(parts, axis=1)
        return fused / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12)

    def embed_faces(self, image: np.ndarray, faces) -> np.ndarray:
        return self.embed(self.chips(image, faces))


def fuse(parts: list[np.ndarray], weights) -> np.ndarray:
    """The fusion rule on precomputed member embeddings (for evaluation and for fitting the weights)."""
    fused = np.concatenate([np.asarray(p, np.float32) * float(w) for p, w in zip(parts, weights)], axis=1)
    return fused / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12)
