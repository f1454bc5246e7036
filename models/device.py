"""Choose where tensors live: CUDA when present, CPU otherwise, and say which."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` ('cpu', 'cuda', 'cuda:1', 'auto'); 'auto' or None: cuda if available."""
    if isinstance(requested, torch.device):
        return requested
    name = requested or "auto"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"Device {name!r} was requested but torch sees no CUDA GPU.")
    return device
