"""Names of the encoder networks a checkpoint may declare, and how to build each.

A checkpoint names its architecture; only names listed here load, so an
unknown network is refused instead of being guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _dlib_resnet() -> nn.Module:
    from .dlib_resnet import DlibResNet

    return DlibResNet()


def _inception_resnet_v1() -> nn.Module:
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained=None, classify=False)


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "dlib_resnet_v1": _dlib_resnet,
    "inception_resnet_v1": _inception_resnet_v1,
}


def build(name: str) -> nn.Module:
    from .errors import CheckpointError

    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise CheckpointError(
            f"Unknown encoder architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}."
        ) from None
    return factory()
