"""Read a dlib DNN ``.dat`` file (as written by ``dlib::serialize(net)``) without dlib.

Written by hand because no maintained library reads dlib's serialisation from
Python; the format was taken from dlib's ``serialize.h`` and ``dnn/core.h``,
``dnn/layers.h``, ``dnn/input.h``, ``dnn/loss.h`` and checked byte for byte on
``dlib_face_recognition_resnet_model_v1.dat``:

* an integer is one header byte (low 4 bits: number of value bytes, bit 7:
  negative) and that many little-endian bytes; a float is two integers,
  mantissa and exponent (value = mantissa * 2**exponent); a string is an
  integer length and the bytes; a bool is the character '0' or '1'.
* a tensor is version 2, then num_samples, k, nr, nc, then the values as raw
  little-endian float32.
* a network is written from the loss down: the loss layer, then each
  ``add_layer`` writes its version and recurses into its sub-network, so the
  version numbers of all layers come first (top to bottom), then the input
  layer, then every layer's details from the input up, each followed by three
  bools and three (empty) tensors of training state. Tag and skip layers
  (version 1) write nothing after recursing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    pass


@dataclass
class DlibLayer:
    kind: str  # the dlib layer name as serialised, e.g. "con_4", "affine_"
    params: np.ndarray | None = None  # flat float32 parameter tensor
    attrs: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    loss: str
    loss_attrs: dict
    input_kind: str
    input_attrs: dict
    layers: list[DlibLayer]  # from the input upward; tag/skip layers are omitted


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise DlibFormatError("unexpected end of file")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self) -> int:
        header = self.byte()
        size = header & 0x0F
        if size > 8:
            raise DlibFormatError(f"integer of {size} bytes at offset {self.pos - 1}")
        raw = self.data[self.pos : self.pos + size]
        if len(raw) != size:
            raise DlibFormatError("unexpected end of file")
        self.pos += size
        value = int.from_bytes(raw, "little")
        return -value if header & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def string(self) -> str:
        n = self.int()
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DlibFormatError(f"expected a layer name at offset {self.pos - n}") from exc

    def bools(self, n: int) -> list[bool]:
        raw = self.data[self.pos : self.pos + n]
        if any(c not in b"01" for c in raw):
            raise DlibFormatError(f"expected {n} bools at offset {self.pos}")
        self.pos += n
        return [c == ord("1") for c in raw]

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at offset {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise DlibFormatError("tensor runs past the end of the file")
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).reshape(shape)
        self.pos = end
        return arr.astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))


def _read_details(r: _Reader, kind: str) -> DlibLayer:
    if kind == "con_4":
        params = r.tensor()
        num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        filters, biases = r.alias(), r.alias()
        [r.float() for _ in range(4)]  # learning-rate and weight-decay multipliers
        return DlibLayer(
            kind,
            params.reshape(-1),
            dict(num_filters=num_filters, kernel=(nr, nc), stride=(sy, sx), padding=(py, px),
                 filters_shape=filters, biases_shape=biases),
        )
    if kind == "affine_":
        params = r.tensor()
        gamma, beta = r.alias(), r.alias()
        mode = r.int()
        return DlibLayer(kind, params.reshape(-1), dict(gamma_shape=gamma, beta_shape=beta, mode=mode))
    if kind in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        return DlibLayer(kind, None, dict(kernel=(nr, nc), stride=(sy, sx), padding=(py, px)))
    if kind in ("relu_", "add_prev_"):
        return DlibLayer(kind)
    if kind == "fc_2":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor()
        weights, biases = r.alias(), r.alias()
        bias_mode = r.int()
        [r.float() for _ in range(4)]
        return DlibLayer(
            kind,
            params.reshape(-1),
            dict(num_outputs=num_outputs, num_inputs=num_inputs, weights_shape=weights,
                 biases_shape=biases, has_bias=bias_mode == 0),
        )
    raise DlibFormatError(f"layer type {kind!r} is not supported by this reader")


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib metric-learning network file into plain arrays."""
    r = _Reader(Path(path).read_bytes())
    if r.int() != 1:
        raise DlibFormatError("not a dlib loss-layer network (bad version)")
    loss = r.string()
    if loss != "loss_metric_2":
        raise DlibFormatError(f"unsupported loss layer {loss!r}")
    loss_attrs = {"margin": r.float(), "distance_threshold": r.float()}

    # Versions of every layer, top to bottom, until the input layer's name appears.
    versions = []
    while True:
        mark = r.pos
        try:
            name = r.string()
        except DlibFormatError:
            name = ""
        if name.startswith("input_"):
            break
        r.pos = mark
        versions.append(r.int())
        if len(versions) > 10_000:
            raise DlibFormatError("no input layer found")
    input_kind = name
    if input_kind not in ("input_rgb_image_sized", "input_rgb_image"):
        raise DlibFormatError(f"unsupported input layer {input_kind!r}")
    input_attrs = {"mean_rgb": (r.float(), r.float(), r.float())}
    if input_kind == "input_rgb_image_sized":
        input_attrs["size"] = (r.int(), r.int())

    layers = []
    for depth, version in enumerate(reversed(versions)):
        if version == 1:  # tag or skip layer: nothing but its sub-network was written
            continue
        layer = _read_details(r, r.string())
        r.bools(3)
        for _ in range(3):
            r.tensor()
        if depth == 0:
            r.int()  # the layer that sits on the input writes one more integer
        layers.append(layer)
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} trailing bytes after the network")
    return DlibNet(loss, loss_attrs, input_kind, input_attrs, layers)
