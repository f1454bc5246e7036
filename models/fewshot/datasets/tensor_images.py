"""The in-memory data set every split ends up in: one uint8 image tensor and a class label per image.

Samplers pick indices and :meth:`TensorImageDataset.gather` builds the batch.
Omniglot (~5k 28x28 images) and the face chips of lfw-dev (~7k 150x150 chips,
~450 MB) fit comfortably (on the GPU when there is one); no DataLoader workers
sit between the data and the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
            self.images[keep],
            remap[self.base_labels[keep]],
            list(names),
            mean=self.mean,
            std=self.std,
            rotations=self.rotations,
        )

    def gather(
        self, indices: Sequence[int] | torch.Tensor, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
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
