"""ONNX face models in and out: users' models imported as ``onnx`` checkpoints (``faceshot import-onnx``), and
our dlib port exported as one. The network they become runs in :mod:`models.encoders.onnx_net`."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from models.encoders.onnx_net import (
    INSTALL_HINT,
    OPSET,
    OnnxNet,
    default_session_options,
    onnx_twin,
    onnxruntime_module,
    state_from_bytes,
)
from models.errors import CheckpointError

log = logging.getLogger(__name__)

# ONNX TensorProto element types an image input may have -> numpy dtype fed to it
_FLOAT_INPUTS = {1: np.float32, 10: np.float16, 11: np.float64}


def _dry_run(config: dict[str, Any], state: dict[str, torch.Tensor], n: int) -> np.ndarray:
    net = OnnxNet(config)
    net.load_state_dict(state)
    size = int(config["input_size"])
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        return net(torch.rand(n, 3, size, size, generator=gen) * 2 - 1).numpy()


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise CheckpointError(f"Reading ONNX models needs the onnx package: {INSTALL_HINT}.") from exc
    return onnx


# InsightFace's five landmarks in a 112x112 ArcFace chip (eyes, nose, mouth corners; image left first), also the
# template OpenCV's FaceRecognizerSF (SFace) warps to.
ARCFACE_TEMPLATE_112 = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                        [70.7299, 92.2041]]

# How the common ONNX face models want their pixels (RGB order in both):
# * InsightFace ArcFace (buffalo_l's w600k_r50, antelopev2's glintr100, ...): (x - 127.5) / 127.5, the default of
#   insightface's ArcFaceONNX unless the graph begins with its own Sub and Mul (then 0 and 1, see
#   ``_normalises_itself``);
# * OpenCV zoo SFace: raw 0..255 (FaceRecognizerSF: blobFromImage scale 1, mean 0, swapRB).
PRESETS: dict[str, dict[str, Any]] = {
    "arcface": {"input_size": 112, "mean": 127.5, "std": 127.5, "channel_order": "rgb"},
    "sface": {"input_size": 112, "mean": 0.0, "std": 1.0, "channel_order": "rgb"},
}


def export_dlib_onnx(path: str | Path | None = None, *, dlib_dir: Path | None = None, opset: int = OPSET,
                     onnx_path: str | Path | None = None) -> EncoderCheckpoint:
    """Our PyTorch port of dlib's ResNet as an ``onnx`` checkpoint ("dlib-resnet-v1-onnx"), saved to ``path``.

    The metadata is dlib's own (template, input size, normalisation, flip_average, threshold, calibration, recipe)
    but for name, architecture, architecture_config and content hash. The content hash differs from dlib's
    deliberately: the service ties stored embeddings to the hash of the weights that made them, so switching
    between the torch and the ONNX encoder asks for ``faceshot reembed`` even though the embeddings agree to
    ~1e-6 (tests/models/test_onnx_encoder.py). Treating the two as one encoder would need a rule for which
    hashes are interchangeable; that is the lead's call, not made here.

    The TorchScript exporter (``dynamo=False``) is used: torch's default dynamo exporter needs ``onnxscript``,
    a further dependency, for a plain CNN it gains nothing on. ``onnx_path`` also writes the bare ONNX graph.
    """
    from models.encoders.architectures import build
    from models.encoders.sources import dlib_checkpoint

    torch_ckpt = dlib_checkpoint(dlib_dir)
    meta = torch_ckpt.metadata
    model = build(meta.architecture)
    model.load_state_dict(torch_ckpt.state_dict)
    model.eval()
    net = onnx_twin(model, meta.input_size, opset=opset, tolerance=1e-4)
    config, diff = net.config, net.max_abs_diff
    data = net.onnx_model.numpy().tobytes()
    state = state_from_bytes(data)
    recipe = {**meta.recipe, "runtime": f"ONNX Runtime (CPU), opset {opset}",
              "exported_from": {"encoder": meta.name, "content_hash": meta.content_hash,
                                "torch": str(torch.__version__), "max_abs_diff_at_export": diff}}
    onnx_meta = dataclasses.replace(meta, name=f"{meta.name}-onnx", architecture="onnx", recipe=recipe,
                                    architecture_config=config, content_hash=content_hash(state))
    ckpt = EncoderCheckpoint(onnx_meta, state)
    if onnx_path is not None:
        Path(onnx_path).parent.mkdir(parents=True, exist_ok=True)
        Path(onnx_path).write_bytes(data)
    if path is not None:
        ckpt.save(path)
    return ckpt


def arcface_template(size: int) -> list[list[float]]:
    """InsightFace's template for a ``size`` chip (face_align.estimate_norm): 112-multiples scale it, 128-multiples
    scale by size/128 and shift 8 px right."""
    if size % 112 == 0:
        ratio, dx = size / 112.0, 0.0
    elif size % 128 == 0:
        ratio = size / 128.0
        dx = 8.0 * ratio
    else:
        raise CheckpointError(f"There is no standard ArcFace template for {size} px chips: pass template=.")
    return [[round(x * ratio + dx, 4), round(y * ratio, 4)] for x, y in ARCFACE_TEMPLATE_112]


def _triple(value: float | Sequence[float], what: str) -> list[float]:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != 3:
        raise CheckpointError(f"{what} must be one number or three (R, G, B), not {value!r}.")
    return values


def _normalises_itself(graph) -> bool:
    """InsightFace's test: a Sub and a Mul among the first eight nodes mean the graph takes raw 0..255 pixels."""
    first = list(graph.node)[:8]
    sub = any(n.op_type == "Sub" or n.name.startswith(("Sub", "_minus")) for n in first)
    mul = any(n.op_type == "Mul" or n.name.startswith(("Mul", "_mul")) for n in first)
    return sub and mul


