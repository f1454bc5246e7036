"""dlib's public-domain face-recognition ResNet, as a PyTorch module.

The network of ``dnn_face_recognition_ex.cpp``: a 7x7/2 convolution, a 3x3/2
max-pool, 14 residual blocks of two 3x3 convolutions (29 convolutions in all),
a global average pool and a 128-d fully connected layer, on 150x150 RGB chips.
Two dlib details matter for an exact port:

* convolutions with stride 2 have no padding (dlib's default padding is
  ``stride != 1 ? 0 : k/2``), so feature maps shrink 150 -> 72 -> 35 -> 17 -> 8
  -> 3/4 -> 1/2;
* ``add_prev`` adds tensors of different shapes as if the smaller were
  zero-padded at the end (more channels, or more rows and columns).

Each dlib ``affine_`` layer (batch-norm folded into a scale and shift) follows a
convolution directly, so it is folded into that convolution's weights here.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.encoders.dlib_format import DlibNet, read_dlib_net

INPUT_SIZE = 150
EMBEDDING_SIZE = 128
# (in channels, out channels, downsample) for the 14 residual blocks, input side first.
BLOCKS = (
    [(32, 32, False)] * 3
    + [(32, 64, True)] + [(64, 64, False)] * 3
    + [(64, 128, True)] + [(128, 128, False)] * 2
    + [(128, 256, True)] + [(256, 256, False)] * 2
    + [(256, 256, True)]
)


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's tensor add: shapes may differ; missing entries count as zero."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, downsample: bool):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=0 if downsample else 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(_add_zero_padded(out, shortcut))


class DlibResNet(nn.Module):
    """Maps (N, 3, 150, 150) normalised RGB chips to raw 128-d descriptors (not unit length)."""

    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.blocks = nn.Sequential(*(ResidualBlock(i, o, d) for i, o, d in BLOCKS))
        self.fc = nn.Linear(256, EMBEDDING_SIZE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def _expected_kinds() -> list[str]:
    kinds = ["con_4", "affine_", "relu_", "max_pool_2"]
    for _, _, down in BLOCKS:
        kinds += ["con_4", "affine_", "relu_", "con_4", "affine_"]
        kinds += ["avg_pool_2", "add_prev_", "relu_"] if down else ["add_prev_", "relu_"]
    return kinds + ["avg_pool_2", "fc_2"]


def _folded_conv(conv_layer, affine_layer, conv: nn.Conv2d) -> dict[str, torch.Tensor]:
    out_c, in_c, kh, kw = conv.weight.shape
    attrs = conv_layer.attrs
    if attrs["num_filters"] != out_c or tuple(attrs["kernel"]) != (kh, kw):
        raise ValueError(f"dlib conv {attrs} does not match {tuple(conv.weight.shape)}")
    if tuple(attrs["stride"]) != conv.stride or tuple(attrs["padding"]) != conv.padding:
        raise ValueError(f"dlib conv stride/padding {attrs} does not match {conv}")
    n_w = out_c * in_c * kh * kw
    params = torch.from_numpy(conv_layer.params)
    weight = params[:n_w].reshape(out_c, in_c, kh, kw)
    bias = params[n_w : n_w + out_c]
    if affine_layer.attrs["mode"] != 0:
        raise ValueError("expected a per-channel (conv mode) affine layer")
    ab = torch.from_numpy(affine_layer.params)
    gamma, beta = ab[:out_c], ab[out_c : 2 * out_c]
    return {
        "weight": (weight.double() * gamma.double()[:, None, None, None]).float(),
        "bias": (bias.double() * gamma.double() + beta.double()).float(),
    }


def state_dict_from_dlib(net: DlibNet) -> dict[str, torch.Tensor]:
    """Map a parsed dlib network onto :class:`DlibResNet`'s parameters."""
    kinds = [layer.kind for layer in net.layers]
    if kinds != _expected_kinds():
        raise ValueError("the dlib file does not hold dlib_face_recognition_resnet_model_v1's architecture")
    if net.input_attrs.get("size", (INPUT_SIZE, INPUT_SIZE)) != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"unexpected input size {net.input_attrs['size']}")
    model = DlibResNet()
    convs = [layer for layer in net.layers if layer.kind == "con_4"]
    affines = [layer for layer in net.layers if layer.kind == "affine_"]
    modules = [model.stem] + [c for block in model.blocks for c in (block.conv1, block.conv2)]
    state: dict[str, torch.Tensor] = {}
    names = {id(m): n for n, m in model.named_modules()}
    for conv_layer, affine_layer, module in zip(convs, affines, modules, strict=True):
        for key, value in _folded_conv(conv_layer, affine_layer, module).items():
            state[f"{names[id(module)]}.{key}"] = value
    fc = net.layers[-1]
    if fc.attrs["has_bias"] or (fc.attrs["num_inputs"], fc.attrs["num_outputs"]) != (256, EMBEDDING_SIZE):
        raise ValueError(f"unexpected fc layer {fc.attrs}")
    # dlib multiplies row vectors by a (num_inputs x num_outputs) matrix.
    state["fc.weight"] = torch.from_numpy(fc.params).reshape(256, EMBEDDING_SIZE).t().contiguous()
    return state


def load_dlib_resnet(path: str | Path) -> tuple[DlibResNet, dict]:
    """The module with dlib's weights, and what the file says about its input."""
    net = read_dlib_net(path)
    model = DlibResNet()
    model.load_state_dict(state_dict_from_dlib(net))
    info = {"mean_rgb": list(net.input_attrs["mean_rgb"]), "dlib_threshold": net.loss_attrs["distance_threshold"]}
    return model.eval(), info
