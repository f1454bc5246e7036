"""Data for meta-training: image folders, identity-disjoint splits, Omniglot, cached face chips, augmentation.

Everything ends up in a :class:`TensorImageDataset`: all images of a split as one
uint8 tensor (on the GPU when there is one) plus a label per image, from which
samplers pick indices and :meth:`TensorImageDataset.gather` builds the batch.
Omniglot (~5k 28x28 images) and the face chips of lfw-dev (~7k 150x150 chips,
~450 MB) fit comfortably; no DataLoader workers sit between the data and the GPU.

Split rules (seeded, documented in :func:`split_identities` and
:func:`split_omniglot`) decide which classes are for training, validation and
testing; no class is in two splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import TrainingError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# ---------------------------------------------------------------------------------------------
# Image folders and splits
# ---------------------------------------------------------------------------------------------


class ImageFolderDataset:
    """``root/<class>/<image>``: one folder per class (per person, per character).

    ``classes`` restricts (and orders) the classes used; by default every folder
    that holds at least ``min_images`` images, in name order.
    """

    def __init__(self, root: str | Path, classes: Sequence[str] | None = None, *, min_images: int = 1):
        self.root = Path(root)
        if not self.root.is_dir():
            raise TrainingError(f"No image folder at {self.root}")
        if classes is None:
            classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.samples: list[tuple[Path, int]] = []
        kept = []
        for name in classes:
            files = sorted(p for p in (self.root / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if (self.root / name).is_dir() else []
            if len(files) < min_images:
                continue
            label = len(kept)
            kept.append(name)
            self.samples.extend((f, label) for f in files)
        self.classes = kept

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return torch.from_numpy(_read_rgb(path)).permute(2, 0, 1), label

    def load_tensors(self, *, threads: int = 8) -> TensorImageDataset:
        """Decode every image once into memory (all must share one size, as cached chips do)."""
        with ThreadPoolExecutor(threads) as pool:
            arrays = list(pool.map(lambda s: _read_rgb(s[0]), self.samples))
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous() if arrays else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
        return TensorImageDataset(images, torch.tensor(self.labels, dtype=torch.long), list(self.classes))


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def split_identities(names: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Identity-disjoint (train, validation) split by a seeded hash rule.

    A name goes to validation when the first 8 bytes of sha256("<seed>:<name>"),
    read as a fraction of 2**64, fall below ``val_fraction``. Each identity's side
    depends on its own name and the seed only, so adding or removing people never
    moves anyone else across the split.
    """

    def u(name: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") / 2**64

    train = [n for n in names if u(n) >= val_fraction]
    val = [n for n in names if u(n) < val_fraction]
    return train, val


# ---------------------------------------------------------------------------------------------
# In-memory datasets
# ---------------------------------------------------------------------------------------------


class TensorImageDataset:
    """All images of a split as one uint8 tensor (N, C, H, W) with a class label each.

    ``gather`` returns float images ``(x - mean) / std`` (``mean``/``std`` in pixel
    units; faces keep 0..255 because the encoder normalises itself, Omniglot uses
    std=255 so strokes are 1). With ``rotations=True`` every class appears four
    times, rotated by 0, 90, 180 and 270 degrees, each rotation a class of its own
    (Santoro et al. 2016, Vinyals et al. 2016, Snell et al. 2017).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: list[str],
        *,
        mean: float = 0.0,
        std: float = 1.0,
        rotations: bool = False,
    ):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 (N, C, H, W) tensor")
        self.images, self.base_labels, self.base_class_names = images, labels.long(), list(class_names)
        self.mean, self.std, self.rotations = mean, std, rotations

    @property
    def n_rotations(self) -> int:
        return 4 if self.rotations else 1

    def __len__(self) -> int:
        return len(self.images) * self.n_rotations

    @property
    def num_classes(self) -> int:
        return len(self.base_class_names) * self.n_rotations

    @property
    def class_names(self) -> list[str]:
        if not self.rotations:
            return self.base_class_names
        return [f"{n}@rot{90 * r}" for r in range(4) for n in self.base_class_names]

    @property
    def labels(self) -> list[int]:
        n = len(self.base_class_names)
        return [int(lab) + r * n for r in range(self.n_rotations) for lab in self.base_labels.tolist()]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> TensorImageDataset:
        self.images, self.base_labels = self.images.to(device), self.base_labels.to(device)
        return self

    def subset_classes(self, names: Sequence[str]) -> TensorImageDataset:
        """The images of the named classes only, relabelled in the given order."""
        index = {n: i for i, n in enumerate(self.base_class_names)}
        wanted = torch.tensor([index[n] for n in names], dtype=torch.long, device=self.base_labels.device)
        remap = torch.full((len(self.base_class_names),), -1, dtype=torch.long, device=self.base_labels.device)
        remap[wanted] = torch.arange(len(wanted), device=remap.device)
        keep = remap[self.base_labels] >= 0
        return TensorImageDataset(
            self.images[keep], remap[self.base_labels[keep]], list(names), mean=self.mean, std=self.std, rotations=self.rotations
        )

    def gather(self, indices: Sequence[int] | torch.Tensor, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(float images, labels) of the given items, on ``device`` (default: where the data lives)."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        n = len(self.images)
        base, rot = idx % n, idx // n
        x = self.images[base]
        if self.rotations and bool((rot > 0).any()):
            x = x.clone()
            for r in (1, 2, 3):
                sel = rot == r
                if bool(sel.any()):
                    x[sel] = torch.rot90(x[sel], r, dims=(2, 3))
        labels = self.base_labels[base] + rot * len(self.base_class_names)
        if device is not None:
            x, labels = x.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        return (x.float() - self.mean) / self.std, labels


# ---------------------------------------------------------------------------------------------
# Omniglot
# ---------------------------------------------------------------------------------------------

OMNIGLOT_SIZE = 28


def read_omniglot_image(path: Path, size: int = OMNIGLOT_SIZE) -> np.ndarray:
    """(size, size) uint8 with strokes high: the 105x105 drawing resized (Lanczos) and inverted."""
    with Image.open(path) as img:
        grey = img.convert("L").resize((size, size), Image.Resampling.LANCZOS)
    return 255 - np.asarray(grey, dtype=np.uint8)


def load_omniglot(roots: Sequence[str | Path], size: int = OMNIGLOT_SIZE, *, threads: int = 8) -> TensorImageDataset:
    """Characters of Omniglot background folders (``root/<alphabet>/<character>/*.png``).

    A class is named ``<alphabet>/<character>``. An alphabet present in several
    roots (images_background_small1 and small2 both hold Greek and Latin) is read
    once, from the first root that has it.
    """
    files: list[tuple[str, Path]] = []
    seen_alphabets: set[str] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise TrainingError(f"No Omniglot folder at {root}")
        for alphabet in sorted(p for p in root.iterdir() if p.is_dir()):
            if alphabet.name in seen_alphabets:
                continue
            seen_alphabets.add(alphabet.name)
            for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
                files.extend((f"{alphabet.name}/{character.name}", f) for f in sorted(character.glob("*.png")))
    names = sorted({name for name, _ in files})
    index = {n: i for i, n in enumerate(names)}
    with ThreadPoolExecutor(threads) as pool:
        arrays = list(pool.map(lambda f: read_omniglot_image(f[1], size), files))
    images = torch.from_numpy(np.stack(arrays)).unsqueeze(1).contiguous()
    labels = torch.tensor([index[n] for n, _ in files], dtype=torch.long)
    return TensorImageDataset(images, labels, names, mean=0.0, std=255.0)


def split_omniglot(
    class_names: Sequence[str], *, test_fraction: float = 0.25, val_fraction: float = 0.1, seed: int = 0, by: str = "character"
) -> dict[str, list[str]]:
    """Seeded split of ``alphabet/character`` names into train / val / test.

    ``by="character"`` (default): within each alphabet the characters, in name
    order, are shuffled with ``random.Random(f"{seed}:{alphabet}")``; the first
    round(n x test_fraction) are test, the next round(n x val_fraction) validation,
    the rest training, so every alphabet is seen in training but test characters
    never are (Vinyals et al.'s character-level split, stratified by alphabet).
    ``by="alphabet"``: whole alphabets, shuffled with ``random.Random(seed)``,
    go to test until it holds >= test_fraction of the characters, then to
    validation likewise (Lake et al.'s stricter unseen-alphabet condition).
    """
    import random

    by_alphabet: dict[str, list[str]] = {}
    for name in sorted(class_names):
        by_alphabet.setdefault(name.split("/")[0], []).append(name)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    if by == "character":
        for alphabet, chars in by_alphabet.items():
            chars = list(chars)
            random.Random(f"{seed}:{alphabet}").shuffle(chars)
            n_test, n_val = round(len(chars) * test_fraction), round(len(chars) * val_fraction)
            out["test"] += chars[:n_test]
            out["val"] += chars[n_test : n_test + n_val]
            out["train"] += chars[n_test + n_val :]
    elif by == "alphabet":
        alphabets = sorted(by_alphabet)
        random.Random(seed).shuffle(alphabets)
        total = len(class_names)
        for alphabet in alphabets:
            if len(out["test"]) < test_fraction * total:
                out["test"] += by_alphabet[alphabet]
            elif len(out["val"]) < val_fraction * total:
                out["val"] += by_alphabet[alphabet]
            else:
                out["train"] += by_alphabet[alphabet]
    else:
        raise ValueError("by must be 'character' or 'alphabet'")
    return {k: sorted(v) for k, v in out.items()}


@dataclass
class LakeRun:
    """One run of Lake et al.'s 20-way one-shot task: 20 training images (one per class) and 20 test items."""

    name: str
    support: torch.Tensor  # (20, 1, S, S) uint8, class i is row i
    queries: torch.Tensor  # (20, 1, S, S) uint8
    query_labels: torch.Tensor  # (20,) index of each item's class


def load_lake_runs(root: str | Path, size: int = OMNIGLOT_SIZE) -> list[LakeRun]:
    """``one-shot-classification/runNN`` folders; ``class_labels.txt`` pairs ``runNN/test/itemXX.png runNN/training/classYY.png``."""
    root = Path(root)
    runs = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("run")):
        pairs = [line.split() for line in (run_dir / "class_labels.txt").read_text().splitlines() if line.strip()]
        classes = sorted({train for _, train in pairs})
        support = np.stack([read_omniglot_image(root / c, size) for c in classes])
        queries = np.stack([read_omniglot_image(root / test, size) for test, _ in pairs])
        labels = [classes.index(train) for _, train in pairs]
        runs.append(
            LakeRun(run_dir.name, torch.from_numpy(support).unsqueeze(1), torch.from_numpy(queries).unsqueeze(1), torch.tensor(labels))
        )
    if not runs:
        raise TrainingError(f"No runNN folders under {root}")
    return runs


# ---------------------------------------------------------------------------------------------
# Face chips: detect + align once, cache, resume
# ---------------------------------------------------------------------------------------------

CACHE_META = "cache.json"
CACHE_FAILURES = "failures.jsonl"


def template_key(template: Sequence[Sequence[float]], size: int) -> str:
    """Short hash naming a cache of chips aligned to one template at one size."""
    raw = json.dumps([[round(float(v), 3) for v in p] for p in template] + [size])
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


_WORKER_DETECTOR = None


def _init_worker(device: str, single_thread: bool = False) -> None:
    global _WORKER_DETECTOR
    if single_thread:  # one core per worker process; they run side by side
        torch.set_num_threads(1)
    from ..detection import FaceDetector

    _WORKER_DETECTOR = FaceDetector(device)


def _align_one(task: tuple[str, str, list, int, int]) -> tuple[str, str, str]:
    """Detect the face a photo is of (centre-weighted rule), align it, write the chip; (src, status, detail)."""
    from ..alignment import align_face
    from ..errors import FaceshotError
    from ..imageio import load_image
    from ..pipeline import centre_weighted_face

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
    meta = {"source": str(source.resolve()), "template": template, "size": size, "format": image_format, "face": "centre_weighted_face"}
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path = cache_dir / CACHE_META
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if template_key(old["template"], old["size"]) != template_key(template, size) or old.get("format") != image_format:
            raise TrainingError(f"{cache_dir} holds chips for another template, size or format; use another cache directory.")
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


# ---------------------------------------------------------------------------------------------
# Augmentation, batched on the device
# ---------------------------------------------------------------------------------------------


def augment_faces(
    x: torch.Tensor,
    *,
    flip: float = 0.5,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
    max_rotation_deg: float = 6.0,
    max_scale: float = 0.05,
    max_shift: float = 0.03,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random flip, colour jitter and a small similarity warp of (N, 3, H, W) 0..255 face chips.

    Small on purpose: the chips are already aligned, and a large warp would teach
    the encoder to ignore the alignment the service applies.
    """
    n, device = len(x), x.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) * (high - low) + low

    flip_mask = torch.rand(n, generator=generator, device=device) < flip
    x = torch.where(flip_mask.view(n, 1, 1, 1), x.flip(3), x)
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * uniform(1 - saturation, 1 + saturation).view(n, 1, 1, 1)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = mean + (x - mean) * uniform(1 - contrast, 1 + contrast).view(n, 1, 1, 1)
    x = x * uniform(1 - brightness, 1 + brightness).view(n, 1, 1, 1)
    angle = uniform(-max_rotation_deg, max_rotation_deg) * math.pi / 180
    scale = uniform(1 - max_scale, 1 + max_scale)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, uniform(-max_shift, max_shift) * 2], 1), torch.stack([sin, cos, uniform(-max_shift, max_shift) * 2], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return x.clamp(0, 255)


def augment_characters(x: torch.Tensor, *, max_shift: float = 0.1, max_rotation_deg: float = 10.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Small random affine warps of (N, 1, H, W) Omniglot characters (Koch et al. 2015); rotations by
    multiples of 90 degrees are classes of their own (``TensorImageDataset(rotations=True)``), not augmentation."""
    n, device = len(x), x.device
    angle = (torch.rand(n, generator=generator, device=device) * 2 - 1) * max_rotation_deg * math.pi / 180
    shift = (torch.rand(n, 2, generator=generator, device=device) * 2 - 1) * max_shift * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
