"""The train / validation (/ test) data sets a training config describes, each an identity-disjoint set of classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.encoders.checkpoint import EncoderMetadata
from models.fewshot.config import TrainConfig
from models.fewshot.datasets.face_chips import chip_folder
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.fewshot.datasets.omniglot import load_omniglot, split_omniglot
from models.fewshot.datasets.tensor_images import TensorImageDataset
from models.identities import split_identities


@dataclass
class Splits:
    """The data sets of one run, the class names in each, and how they were split (for checkpoints and reports)."""

    train: TensorImageDataset
    val: TensorImageDataset
    test: TensorImageDataset | None
    names: dict[str, list[str]]
    summary: dict[str, Any]


def chips_of(cfg: TrainConfig, metadata: EncoderMetadata) -> Path:
    """Folder of aligned chips for ``cfg.data``: the folder itself if it is a chip cache, else a prepared cache."""
    return chip_folder(cfg.data[0], metadata, cache_dir=cfg.cache_dir, workers=cfg.prepare_workers)


def load_splits(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None = None) -> Splits:
    """The train / validation (/ test) datasets a config describes, each an identity-disjoint set of classes."""
    if cfg.dataset == "omniglot":
        return _omniglot_splits(cfg)
    if encoder_metadata is None:
        raise ValueError("face data needs the encoder's metadata (alignment template, input size)")
    return _face_splits(cfg, encoder_metadata)


def _omniglot_splits(cfg: TrainConfig) -> Splits:
    full = load_omniglot(cfg.data)
    names = split_omniglot(
        full.base_class_names,
        test_fraction=cfg.test_fraction,
        val_fraction=cfg.val_fraction,
        seed=cfg.split_seed,
        by=cfg.split_by,
    )
    train = full.subset_classes(names["train"])
    train.rotations = cfg.rotations
    rule = f"by={cfg.split_by!r}, test={cfg.test_fraction}, val={cfg.val_fraction}, seed={cfg.split_seed}"
    summary = {
        "dataset": "omniglot",
        "roots": [str(Path(r)) for r in cfg.data],
        "characters": {k: len(v) for k, v in names.items()},
        "images": len(full),
        "split_rule": f"split_omniglot({rule})",
        "rotations_as_classes": cfg.rotations,
    }
    return Splits(train, full.subset_classes(names["val"]), full.subset_classes(names["test"]), names, summary)


def _face_splits(cfg: TrainConfig, encoder_metadata: EncoderMetadata) -> Splits:
    folder = ImageFolderDataset(chips_of(cfg, encoder_metadata), min_images=cfg.min_images)
    train_names, val_names = split_identities(folder.classes, cfg.val_fraction, cfg.split_seed)
    full = folder.load_tensors()
    rule = f"split_identities(val_fraction={cfg.val_fraction}, seed={cfg.split_seed})"
    summary = {
        "dataset": "faces",
        "source": [str(Path(r)) for r in cfg.data],
        "identities": {"train": len(train_names), "val": len(val_names)},
        "images": len(full),
        "split_rule": f"{rule}: sha256('<seed>:<name>') < fraction",
    }
    names = {"train": train_names, "val": val_names}
    return Splits(full.subset_classes(train_names), full.subset_classes(val_names), None, names, summary)
