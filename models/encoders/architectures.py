"""Names of the encoder networks a checkpoint may declare, and how to build each.

A checkpoint names its architecture; only names listed here load, so an
unknown network is refused instead of being guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _dlib_resnet() -> nn.Module:
    from models.encoders.dlib_resnet import DlibResNet

    return DlibResNet()


def _inception_resnet_v1() -> nn.Module:
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained=None, classify=False)


def _tfjs_graph(config: dict) -> nn.Module:
    from models.encoders.tfjs_net import TfjsGraphNet

    return TfjsGraphNet(config)


def _onnx(config: dict) -> nn.Module:
    from models.encoders.onnx_net import OnnxNet

    return OnnxNet(config)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "dlib_resnet_v1": _dlib_resnet,
    "inception_resnet_v1": _inception_resnet_v1,
    "tfjs_graph": _tfjs_graph,  # a TF.js graph model, interpreted in torch (models/encoders/tfjs_net.py)
    "onnx": _onnx,  # an ONNX model run by ONNX Runtime (models/encoders/onnx_net.py)
}


def build(name: str, config: dict | None = None) -> nn.Module:
    """The network ``name`` names; ``config`` (a checkpoint's ``architecture_config``) for those that need one."""
    from models.errors import CheckpointError

    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise CheckpointError(
            f"Unknown encoder architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}."
        ) from None
    return factory(config) if name in CONFIGURED else factory()


# architectures built from their checkpoint's architecture_config (e.g. an interpreted graph)
CONFIGURED: set[str] = {"tfjs_graph", "onnx"}
