"""The ``onnx`` architecture: an ONNX model run by ONNX Runtime, as the network an encoder checkpoint builds.

A checkpoint of architecture ``onnx`` holds the whole ONNX model as one uint8 tensor (``onnx_model``) in its
state dict, so the file stays self-contained, ``torch.load(weights_only=True)`` reads it and the content hash
covers the graph and its weights. :class:`OnnxNet` is the ``nn.Module`` the
:class:`~models.encoders.encoder.Encoder` builds from it: it receives the normalised (N, 3, H, W) float batch the
Encoder prepares and runs it with ONNX Runtime on the CPU (a GPU device still computes on the CPU).
:func:`onnx_twin` runs a torch network (dlib's port) the same way. Converting models in
(``faceshot import-onnx``) and out is :mod:`models.importers.onnx_model`'s.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from models.errors import CheckpointError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install onnxruntime onnx"
# ONNX Runtime 1.32 runs opsets up to the low 20s; 17 is what torch's TorchScript exporter has long supported
# fully, and what older ONNX Runtimes (>= 1.14) a deployment may pin still read.
OPSET = 17
STATE_KEY = "onnx_model"

def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError as exc:
        raise CheckpointError(f"ONNX encoders need ONNX Runtime: {INSTALL_HINT}.") from exc
    return onnxruntime


def default_session_options() -> dict[str, Any]:
    """ORT settings a checkpoint carries; ``intra_op_num_threads`` None: torch's thread count when the session
    is made.

    Why: the service sizes torch's pool once (FACESHOT_TORCH_THREADS, before the pipeline loads) and the detector
    runs in torch; ORT's default is a pool of every physical core, which beside torch's own pool and several
    workers oversubscribes the CPU. Sequential execution: a face encoder is a chain of layers, the parallel
    executor would only add an inter-op pool. No spinning: ORT's idle workers otherwise busy-wait after each run
    and steal the cores the detector needs next.
    """
    return {"intra_op_num_threads": None, "inter_op_num_threads": 1, "execution_mode": "sequential",
            "allow_spinning": False, "graph_optimization_level": "all"}


class OnnxNet(nn.Module):
    """Runs the ONNX model held in its ``onnx_model`` buffer: (N, 3, H, W) float in, (N, D) float out.

    ``config`` (the checkpoint's ``architecture_config``): ``input_name``, ``output_name``, ``layout``
    ("NCHW" or "NHWC": NHWC models get the batch transposed), ``input_size``, ``input_dtype``, ``batch``
    (None: any batch; an int: the model's fixed batch, fed in chunks, the last one zero-padded), ``model_bytes``
    and ``session`` (:func:`default_session_options`). The session is made on the first forward, not here:
    building an Encoder stays cheap, the thread count is read when the service has set it, and a pickled or
    copied module (which drops its session) makes a new one.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        try:
            self.input_name = str(config["input_name"])
            self.output_name = str(config["output_name"])
            self.input_size = int(config["input_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"The ONNX architecture_config lacks {exc}.") from exc
        self.layout = str(config.get("layout", "NCHW")).upper()
        if self.layout not in ("NCHW", "NHWC"):
            raise CheckpointError(f"ONNX layout must be NCHW or NHWC, not {self.layout!r}.")
        self.input_dtype = np.dtype(config.get("input_dtype", "float32"))
        self.batch = None if config.get("batch") is None else int(config["batch"])
        self.session_options = {**default_session_options(), **config.get("session", {})}
        self.register_buffer(STATE_KEY, torch.zeros(int(config.get("model_bytes", 0)), dtype=torch.uint8))
        self._session = None
        self._lock = threading.Lock()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take the stored model whatever its length (the buffer was sized from the config only as a guess)."""
        stored = state_dict.get(prefix + STATE_KEY)
        if stored is not None:
            if stored.dtype != torch.uint8 or stored.dim() != 1:
                raise CheckpointError(f"{STATE_KEY} must be a 1-d uint8 tensor of ONNX bytes, not "
                                      f"{stored.dtype} {tuple(stored.shape)}.")
            if stored.shape != self.onnx_model.shape:
                self.onnx_model = torch.empty_like(stored, device=self.onnx_model.device)
        self._session = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_session"] = None  # an InferenceSession does not pickle; the next forward makes a new one
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()

    def session(self):
        """The ONNX Runtime session over the buffer's model, made once (thread-safe)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._new_session()
        return self._session

    def _new_session(self):
        ort = onnxruntime_module()
        data = self.onnx_model.detach().cpu().numpy().tobytes()
        if not data:
            raise CheckpointError("The ONNX encoder has no model bytes (its checkpoint lacks onnx_model).")
        opts = self.session_options
        so = ort.SessionOptions()
        threads = opts.get("intra_op_num_threads") or torch.get_num_threads()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = int(opts.get("inter_op_num_threads") or 1)
        so.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if opts.get("execution_mode") == "parallel"
                             else ort.ExecutionMode.ORT_SEQUENTIAL)
        levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        so.graph_optimization_level = levels.get(opts.get("graph_optimization_level", "all"), levels["all"])
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if opts.get("allow_spinning") else "0")
        so.log_severity_level = 3  # errors only: old exports warn about every unused initializer
        try:
            return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types for a graph it cannot load
            raise CheckpointError(f"ONNX Runtime cannot load the encoder's model: {exc}") from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (self.input_size, self.input_size):
            raise CheckpointError(f"The ONNX encoder takes (N, 3, {self.input_size}, {self.input_size}) batches, "
                                  f"not {tuple(x.shape)}.")
        batch = x.detach().to("cpu", torch.float32)
        if self.layout == "NHWC":
            batch = batch.permute(0, 2, 3, 1)
        arr = np.ascontiguousarray(batch.numpy(), dtype=self.input_dtype)
        n = len(arr)
        step = self.batch or max(n, 1)
        session = self.session()
        out = []
        for start in range(0, n, step):
            chunk = arr[start : start + step]
            if len(chunk) < step and self.batch:  # a fixed-batch model: pad the last chunk, drop the padding
                chunk = np.concatenate([chunk, np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            y = session.run([self.output_name], {self.input_name: chunk})[0]
            out.append(np.asarray(y, dtype=np.float32).reshape(len(chunk), -1)[: min(step, n - start)])
        y = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        return torch.from_numpy(y).to(x.device)


# --------------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------------

def state_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    return {STATE_KEY: torch.frombuffer(bytearray(data), dtype=torch.uint8)}


def onnx_twin(model: nn.Module, input_size: int, *, opset: int = OPSET, tolerance: float = 1e-5) -> OnnxNet:
    """``model`` (an eval-mode CPU torch encoder taking normalised (N, 3, S, S) batches) exported and loaded into an
    :class:`OnnxNet`, refused unless it computes what ``model`` does (within ``tolerance``, on a batch of 3)."""
    onnxruntime_module()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's deprecation notice and the tracer's shape warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, input_size, input_size),), buf, dynamo=False,
                          opset_version=opset, input_names=["input"], output_names=["embedding"],
                          do_constant_folding=True, dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}})
    data = buf.getvalue()
    config = {"input_name": "input", "output_name": "embedding", "layout": "NCHW", "input_size": input_size,
              "input_dtype": "float32", "batch": None, "model_bytes": len(data), "opset": {"ai.onnx": opset},
              "session": default_session_options()}
    net = OnnxNet(config)
    net.load_state_dict(state_from_bytes(data))
    check = torch.rand(3, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        diff = float((model(check) - net(check)).abs().max())
    if diff > tolerance:
        raise CheckpointError(f"The ONNX export differs from the torch network by {diff:.2e}.")
    net.config, net.max_abs_diff = config, diff
    return net
