"""Random augmentations of a whole batch at once, on the device the batch is on: face chips and Omniglot characters."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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
        [
            torch.stack([cos, -sin, uniform(-max_shift, max_shift) * 2], 1),
            torch.stack([sin, cos, uniform(-max_shift, max_shift) * 2], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return x.clamp(0, 255)


def augment_characters(
    x: torch.Tensor, *, max_shift: float = 0.1, max_rotation_deg: float = 10.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Small random affine warps of (N, 1, H, W) Omniglot characters (Koch et al. 2015).

    Rotations by multiples of 90 degrees are classes of their own
    (``TensorImageDataset(rotations=True)``), not augmentation.
    """
    n, device = len(x), x.device
    angle = (torch.rand(n, generator=generator, device=device) * 2 - 1) * max_rotation_deg * math.pi / 180
    shift = (torch.rand(n, 2, generator=generator, device=device) * 2 - 1) * max_shift * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
