"""Omniglot: the background characters as one data set, their seeded split, and Lake et al.'s one-shot runs."""

from __future__ import annotations

import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.errors import TrainingError
from models.fewshot.datasets.tensor_images import TensorImageDataset

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
    class_names: Sequence[str],
    *,
    test_fraction: float = 0.25,
    val_fraction: float = 0.1,
    seed: int = 0,
    by: str = "character",
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
    """``one-shot-classification/runNN`` folders.

    Each run's ``class_labels.txt`` pairs ``runNN/test/itemXX.png runNN/training/classYY.png``.
    """
    root = Path(root)
    runs = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("run")):
        pairs = [line.split() for line in (run_dir / "class_labels.txt").read_text().splitlines() if line.strip()]
        classes = sorted({train for _, train in pairs})
        support = np.stack([read_omniglot_image(root / c, size) for c in classes])
        queries = np.stack([read_omniglot_image(root / test, size) for test, _ in pairs])
        labels = [classes.index(train) for _, train in pairs]
        runs.append(
            LakeRun(
                run_dir.name,
                torch.from_numpy(support).unsqueeze(1),
                torch.from_numpy(queries).unsqueeze(1),
                torch.tensor(labels),
            )
        )
    if not runs:
        raise TrainingError(f"No runNN folders under {root}")
    return runs
