"""Which backbone and which few-shot method a training config names: the one registry of method names.

:data:`METHODS` maps every ``--method`` name to the function that builds it; the
CLI's choices and :meth:`TrainConfig.validate <.config.TrainConfig.validate>`
both read it. The module imports no torch at import time (the CLI reads
:data:`METHODS` to build ``--help``), so each builder imports what it builds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from models.errors import TrainingError

if TYPE_CHECKING:
    from torch import nn

    from models.encoders.checkpoint import EncoderMetadata
    from models.fewshot.base import FewShotClassifier
    from models.fewshot.config import TrainConfig

#: (config, backbone, backbone output shape, flattened feature size) -> method
MethodBuilder = Callable[["TrainConfig", "nn.Module", tuple[int, ...], int], "FewShotClassifier"]


def _protonet(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import PrototypicalNetworks

    return PrototypicalNetworks(backbone, normalize=cfg.normalize, scale=cfg.scale, learn_scale=cfg.learn_scale)


def _matching(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import MatchingNetworks

    return MatchingNetworks(backbone, dim, full_context=cfg.full_context)


def _relation(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import RelationNetworks

    return RelationNetworks(backbone, shape)


def _siamese(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import SiameseNetworks

    return SiameseNetworks(backbone, dim)


def _metric(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import MetricLearning

    return MetricLearning(
        backbone, loss=cfg.method, miner=cfg.miner, margin=cfg.margin, pos_margin=cfg.pos_margin, scale=cfg.scale
    )


def _maml(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import MAML

    return MAML(
        backbone,
        dim,
        cfg.n_way,
        inner_lr=cfg.inner_lr,
        inner_steps=cfg.inner_steps,
        eval_inner_steps=cfg.eval_inner_steps,
        first_order=cfg.method == "fomaml",
        head=cfg.maml_head,
    )


def _finetune(cfg: TrainConfig, backbone: nn.Module, shape: tuple[int, ...], dim: int) -> FewShotClassifier:
    from models.fewshot.methods import Finetune

    return Finetune(
        backbone, fine_tuning_steps=cfg.fine_tuning_steps, entropy_weight=cfg.entropy_weight, scale=cfg.scale
    )


METHODS: dict[str, MethodBuilder] = {
    "protonet": _protonet,
    "matching": _matching,
    "relation": _relation,
    "siamese": _siamese,
    "triplet": _metric,
    "contrastive": _metric,
    "maml": _maml,
    "fomaml": _maml,
    "finetune": _finetune,
}


def check_config(cfg: TrainConfig) -> None:
    """A method this registry builds, then every other setting (:meth:`TrainConfig.validate`)."""
    if cfg.method not in METHODS:
        raise TrainingError(f"method must be one of {', '.join(METHODS)}, not {cfg.method!r}")
    cfg.validate()


def build_backbone(
    cfg: TrainConfig, encoder_metadata: EncoderMetadata | None = None
) -> tuple[nn.Module, EncoderMetadata | None]:
    """The injected backbone: a fresh Conv-4, or a face encoder (pretrained weights, or bare when metadata is given)."""
    from models.fewshot.backbones import Conv4, EncoderBackbone

    if cfg.backbone == "conv4":
        if cfg.method == "relation":
            return Conv4(in_channels=1, pooled_blocks=2, flatten=False), None
        return Conv4(in_channels=1), None
    if encoder_metadata is not None:  # rebuilding from a training checkpoint: weights come from its state dict
        from models.encoders.architectures import build

        return EncoderBackbone(build(encoder_metadata.architecture), encoder_metadata), encoder_metadata
    from models.encoders.sources import resolve_checkpoint

    checkpoint = resolve_checkpoint(cfg.backbone)
    return EncoderBackbone.from_checkpoint(checkpoint), checkpoint.metadata


def build_method(cfg: TrainConfig, backbone: nn.Module, input_shape: tuple[int, ...]) -> FewShotClassifier:
    """The method ``cfg.method`` names around ``backbone``, sized by the features it makes of ``input_shape`` images."""
    from models.fewshot.backbones import feature_shape

    builder = METHODS.get(cfg.method)
    if builder is None:
        raise ValueError(f"unknown method {cfg.method!r}")
    shape = feature_shape(backbone, input_shape)
    return builder(cfg, backbone, shape, math.prod(shape))


def input_shape_of(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None) -> tuple[int, int, int]:
    """(C, H, W) of the images the backbone takes: 28x28 Omniglot characters, or the encoder's chips."""
    if cfg.dataset == "omniglot":
        return (1, 28, 28)
    assert encoder_metadata is not None
    return (3, encoder_metadata.input_size, encoder_metadata.input_size)