def _read_model(path: Path):
    """The parsed model and its self-contained bytes (external weight files folded in)."""
    onnx = _onnx()
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    raw = path.read_bytes()
    try:
        model = onnx.load_model_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise CheckpointError(f"{path} is not a readable ONNX model: {exc}", {"path": str(path)}) from exc
    if any(uses_external_data(t) for t in model.graph.initializer):
        try:
            load_external_data_for_model(model, str(path.parent))
            raw = model.SerializeToString()
        except Exception as exc:  # a missing .data file, or a model over protobuf's 2 GB
            raise CheckpointError(f"{path}: cannot fold its external weight files in: {exc}",
                                  {"path": str(path)}) from exc
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a valid ONNX model: {exc}", {"path": str(path)}) from exc
    return model, raw


def _dims(value_info) -> list[int | None] | None:
    """A tensor's dimensions (None where symbolic or unknown), or None when it declares no shape."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]


def import_onnx(
    model_path: str | Path,
    *,
    name: str,
    input_size: int,
    mean: float | Sequence[float],
    std: float | Sequence[float],
    channel_order: str = "rgb",
    crop: dict[str, Any] | None = None,
    template: Sequence[Sequence[float]] | None = None,
    embedding_size: int | None = None,
    licence: str | None = None,
    source: str | None = None,
    layout: str | None = None,
    output_name: str | None = None,
    threshold: float | None = None,
    flip_average: bool = False,
) -> EncoderCheckpoint:
    """A checkpoint of a face model the user brings as a local ``.onnx`` file (nothing is downloaded).

    ``mean``/``std`` apply to 0..255 pixels in ``channel_order`` (see :data:`PRESETS`); ``crop`` is
    ``{"kind": "template"}`` (default: warp onto ``template``, default InsightFace's for ``input_size``) or
    ``{"kind": "box", "margin": m}``. The graph must take one float image tensor of rank 4, (N, 3, S, S) or
    (N, S, S, 3) (``layout`` when the shape does not say), with S = ``input_size`` where fixed; the embedding
    size comes from a dry run (and must equal ``embedding_size`` when given). The threshold is uncalibrated
    (``threshold`` or 1.0) until ``faceshot calibrate`` measures one.
    """
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"No ONNX model at {path}.", {"path": str(path)})
    onnxruntime_module()
    model, data = _read_model(path)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]  # old exports list weights as inputs too
    if len(inputs) != 1:
        raise CheckpointError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); a face "
                              "encoder takes one image tensor.", {"inputs": [i.name for i in inputs]})
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type if inp.type.HasField("tensor_type") else None
    if elem not in _FLOAT_INPUTS:
        from onnx import TensorProto

        kind = TensorProto.DataType.Name(elem) if elem is not None else inp.type.WhichOneof("value")
        raise CheckpointError(f"{path}: input {inp.name!r} is {kind}; faceshot feeds float pixels.")
    dims = _dims(inp)
    if dims is None or len(dims) != 4:
        shown = "unknown" if dims is None else tuple("?" if d is None else d for d in dims)
        raise CheckpointError(f"{path}: input {inp.name!r} has shape {shown}; a face encoder takes rank 4, "
                              "(N, 3, H, W) or (N, H, W, 3).")
    if layout is None:
        layout = "NCHW" if dims[1] == 3 else "NHWC" if dims[3] == 3 else None
        if layout is None:
            raise CheckpointError(f"{path}: cannot tell the channel axis of input shape {dims}: pass layout=.")
    layout = layout.upper()
    if layout not in ("NCHW", "NHWC"):
        raise CheckpointError(f"layout must be NCHW or NHWC, not {layout!r}.")
    channels, spatial = (dims[1], dims[2:]) if layout == "NCHW" else (dims[3], dims[1:3])
    if channels not in (3, None):
        raise CheckpointError(f"{path}: input {inp.name!r} has {channels} channels; faceshot feeds RGB (3).")
    if any(s is not None and s != input_size for s in spatial):
        raise CheckpointError(f"{path}: the model takes {spatial[0]}x{spatial[1]} inputs, input_size says "
                              f"{input_size}.", {"model": spatial, "input_size": input_size})
    outputs = [o.name for o in graph.output]
    if output_name is None:
        output_name = outputs[0]
        if len(outputs) > 1:
            log.info("%s has outputs %s: using %r", path, outputs, output_name)
    elif output_name not in outputs:
        raise CheckpointError(f"{path} has no output {output_name!r} (it has {', '.join(outputs)}).")
    crop = dict(crop or {"kind": "template"})
    if crop.get("kind") not in ("template", "box"):
        raise CheckpointError(f"Unknown crop rule {crop!r}: 'template' or 'box'.")
    if channel_order not in ("rgb", "bgr"):
        raise CheckpointError(f"channel_order must be 'rgb' or 'bgr', not {channel_order!r}.")
    if template is None and crop["kind"] == "template":
        template = arcface_template(input_size)
    elif template is None:  # a box crop does not use it, but every checkpoint carries five points
        template = [[x * input_size / 112.0, y * input_size / 112.0] for x, y in ARCFACE_TEMPLATE_112]
    template = [[float(x), float(y)] for x, y in template]
    mean, std = _triple(mean, "mean"), _triple(std, "std")
    if min(std) <= 0:
        raise CheckpointError(f"std must be positive, not {std}.")
    if _normalises_itself(graph) and (mean != [0.0] * 3 or std != [1.0] * 3):
        log.warning("%s starts with its own Sub and Mul (it normalises pixels itself): InsightFace would feed it "
                    "mean 0, std 1, not mean %s, std %s", path, mean, std)

    batch = dims[0]
    config = {"input_name": inp.name, "output_name": output_name, "layout": layout, "input_size": input_size,
              "input_dtype": np.dtype(_FLOAT_INPUTS[elem]).name, "batch": batch, "model_bytes": len(data),
              "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
              "session": default_session_options()}
    state = state_from_bytes(data)
    probe = 2 if batch is None else batch
    try:
        out = _dry_run(config, state, probe)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc.message}", {"path": str(path)}) from exc
    except Exception as exc:  # ORT's own errors: a shape the graph cannot take, an op it lacks
        if batch is not None:
            raise CheckpointError(f"{path}: ONNX Runtime cannot run it on a {input_size} px chip: {exc}") from exc
        try:  # declared dynamic, built for one: feed it one chip at a time
            config["batch"] = 1
            out = _dry_run(config, state, 1)
            log.warning("%s declares a dynamic batch but runs only batches of 1: embedding one face at a time", path)
        except Exception:
            raise CheckpointError(f"{path}: ONNX Runtime cannot run it on a {input_size} px chip: {exc}") from exc
    if out.ndim != 2 or out.shape[1] == 0:
        raise CheckpointError(f"{path}: output {output_name!r} is not an embedding (shape {out.shape}).")
    raw_shape = _dims(next(o for o in graph.output if o.name == output_name))
    if raw_shape and len(raw_shape) > 2 and any(d not in (1, None) for d in raw_shape[2:]):
        raise CheckpointError(f"{path}: output {output_name!r} has shape {raw_shape}: a feature map, not an "
                              "embedding.")
    if not np.isfinite(out).all():
        raise CheckpointError(f"{path}: the model gives non-finite embeddings on a test chip.")
    dim = int(out.shape[1])
    if embedding_size is not None and int(embedding_size) != dim:
        raise CheckpointError(f"{path} gives {dim}-d embeddings, embedding_size says {embedding_size}.",
                              {"model": dim, "embedding_size": embedding_size})
    recipe: dict[str, Any] = {
        "source": source or f"ONNX model {path.name}",
        "imported_from": {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                          "producer": f"{model.producer_name} {model.producer_version}".strip(),
                          "opset": config["opset"]},
        "runtime": "ONNX Runtime (CPU)",
    }
    if licence:
        recipe["licence"] = licence
    meta = EncoderMetadata(
        name=name, architecture="onnx", embedding_size=dim, input_size=int(input_size),
        alignment_template=template, normalization={"mean": mean, "std": std},
        # uncalibrated: a stand-in until `faceshot calibrate` measures this encoder's distances
        threshold=Threshold(distance=float(threshold if threshold is not None else 1.0), far=None, calibrated=False),
        recipe=recipe, flip_average=flip_average, crop=crop, channel_order=channel_order,
        architecture_config=config, content_hash=content_hash(state))
    ckpt = EncoderCheckpoint(meta, state)
    EncoderMetadata.from_dict(meta.to_dict())  # the same checks a saved copy meets on load
    return ckpt
