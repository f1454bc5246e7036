"""Assemble what bench/train_all.sh needs into one folder small enough to travel to a GPU machine.

The device machine sees only the repository (64 MiB with carried folders) and
cannot install from PyPI, so this gathers, under --out (default var/device,
ignored by git):

* omniglot/: the two small background sets and Lake's one-shot runs (~2 MB);
* lfw-dev-chips/: the aligned dlib chips of lfw-dev from a cache made here
  (``faceshot prepare-faces ../shared/data/lfw-dev --cache-dir ... --format jpg
  --quality 90``), keeping every validation identity and the training
  identities with >= 2 photos; training singletons are dropped (no episode or
  P x K batch can use them) and, the split being a per-name hash rule, dropping
  them moves no one across the split (~30 MB);
* dlib/: dlib_face_recognition_resnet_model_v1.dat (22 MB), for FACESHOT_DLIB_MODEL_DIR;
* wheels/: pytorch-metric-learning, which the GPU image lacks.

    .venv/bin/python bench/pack_device_data.py --data ../shared/data --chips var/cache/lfw-dev-dlib150-jpg
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.encoders.dlib_resnet_assets import dlib_model_path  # noqa: E402
from models.fewshot.datasets.face_chips import CACHE_META  # noqa: E402
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.identities import split_identities  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder holding omniglot/ (e.g. ../shared/data)")
    ap.add_argument("--chips", required=True, help="chip cache of lfw-dev made by `faceshot prepare-faces`")
    ap.add_argument("--val-fraction", type=float, default=0.3)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--out", default="var/device")
    args = ap.parse_args()

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    omniglot = out / "omniglot"
    for part in ("images_background_small1", "images_background_small2", "one-shot-classification"):
        shutil.copytree(Path(args.data) / "omniglot" / part, omniglot / part)

    chips = Path(args.chips)
    folder = ImageFolderDataset(chips)
    counts: dict[str, int] = {}
    for _, label in folder.samples:
        counts[folder.classes[label]] = counts.get(folder.classes[label], 0) + 1
    train, val = split_identities(folder.classes, args.val_fraction, args.split_seed)
    keep = set(val) | {n for n in train if counts[n] >= 2}
    dst = out / "lfw-dev-chips"
    dst.mkdir(parents=True)
    shutil.copy(chips / CACHE_META, dst / CACHE_META)
    for name in sorted(keep):
        shutil.copytree(chips / name, dst / name)

    (out / "dlib").mkdir()
    shutil.copy(dlib_model_path(), out / "dlib")
    wheels = out / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            "pytorch-metric-learning==2.9.0",
        ],
        check=True,
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"{out}: {size / 2**20:.1f} MiB; chips of {len(keep)} identities ({len(val)} validation); "
        f"wheels {glob.glob(str(wheels / '*'))}"
    )


if __name__ == "__main__":
    main()
