"""Identity-disjoint splits by a seeded hash rule, shared by training, calibration and evaluation.

A name goes to the second ("validation") side when the first 8 bytes of
sha256("<seed>:<name>"), read as a fraction of 2**64, fall below ``fraction``. Each
identity's side depends on its own name and the seed only, so adding or removing
people never moves anyone else across the split, and `faceshot calibrate` and
`faceshot eval-openset` with the same ``--val-fraction`` and ``--split-seed`` never
see the same person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SIDES = ("all", "train", "val")


def split_identities(names: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, validation) names, identity-disjoint."""

    def u(name: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") / 2**64

    train = [n for n in names if u(n) >= val_fraction]
    val = [n for n in names if u(n) < val_fraction]
    return train, val


def one_side(names: Sequence[str], side: str, val_fraction: float, seed: int = 0) -> list[str]:
    """The names on ``side`` ("all", "train" or "val") of the split."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    if side == "all":
        return list(names)
    train, val = split_identities(names, val_fraction, seed)
    return train if side == "train" else val
