"""Embed every photo of an image-folder dataset once, and keep the result on disk.

Evaluation runs many seeds and shot counts over the same photos; the
embeddings (and how long each photo took) are cached per encoder content hash
and dataset path, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import FaceshotError
from .imageio import load_image
from .pipeline import FacePipeline, centre_weighted_face

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def list_image_folder(root: str | Path) -> dict[str, list[str]]:
    """person -> relative paths of their photos (one sub-folder per person)."""
    root = Path(root)
    people: dict[str, list[str]] = {}
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(
            str(f.relative_to(root)) for f in person_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            people[person_dir.name] = files
    if not people:
        raise ValueError(f"{root} holds no person folders with images")
    return people


def cache_file(cache_dir: Path, root: Path, key: str) -> Path:
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"embeddings-{key}-{tag}.npz"


def embed_dataset(
    pipeline: FacePipeline,
    root: str | Path,
    files_by_person: dict[str, list[str]],
    cache_dir: str | Path | None,
    *,
    progress: bool = True,
    save_every: int = 250,
) -> tuple[dict[str, np.ndarray | None], dict[str, float]]:
    """Return (relative path -> embedding or None, relative path -> milliseconds it took)."""
    root = Path(root)
    files = [f for fs in files_by_person.values() for f in fs]
    vectors: dict[str, np.ndarray | None] = {}
    millis: dict[str, float] = {}
    path = cache_file(Path(cache_dir), root, pipeline.cache_key()) if cache_dir else None
    if path and path.exists():
        data = np.load(path, allow_pickle=False)
        for f, v, ok, ms in zip(data["files"], data["vectors"], data["ok"], data["millis"]):
            vectors[str(f)] = v if ok else None
            millis[str(f)] = float(ms)
    todo = [f for f in files if f not in vectors]

    def save() -> None:
        if not path:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(vectors)
        dim = pipeline.encoder.metadata.embedding_size
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            files=np.array(keys),
            vectors=np.stack([vectors[k] if vectors[k] is not None else np.zeros(dim, np.float32) for k in keys])
            if keys else np.zeros((0, dim), np.float32),
            ok=np.array([vectors[k] is not None for k in keys], bool),
            millis=np.array([millis[k] for k in keys], np.float64),
        )
        tmp.replace(path)

    for n, rel in enumerate(tqdm(todo, desc="embedding", unit="photo", disable=not progress or not todo)):
        t0 = time.perf_counter()
        try:
            image = load_image(root / rel)
            faces = pipeline.detect(image)
            face = centre_weighted_face(faces, image.shape)
            vectors[rel] = pipeline.embed_faces(image, [face])[0].embedding
        except FaceshotError:
            vectors[rel] = None
        millis[rel] = (time.perf_counter() - t0) * 1000
        if (n + 1) % save_every == 0:
            save()
    if todo:
        save()
    return {f: vectors[f] for f in files}, {f: millis[f] for f in files}
