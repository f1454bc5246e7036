"""The encoder checkpoint: weights plus everything needed to use them correctly.

One file (``torch.save`` of a plain dict) holds the state dict and metadata:
architecture, embedding size, input size, alignment template, pixel
normalisation, the calibrated distance threshold and the FAR it was
calibrated for, the impostor and genuine distance distributions that make the
threshold gallery-aware, the training recipe and data summary, and a content hash of
the weights. The service refuses a checkpoint whose format or architecture it
does not know, or whose weights do not match their hash, so it never guesses.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.errors import CheckpointError

FORMAT = "faceshot-encoder/1"


@dataclass
class Threshold:
    """Distance between L2-normalised embeddings at or below which two faces are the same person."""

    distance: float
    far: float | None = None  # false-accept rate on strangers it was calibrated for
    calibrated_on: str | None = None
    calibrated: bool = True
    # The normalised mean of two photos sits closer to every face than one photo does,
    # so a person enrolled with n photos gets the threshold calibrated for n ("1", "2", …).
    by_support: dict[str, float] | None = None

    def for_support(self, n: int) -> float:
        """The threshold for a person enrolled with ``n`` photos (the largest calibrated n beyond)."""
        if not self.by_support:
            return self.distance
        known = sorted(int(k) for k in self.by_support)
        pick = max([k for k in known if k <= max(n, known[0])])
        return float(self.by_support[str(pick)])


@dataclass
class EncoderMetadata:
    name: str
    architecture: str
    embedding_size: int
    input_size: int
    alignment_template: list[list[float]]  # five (x, y) in input pixels: eyes, nose, mouth corners
    normalization: dict[str, list[float]]  # {"mean": [r, g, b], "std": [r, g, b]} on 0..255 pixels
    threshold: Threshold
    recipe: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    # Embed each face and its mirror image and average: steadier embeddings for twice the compute.
    flip_average: bool = False
    content_hash: str = ""
    format: str = FORMAT
    # Impostor and genuine distance distributions per shot class (models.calibration): what lets the service
    # hold a gallery of any size to a target stranger-accept rate. None: only the fixed thresholds above.
    calibration: dict[str, Any] | None = None
    # How a face becomes the network's input (models.crops): warped onto ``alignment_template``
    # ({"kind": "template"}), or the detector's box grown by ``margin`` pixels a side and stretched to
    # input_size ({"kind": "box", "margin": 22}), as networks trained on box crops (FaceNet, HSE faceres) expect.
    crop: dict[str, Any] = field(default_factory=lambda: {"kind": "template"})
    channel_order: str = "rgb"  # "bgr": the network was trained on OpenCV/Caffe-ordered pixels
    # What the architecture needs beyond weights (an interpreted graph's nodes, say); empty for fixed networks.
    architecture_config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EncoderMetadata:
        if raw.get("format") != FORMAT:
            raise CheckpointError(f"Unknown checkpoint format {raw.get('format')!r}; this faceshot reads {FORMAT!r}.")
        try:
            known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
            known["threshold"] = Threshold(**raw["threshold"])
            meta = cls(**known)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"Checkpoint metadata is incomplete: {exc}") from exc
        if len(meta.alignment_template) != 5 or any(len(p) != 2 for p in meta.alignment_template):
            raise CheckpointError("alignment_template must hold five (x, y) points.")
        if len(meta.normalization.get("mean", [])) != 3 or len(meta.normalization.get("std", [])) != 3:
            raise CheckpointError("normalization must give a mean and std for R, G and B.")
        if meta.crop.get("kind") not in ("template", "box"):
            raise CheckpointError(f"Unknown crop rule {meta.crop!r}: 'template' or 'box'.")
        if meta.channel_order not in ("rgb", "bgr"):
            raise CheckpointError(f"channel_order must be 'rgb' or 'bgr', not {meta.channel_order!r}.")
        if meta.calibration is not None:
            from models.calibration import Calibration

            try:
                Calibration.from_dict(meta.calibration)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"The checkpoint's calibration cannot be read: {exc}") from exc
        return meta


@dataclass
class EncoderCheckpoint:
    metadata: EncoderMetadata
    state_dict: dict[str, torch.Tensor]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.metadata.content_hash = content_hash(self.state_dict)
        payload = {"format": FORMAT, "metadata": self.metadata.to_dict(), "state_dict": self.state_dict}
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EncoderCheckpoint:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"No checkpoint at {path}.")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise CheckpointError(f"{path} is not a readable faceshot checkpoint: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a faceshot encoder checkpoint (format {FORMAT}).")
        meta = EncoderMetadata.from_dict(payload["metadata"])
        state = payload["state_dict"]
        actual = content_hash(state)
        if meta.content_hash and meta.content_hash != actual:
            raise CheckpointError(
                f"{path}: weights do not match the content hash in their metadata (corrupt or edited file).",
                {"expected": meta.content_hash, "actual": actual},
            )
        meta.content_hash = actual
        return cls(meta, state)


def content_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over parameter names, shapes and float32 bytes, in name order (first 16 hex digits)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to("cpu", torch.float32).contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        buf = io.BytesIO()
        buf.write(tensor.numpy().tobytes())
        digest.update(buf.getvalue())
    return digest.hexdigest()[:16]
