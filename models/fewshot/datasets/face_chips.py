"""Face chips: every photo of an image folder detected and aligned once, into a resumable cache on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from models.errors import TrainingError
from models.fewshot.datasets.image_folder import ImageFolderDataset

if TYPE_CHECKING:
    from models.encoders.checkpoint import EncoderMetadata

log = logging.getLogger(__name__)

CACHE_META = "cache.json"
CACHE_FAILURES = "failures.jsonl"
DEFAULT_CACHE_ROOT = Path("var/cache/faces")


def template_key(template: Sequence[Sequence[float]], size: int) -> str:
    """Short hash naming a cache of chips aligned to one template at one size."""
    raw = json.dumps([[round(float(v), 3) for v in p] for p in template] + [size])
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


_WORKER_DETECTOR = None


def _init_worker(device: str, single_thread: bool = False) -> None:
    """Give this process (or a pool worker) the face detector that :func:`_align_one` uses."""
    global _WORKER_DETECTOR
    if single_thread:  # one core per worker process; they run side by side
        torch.set_num_threads(1)
    from models.detection import FaceDetector

    _WORKER_DETECTOR = FaceDetector(device)


def _align_one(task: tuple[str, str, list, int, int]) -> tuple[str, str, str]:
    """Detect the face a photo is of (centre-weighted rule), align it, write the chip; (src, status, detail)."""
    from models.alignment import align_face
    from models.errors import FaceshotError
    from models.imageio import load_image
    from models.pipeline import centre_weighted_face

    src, dst, template, size, quality = task
    try:
        image = load_image(src)
        face = centre_weighted_face(_WORKER_DETECTOR.detect(image), image.shape)
        chip = align_face(image, face.landmarks, np.asarray(template, dtype=np.float64), size)
    except FaceshotError as exc:
        return src, "failed", f"{exc.code}: {exc.message}"
    tmp = dst + ".part"
    Image.fromarray(chip).save(tmp, format="PNG" if dst.endswith(".png") else "JPEG", quality=quality)
    os.replace(tmp, dst)
    return src, "ok", ""


def prepare_face_chips(
    source: str | Path,
    cache_dir: str | Path,
    template: Sequence[Sequence[float]],
    size: int,
    *,
    device: str = "cpu",
    workers: int = 1,
    image_format: str = "png",
    quality: int = 95,
    progress: bool = True,
) -> dict:
    """Detect + align every photo of an image folder once; write ``cache_dir/<person>/<photo>.<fmt>``.

    Resumable: photos whose chip exists, or that failed before (``failures.jsonl``),
    are skipped, so an interrupted run continues where it stopped. ``cache.json``
    records the template and size; a cache made for another template is refused
    rather than mixed. ``workers`` > 1 runs that many detector processes (CPU
    MTCNN is ~60 ms a photo per core; a GPU gains little for 250x250 photos).
    """
    from tqdm import tqdm

    source, cache_dir = Path(source), Path(cache_dir)
    template = [[float(x), float(y)] for x, y in template]
    meta = {
        "source": str(source.resolve()),
        "template": template,
        "size": size,
        "format": image_format,
        "face": "centre_weighted_face",
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path = cache_dir / CACHE_META
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if (
            template_key(old["template"], old["size"]) != template_key(template, size)
            or old.get("format") != image_format
        ):
            raise TrainingError(
                f"{cache_dir} holds chips for another template, size or format; use another cache directory."
            )
    else:
        meta_path.write_text(json.dumps(meta, indent=1))
    failures_path = cache_dir / CACHE_FAILURES
    failed = set()
    if failures_path.exists():
        failed = {json.loads(line)["src"] for line in failures_path.read_text().splitlines() if line.strip()}
    folder = ImageFolderDataset(source)
    tasks = []
    stats = {"photos": len(folder), "cached_before": 0, "failed_before": 0, "new": 0, "failed": 0}
    for path, _ in folder.samples:
        dst = cache_dir / path.parent.name / f"{path.stem}.{image_format}"
        if dst.exists():
            stats["cached_before"] += 1
        elif str(path) in failed:
            stats["failed_before"] += 1
        else:
            dst.parent.mkdir(exist_ok=True)
            tasks.append((str(path), str(dst), template, size, quality))
    if tasks:
        bar = tqdm(total=len(tasks), desc="aligning faces", unit="photo", disable=not progress)
        with failures_path.open("a") as failures:
            if workers <= 1:
                if _WORKER_DETECTOR is None:
                    _init_worker(device)
                results = map(_align_one, tasks)
                pool = None
            else:
                import multiprocessing as mp

                pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(device, True))
                results = pool.imap_unordered(_align_one, tasks, chunksize=16)
            try:
                for src, status, detail in results:
                    if status == "ok":
                        stats["new"] += 1
                    else:
                        stats["failed"] += 1
                        failures.write(json.dumps({"src": src, "error": detail}) + "\n")
                        failures.flush()
                    bar.update()
            finally:
                if pool is not None:
                    pool.close()
                    pool.join()
        bar.close()
    return stats


def chip_folder(
    source: str | Path, metadata: EncoderMetadata, *, cache_dir: str | Path | None = None, workers: int = 4
) -> Path:
    """Folder of chips aligned for ``metadata``'s encoder: ``source`` if it is a chip cache, else a prepared cache.

    The cache goes to ``cache_dir``, by default
    ``var/cache/faces/<source name>-<architecture>-<template key>``.
    """
    source = Path(source)
    key = template_key(metadata.alignment_template, metadata.input_size)
    if (source / CACHE_META).exists():
        meta = json.loads((source / CACHE_META).read_text())
        if template_key(meta["template"], meta["size"]) != key:
            raise TrainingError(
                f"{source} holds chips aligned for another encoder template; point --data at the photos instead."
            )
        return source
    cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE_ROOT / f"{source.name}-{metadata.architecture}-{key}"
    stats = prepare_face_chips(source, cache, metadata.alignment_template, metadata.input_size, workers=workers)
    log.info("face chips in %s: %s", cache, stats)
    return cache
