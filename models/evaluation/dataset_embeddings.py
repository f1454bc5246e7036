"""Embed every photo of an image-folder dataset once, and keep the result on disk.

Evaluation runs many seeds and shot counts over the same photos. Two caches,
both resumable: detections (the photo's main face: box and landmarks, and how
long detection took) keyed by the detector's settings, and embeddings keyed
by :meth:`FacePipeline.cache_key`. Trying another encoder or alignment
template on the same data then costs only alignment and embedding.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from models.errors import FaceshotError, TrainingError
from models.imageio import load_image

if TYPE_CHECKING:
    from models.pipeline import FacePipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def list_image_folder(root: str | Path) -> dict[str, list[str]]:
    """person -> relative paths of their photos (one sub-folder per person), or a TrainingError saying what is off."""
    root = Path(root)
    layout = "one sub-folder of photos per person (DATA/Ada_Lovelace/1.jpg)"
    if not root.is_dir():
        raise TrainingError(f"{root} is {'a file' if root.exists() else 'not there'}: the data is a folder "
                            f"holding {layout}.", {"path": str(root)})
    people: dict[str, list[str]] = {}
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(
            str(f.relative_to(root)) for f in person_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            people[person_dir.name] = files
    if not people:
        raise TrainingError(f"{root} holds no person folders with photos: the data is a folder holding {layout}.",
                            {"path": str(root)})
    return people


def cache_file(cache_dir: Path, root: Path, kind: str, key: str) -> Path:
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"{kind}-{key}-{tag}.npz"


class _NpzTable:
    """A dict of fixed-width float rows saved atomically to one .npz, row per file."""

    def __init__(self, path: Path | None, width: int):
        self.path, self.width = path, width
        self.rows: dict[str, np.ndarray] = {}
        if path and path.exists():
            data = np.load(path, allow_pickle=False)
            self.rows = {str(f): r for f, r in zip(data["files"], data["rows"])}

    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        rows = np.stack(list(self.rows.values())) if self.rows else np.zeros((0, self.width))
        np.savez(tmp, files=np.array(list(self.rows)), rows=rows)
        tmp.replace(self.path)

    def fill(self, keys: list[str], make_row, *, desc: str, progress: bool, save_every: int) -> None:
        """Compute the rows still missing, saving every ``save_every`` rows so an interrupted run resumes."""
        todo = [k for k in keys if k not in self.rows]
        for n, key in enumerate(tqdm(todo, desc=desc, unit="photo", disable=not progress or not todo)):
            self.rows[key] = make_row(key)
            if (n + 1) % save_every == 0:
                self.save()
        if todo:
            self.save()


# detection row: ok, detect+decode ms, score, box(4), landmarks(10)
_DET_WIDTH = 17


def detect_dataset(pipeline: FacePipeline, root: Path, files: list[str], cache_dir, progress: bool) -> _NpzTable:
    from models.pipeline import centre_weighted_face  # here, not at the top: listing a folder needs no torch

    d = pipeline.detector
    key = hashlib.sha1(json.dumps(d.cache_parts()).encode()).hexdigest()[:8]
    table = _NpzTable(cache_file(Path(cache_dir), root, "detections", key) if cache_dir else None, _DET_WIDTH)

    def detect(rel: str) -> np.ndarray:
        row = np.zeros(_DET_WIDTH)
        t0 = time.perf_counter()
        try:
            image = load_image(root / rel)
            face = centre_weighted_face(pipeline.detect(image), image.shape)
            row[0], row[2], row[3:7], row[7:17] = 1, face.score, face.box, face.landmarks.reshape(-1)
        except FaceshotError:
            pass
        row[1] = (time.perf_counter() - t0) * 1000
        return row

    table.fill(files, detect, desc="detecting", progress=progress, save_every=250)
    return table


def embed_dataset(
    pipeline: FacePipeline,
    root: str | Path,
    files_by_person: dict[str, list[str]],
    cache_dir: str | Path | None,
    *,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray | None], dict[str, float]]:
    """Return (relative path -> embedding or None, relative path -> ms for decode+detect+align+embed)."""
    from models.detection import DetectedFace

    root = Path(root)
    files = [f for fs in files_by_person.values() for f in fs]
    detections = detect_dataset(pipeline, root, files, cache_dir, progress)
    dim = pipeline.encoder.metadata.embedding_size
    cached = cache_file(Path(cache_dir), root, "embeddings", pipeline.cache_key()) if cache_dir else None
    table = _NpzTable(cached, dim + 1)

    def embed(rel: str) -> np.ndarray:
        det = detections.rows[rel]
        row = np.zeros(dim + 1)
        if det[0]:
            t0 = time.perf_counter()
            image = load_image(root / rel)
            face = DetectedFace(box=det[3:7], score=float(det[2]), landmarks=det[7:17].reshape(5, 2))
            row[1:] = pipeline.embed_faces(image, [face])[0].embedding
            row[0] = (time.perf_counter() - t0) * 1000
        return row

    table.fill(files, embed, desc="embedding", progress=progress, save_every=1000)
    vectors, millis = {}, {}
    for f in files:
        det, row = detections.rows[f], table.rows[f]
        vectors[f] = row[1:].astype(np.float32) if det[0] else None
        # decode is counted twice (once per phase); it is ~1 ms for a 250x250 JPEG
        millis[f] = float(det[1] + row[0])
    return vectors, millis
