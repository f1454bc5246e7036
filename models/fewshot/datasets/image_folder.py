"""Image folders, ``root/<class>/<image>`` (one sub-folder per person or character), and their identity split."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.errors import TrainingError
from models.fewshot.datasets.tensor_images import TensorImageDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


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
            folder = self.root / name
            files = (
                sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
            )
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
        if arrays:
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        else:
            images = torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
        return TensorImageDataset(images, torch.tensor(self.labels, dtype=torch.long), list(self.classes))


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


