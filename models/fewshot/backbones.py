"""Networks that turn images into features, injected into the few-shot methods.

* :class:`Conv4`: the four-block ConvNet of the few-shot papers (Vinyals et al.
  2016, Snell et al. 2017, Finn et al. 2017) for 28x28 Omniglot characters.
* :class:`EncoderBackbone`: one of faceshot's face encoders (the PyTorch port of
  dlib's ResNet, facenet-pytorch's InceptionResnetV1) with its pixel
  normalisation folded in, so training starts from the same network and
  numbers the service uses, and export can write them back unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from models.encoders.architectures import build
from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata


def conv_block(in_channels: int, out_channels: int, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """4 x [conv 3x3 (64), batch-norm, ReLU, 2x2 max-pool]: a 28x28 image becomes a 64-d vector.

    ``pooled_blocks`` < 4 leaves the last blocks without pooling and ``flatten=False``
    keeps the feature map: relation networks compare (64, 7, 7) maps (Sung et al. 2018).
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, pooled_blocks: int = 4, flatten: bool = True):
        super().__init__()
        self.blocks = nn.Sequential(
            *(conv_block(in_channels if i == 0 else hidden, hidden, i < pooled_blocks) for i in range(4))
        )
        self.flatten = flatten
        self.out_channels = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        return x.flatten(1) if self.flatten else x


class EncoderBackbone(nn.Module):
    """A face encoder fed 0..255 RGB pixels (N, 3, S, S); normalises them as its checkpoint says.

    The output is the encoder's raw embedding (not unit length); methods that
    want the service's geometry normalise it themselves.
    """

    def __init__(self, encoder: nn.Module, metadata: EncoderMetadata):
        super().__init__()
        self.encoder = encoder
        self.metadata = copy.deepcopy(metadata)
        self.trainable_heads: tuple[str, ...] = ()  # set by train_last_layer_only: all else frozen
        norm = metadata.normalization
        self.register_buffer("mean", torch.tensor(norm["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm["std"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    #: The final projection of each architecture: what ``train_last_layer_only`` leaves trainable.
    LAST_LAYERS = {"dlib_resnet_v1": ("fc",), "inception_resnet_v1": ("last_linear", "last_bn")}

    def train_last_layer_only(self) -> list[str]:
        """Freeze everything but the encoder's final projection; returns the trainable parameter names.

        With a few photos per person, retraining only the last layer moves the
        embedding least; the frozen part also stays in eval mode, so batch-norm
        statistics learned on millions of faces are not re-estimated on a handful.
        """
        heads = self.LAST_LAYERS.get(self.metadata.architecture)
        if heads is None:
            raise ValueError(f"no known last layer for architecture {self.metadata.architecture!r}")
        self.trainable_heads = heads
        names = []
        for name, param in self.encoder.named_parameters():
            param.requires_grad = name.split(".")[0] in heads
            if param.requires_grad:
                names.append(name)
        self.train(self.training)
        return names

    def train(self, mode: bool = True) -> EncoderBackbone:
        super().train(mode)
        if self.trainable_heads:
            for name, module in self.encoder.named_children():
                if name not in self.trainable_heads:
                    module.eval()
        return self

    @classmethod
    def from_checkpoint(cls, checkpoint: EncoderCheckpoint) -> EncoderBackbone:
        encoder = build(checkpoint.metadata.architecture)
        encoder.load_state_dict(checkpoint.state_dict)
        return cls(encoder, checkpoint.metadata)

    @property
    def input_size(self) -> int:
        return self.metadata.input_size

    @property
    def embedding_size(self) -> int:
        return self.metadata.embedding_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.mean) / self.std)

    def embed_like_service(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings exactly as :class:`models.encoders.encoder.Encoder` makes them (mirror-averaged
        when the metadata asks for it), for evaluation and threshold calibration."""
        if not self.metadata.flip_average:
            return F.normalize(self(x).float(), dim=1)
        both = F.normalize(self(torch.cat([x, x.flip(3)])).float(), dim=1)
        return F.normalize(both[: len(x)] + both[len(x) :], dim=1)


def feature_shape(backbone: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one image's features, found with a dummy forward pass (batch-norm statistics untouched)."""
    was_training = backbone.training
    backbone.eval()
    try:
        param = next(backbone.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = backbone(torch.zeros(2, *input_shape, device=device))
    finally:
        backbone.train(was_training)
    return tuple(out.shape[1:])
