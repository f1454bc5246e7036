"""Reading a training run back: the method as its checkpoint left it, its config and the payload.

Apart from ``train.py`` so that evaluation and export (which ``train`` uses for its
validation episodes) can read runs without importing the training loop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.device import pick_device
from models.encoders.checkpoint import EncoderMetadata
from models.errors import TrainingError
from models.fewshot.base import FewShotClassifier
from models.fewshot.config import TrainConfig
from models.fewshot.factory import build_backbone, build_method, input_shape_of

TRAIN_FORMAT = "faceshot-fewshot-train/1"


def load_trained(
    path: str | Path, device: str | torch.device | None = None
) -> tuple[FewShotClassifier, TrainConfig, dict]:
    """A method as a training checkpoint left it (weights, config, encoder metadata), in eval mode."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TRAIN_FORMAT:
        raise TrainingError(f"{path} is not a faceshot training checkpoint ({TRAIN_FORMAT})")
    cfg = TrainConfig.from_dict(payload["config"])
    metadata = EncoderMetadata.from_dict(payload["encoder_metadata"]) if payload.get("encoder_metadata") else None
    backbone, metadata = build_backbone(cfg, metadata)
    method = build_method(cfg, backbone, input_shape_of(cfg, metadata))
    method.load_state_dict(payload["model"])
    return method.to(pick_device(device)).eval(), cfg, payload
