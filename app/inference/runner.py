"""The face pipeline as a request runs it: decoding within a timeout, then a bounded number of forward passes.

The worker's cores are shared by every request: detection and embedding run for at most
``inference_slots`` requests at once (its cores over its torch threads, see app/core/threads.py).
Decoding runs in a small pool of its own so a request can give up on a pathological file
after ``decode_timeout_s`` (byte and pixel limits, checked before decoding, bound how long an
abandoned decode keeps its thread).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.core.config import Settings
from app.core.errors import DecodeTimeout, Overloaded, ValidationFailed
from app.core.observability import observe_stages
from models.detection import DetectedFace
from models.imageio import load_image_within
from models.pipeline import FacePipeline, Timings, select_one_face

MAX_FACES_PER_ENROLL = 10
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
               "BMP": "image/bmp", "TIFF": "image/tiff"}


@dataclass
class PreparedFace:
    """One enrollment photo, decoded, its face chosen and embedded; nothing stored yet."""

    embedding: np.ndarray
    box: list[float]
    det_score: float
    quality: dict
    image_bytes: bytes
    image_type: str
    origin: str = "upload"  # "camera": captured by a camera (added from an event), see Face.origin


def image_type(data: bytes) -> str:
    """The media type a stored photo is served back with."""
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:
        fmt = None
    return IMAGE_TYPES.get(fmt or "", "application/octet-stream")


class Inference:
    def __init__(self, settings: Settings, pipeline: FacePipeline,
                 checks: Sequence[Callable[[np.ndarray, DetectedFace], dict]] = ()):
        self.settings = settings
        self.pipeline = pipeline
        self.checks = tuple(checks)  # the face checks (app/recognition/face_checks.py), run on every face detected
        # forward passes at once (a semaphore of slots; one slot is a lock)
        self._lock = threading.BoundedSemaphore(settings.effective_inference_slots())
        on_gpu = getattr(getattr(pipeline.encoder, "device", None), "type", "cpu") == "cuda"
        self.batcher = None
        if settings.micro_batch == "on" or (settings.micro_batch == "auto" and on_gpu):
            from app.inference.batching import EmbedBatcher

            self.batcher = EmbedBatcher(pipeline.encoder, wait_ms=settings.micro_batch_wait_ms,
                                        max_faces=settings.micro_batch_max_faces)
        self._decoder = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")

    def decode(self, data: bytes) -> tuple[np.ndarray, int]:
        """The pixels and the factor their sides were divided by (a JPEG over the pixel limit is read at reduced
        scale, not refused), within ``decode_timeout_s`` of decoding *starting* (waiting for a free decoder is not
        the photo's fault)."""
        started = threading.Event()

        def run():
            started.set()
            return load_image_within(data, max_bytes=self.settings.max_upload_bytes,
                                     max_pixels=self.settings.max_image_pixels)

        future = self._decoder.submit(run)
        if not started.wait(timeout=60):  # every decoder busy for a minute: pathological files in all of them
            future.cancel()
            raise Overloaded("Every image decoder is busy; try again shortly.", retry_after=5)
        try:
            return future.result(timeout=self.settings.decode_timeout_s)
        except FutureTimeout:
            future.cancel()
            raise DecodeTimeout(f"Decoding the image took longer than {self.settings.decode_timeout_s:g} s.",
                                {"timeout_s": self.settings.decode_timeout_s}) from None

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)
        if self.batcher is not None:
            self.batcher.close()

    def _embed_faces(self, image, faces, timings):
        return self.pipeline.embed_faces(image, faces, timings, embed=self.batcher.embed if self.batcher else None)

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Every face, largest first, with what each face check found of it in its ``quality``."""
        faces = self.pipeline.detect(image)
        for face in faces:
            for check in self.checks:
                face.quality.update(check(image, face))
        return faces

    def analyze(self, data: bytes):
        """The decoded image and every face in it, embedded (largest first), in the photo's own coordinates."""
        image, factor = self.decode(data)
        image, faces = self.analyze_image(image)
        _to_photo_coordinates([f.face for f in faces], factor)
        return image, faces

    def analyze_image(self, image: np.ndarray):
        """An already decoded RGB image (a video frame) and every face in it, embedded (largest first)."""
        timings = Timings()
        with self._lock:
            t0 = time.perf_counter()
            faces = self._detect(image)
            timings.detect_ms = (time.perf_counter() - t0) * 1000
            faces = self._embed_faces(image, faces, timings)
        observe_stages(timings.detect_ms, timings.align_ms, timings.embed_ms)
        return image, faces

    def detect(self, data: bytes):
        """The photo's size (width, height) and its detected faces (no embedding), in the photo's coordinates."""
        image, factor = self.decode(data)
        with self._lock:
            faces = self._detect(image)
        _to_photo_coordinates(faces, factor)
        return (image.shape[1] * factor, image.shape[0] * factor), faces

    def one_face(self, data: bytes, box: list[float] | None = None):
        """The decoded image and its one face, embedded: the only or dominant one, or the one in ``box``
        (:func:`models.pipeline.select_one_face`, the rule of every operation about one face)."""
        image, factor = self.decode(data)
        timings = Timings()
        with self._lock:
            t0 = time.perf_counter()
            faces = self._detect(image)
            timings.detect_ms = (time.perf_counter() - t0) * 1000
            # a box in the photo's coordinates, held against faces found in the (perhaps reduced) pixels
            _to_photo_coordinates(faces, factor)
            face = select_one_face(faces, tuple(box) if box else None)
            _to_photo_coordinates([face], 1 / factor)
            embedded = self._embed_faces(image, [face], timings)[0]
        _to_photo_coordinates([embedded.face], factor)
        observe_stages(timings.detect_ms, timings.align_ms, timings.embed_ms)
        return image, embedded

    def prepare(self, data: bytes, box: list[float] | None = None) -> PreparedFace:
        """An enrollment photo's one face, embedded, with the bytes it will be stored as."""
        _, embedded = self.one_face(data, box)
        face = embedded.face
        return PreparedFace(embedding=embedded.embedding, box=[round(float(v), 1) for v in face.box],
                            det_score=float(face.score), quality=face.quality, image_bytes=data,
                            image_type=image_type(data))

    def prepare_many(self, images: list[bytes], box: list[float] | None = None) -> list[PreparedFace]:
        """Every photo of one enrollment, or the first refusal, naming the photo (``image_index``)."""
        if not images:
            raise ValidationFailed("At least one image is needed.", {"field": "images"})
        if len(images) > MAX_FACES_PER_ENROLL:
            raise ValidationFailed(f"At most {MAX_FACES_PER_ENROLL} images per request.", {"field": "images"})
        if box is not None and len(images) != 1:
            raise ValidationFailed("`box` applies to a single image.", {"field": "box"})
        prepared = []
        for i, data in enumerate(images):
            try:
                prepared.append(self.prepare(data, box))
            except Exception as exc:
                if hasattr(exc, "details"):
                    exc.details = {**exc.details, "image_index": i}
                raise
        return prepared


def _to_photo_coordinates(faces, factor: float) -> None:
    """Scale faces found in pixels decoded at 1/``factor`` back to the photo's own (their boxes are answered and
    stored, and a request's ``box`` is given in them)."""
    if factor == 1:
        return
    for face in faces:
        face.box = face.box * factor
        face.landmarks = face.landmarks * factor
