"""Embed aligned face chips: the network of a checkpoint, on the GPU when there is one."""

from __future__ import annotations

import logging
from functools import cached_property

import numpy as np
import torch

from models.calibration import Calibration
from models.device import pick_device
from models.encoders.architectures import build
from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata
from models.errors import CheckpointError

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")
# architectures whose ONNX export is tested to equal the torch network (tests/models/test_onnx_encoder.py)
ONNX_TWINS = ("dlib_resnet_v1",)


class Encoder:
    """Maps (N, S, S, 3) uint8 RGB chips to (N, D) float32 L2-normalised embeddings."""

    def __init__(
        self,
        checkpoint: EncoderCheckpoint,
        device: str | torch.device | None = None,
        *,
        fp16: bool = False,
        batch_size: int = 64,
        runtime: str = "auto",
    ):
        self.metadata: EncoderMetadata = checkpoint.metadata
        self.device = pick_device(device)
        self.fp16 = fp16 and self.device.type == "cuda"
        self.batch_size = batch_size
        model = build(self.metadata.architecture, self.metadata.architecture_config)
        missing, unexpected = model.load_state_dict(checkpoint.state_dict, strict=False)
        if missing:
            raise CheckpointError(f"Checkpoint lacks weights for {missing[:5]}…", {"missing": missing})
        if unexpected:
            log.info("ignoring %d checkpoint tensors the encoder does not use", len(unexpected))
        model.eval().to(self.device)
        if self.fp16:
            model.half()
        self.runtime = self._pick_runtime(runtime)
        twin = self.runtime == "onnx" and self.metadata.architecture != "onnx"
        self.model = _onnx_twin(model, self.metadata) if twin else model
        norm = self.metadata.normalization
        self._mean = torch.tensor(norm["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(norm["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def _pick_runtime(self, runtime: str) -> str:
        """``auto``: ONNX Runtime on a CPU for the architectures whose export is tested (1.8x faster than torch for
        dlib's ResNet there), torch elsewhere (GPUs, training, everything else)."""
        if runtime not in RUNTIMES:
            raise CheckpointError(f"Unknown encoder runtime {runtime!r}: one of {', '.join(RUNTIMES)}.")
        if self.metadata.architecture == "onnx":
            return "onnx"  # an ONNX checkpoint runs on ONNX Runtime, inside its module, whatever was asked
        if runtime == "torch":
            return "torch"
        fits = self.device.type == "cpu" and self.metadata.architecture in ONNX_TWINS
        if runtime == "onnx" and not fits:
            raise CheckpointError(f"The ONNX runtime serves {', '.join(ONNX_TWINS)} on a CPU, not "
                                  f"{self.metadata.architecture} on {self.device}.")
        if fits:
            from importlib.util import find_spec

            if find_spec("onnxruntime") is not None and find_spec("onnx") is not None:
                return "onnx"
            if runtime == "onnx":
                raise CheckpointError("The ONNX runtime needs `pip install onnxruntime onnx`.")
        return "torch"

    # Convenience views of the metadata ------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.metadata.input_size

    @property
    def template(self) -> np.ndarray:
        return np.asarray(self.metadata.alignment_template, dtype=np.float64)

    @property
    def threshold(self) -> float:
        return float(self.metadata.threshold.distance)

    def threshold_for(self, n_support: int) -> float:
        """The checkpoint's fixed threshold (calibrated for one gallery size); the service's is gallery-aware."""
        return self.metadata.threshold.for_support(n_support)

    @cached_property
    def calibration(self) -> Calibration | None:
        """The impostor and genuine distributions, when the checkpoint carries them."""
        raw = self.metadata.calibration
        return Calibration.from_dict(raw) if raw else None

    @property
    def content_hash(self) -> str:
        return self.metadata.content_hash

    def describe(self) -> dict:
        m = self.metadata
        return {
            "name": m.name,
            "architecture": m.architecture,
            "embedding_size": m.embedding_size,
            "input_size": m.input_size,
            "content_hash": m.content_hash,
            "threshold": m.threshold.distance,
            "threshold_far": m.threshold.far,
            "threshold_by_support": m.threshold.by_support,
            "device": str(self.device),
            "runtime": self.runtime,  # what computes the embeddings: "onnx" (ONNX Runtime) or "torch"
            "fp16": self.fp16,
            "flip_average": m.flip_average,
            "calibrated_distributions": m.calibration is not None,
        }

    # Work ------------------------------------------------------------------------------
    def chips(self, image: np.ndarray, faces) -> np.ndarray:
        """This encoder's input chips of ``faces`` (``DetectedFace``s), by its checkpoint's crop rule."""
        from models.crops import face_chips

        return face_chips(image, faces, self.metadata.crop, self.template, self.input_size)

    def embed_faces(self, image: np.ndarray, faces) -> np.ndarray:
        """(N, D) embeddings of ``faces`` in ``image``: crop, then embed."""
        return self.embed(self.chips(image, faces))

    def embed(self, chips: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, D) unit embeddings of (N, S, S, 3) uint8 RGB chips."""
        n = len(chips)
        if n == 0:
            return np.zeros((0, self.metadata.embedding_size), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                batch = chips[start : start + self.batch_size]
                x = torch.as_tensor(np.ascontiguousarray(batch)) if isinstance(batch, np.ndarray) else batch
                x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
                if self.metadata.channel_order == "bgr":
                    x = x.flip(1)
                x = (x - self._mean) / self._std
                if self.fp16:
                    x = x.half()
                if self.metadata.flip_average:  # one forward pass over the faces and their mirror images
                    both = torch.nn.functional.normalize(self.model(torch.cat([x, x.flip(3)])).float(), dim=1)
                    y = both[: len(x)] + both[len(x) :]
                else:
                    y = self.model(x).float()
                y = torch.nn.functional.normalize(y, dim=1)
                out.append(y.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


_twins: dict[str, torch.nn.Module] = {}


def _onnx_twin(model: torch.nn.Module, meta: EncoderMetadata) -> torch.nn.Module:
    """The same network exported to ONNX and run by ONNX Runtime (made once per process and weights: ~1.5 s).

    The weights are the checkpoint's, so the content hash stays: stored embeddings remain valid (the two runtimes
    agree to ~1e-6, tests/models/test_onnx_encoder.py)."""
    twin = _twins.get(meta.content_hash)
    if twin is None:
        from models.encoders.onnx_net import onnx_twin

        twin = _twins[meta.content_hash] = onnx_twin(model, meta.input_size)
    return twin
