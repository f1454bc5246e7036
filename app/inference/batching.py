"""Cross-request micro-batching of the embedding step: concurrent requests' faces in one forward pass.

On a GPU a forward pass of 64 faces costs little more than one of a single face, so faces that
arrive together are embedded together: the first waits at most ``wait_ms`` for company, and a
batch closes at ``max_faces``. Detection stays per request (photos differ in size). On a CPU a
batch is barely cheaper per face (dlib on ONNX Runtime: 10.9 -> 8.3 ms) and the inference slots
already keep every core busy, so ``auto`` turns it on for CUDA only (bench/load.py --micro-batch
measures both). No library does this for an in-process torch/ORT model (Triton and TorchServe
do it as separate servers), hence this small queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    chips: object  # (N, S, S, 3) uint8, or one such array per ensemble member
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


def _join(parts: list):
    if isinstance(parts[0], list):  # an ensemble: concatenate member by member
        return [np.concatenate([p[m] for p in parts]) for m in range(len(parts[0]))]
    return np.concatenate(parts)


class EmbedBatcher:
    """``embed(chips)`` as the encoder's, but served by one thread that runs queued requests' chips together."""

    def __init__(self, encoder, *, wait_ms: float = 3.0, max_faces: int = 64):
        self.encoder, self.wait_s, self.max_faces = encoder, wait_ms / 1000.0, max_faces
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self.batches = 0  # forward passes run, and faces in them (for tests and metrics)
        self.faces = 0
        self._thread = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
        self._thread.start()

    def embed(self, chips) -> np.ndarray:
        size = len(chips[0]) if isinstance(chips, list) else len(chips)
        if size == 0:
            return self.encoder.embed(chips)
        item = _Pending(chips, size)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, faces = [first], first.size
            deadline = time.monotonic() + self.wait_s
            closing = False
            while faces < self.max_faces:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    closing = True
                    break
                batch.append(nxt)
                faces += nxt.size
            self._forward(batch)
            if closing:
                return

    def _forward(self, batch: list[_Pending]) -> None:
        try:
            vectors = self.encoder.embed(_join([p.chips for p in batch]))
            self.batches += 1
            self.faces += len(vectors)
            start = 0
            for p in batch:
                p.result, start = vectors[start : start + p.size], start + p.size
        except BaseException as exc:  # every waiting request gets the error, none hangs
            log.exception("a micro-batched forward pass failed")
            for p in batch:
                p.error = exc
        finally:
            for p in batch:
                p.done.set()
