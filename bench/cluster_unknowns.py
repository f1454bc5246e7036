"""Unknown visitors grouped as they arrive (models/clustering.py, issue 29 point 7b): pairwise precision and
recall, groups against true identities, and the time per new face, at 100, 1,000 and 10,000 events.

The events are photos of people no calibration saw, streamed in a random order, each one `add` call.
Three streams:

* ``lfw``: LFW-dev's val side of the identity split the shipped dlib calibration was fitted beside
  (models/identities.py, --val-fraction 0.5, --split-seed 0: calibration used the train side),
  people with 2 or more photos, at most --cap photos each (the val side has one person with 530
  photos and one with 236; uncapped they would make most of the pairs);
* ``camera``: the same people as repeat visitors: each photo and four camera-like copies of it
  (written once under --cache-dir): (1) small face in a large frame: the photo at 40 % in a
  400x300 noisy grey frame; (2) downscaled to 96x96 and saved as JPEG quality 30; (3) grey with
  its contrast halved (a night camera); (4) Gaussian blur (sigma 1.5) and darkened (gamma 1.8).
  Copies of one photo are nearer each other than two photos are, so recall is flattered;
  precision is not. One-photo people of the val side (passers-by) fill counts past the copies;
* ``mixed``: LFW's val people, then CelebA-aligned-10k's people with 2 or more photos (89x109
  crops re-detected by MTCNN and re-aligned), then one-photo people of both (passers-by). A
  harder and shifted domain: on CelebA the dlib encoder's stranger pairs fall within 0.35 about
  twice as often as its calibration says, and its own pairs much less often.

For each size and seed, identities are drawn in a random order from each pool in turn until their
events reach the count (the last one's are cut), and the events are shuffled; sizes a stream
cannot fill are skipped. Pairs: two events are "together" when they end in one group; precision =
together and one person / together, recall = together and one person / one person. "New visitors
joined": of the events whose person no earlier event showed, the share put into an existing group
(necessarily someone else's): the false merge the rate states. One thread (OMP_NUM_THREADS=1 is set
here before numpy loads; torch, for the embedding, gets one thread too). Embeddings are cached under
--cache-dir (models/evaluation/dataset_embeddings.py's cache).

    PYTHONPATH=. .venv/bin/python bench/cluster_unknowns.py --cache-dir /tmp/faceshot-cluster-cache \\
        --lfw ../shared/data/lfw-dev --celeba ../shared/data/celeba-aligned-10k --sizes 100 1000 10000 \\
        --streams lfw camera mixed --rates 0.005 0.01
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.clustering import MEMBER_AGREEMENT, UnknownClusters  # noqa: E402
from models.evaluation.dataset_embeddings import embed_dataset, list_image_folder  # noqa: E402
from models.identities import one_side  # noqa: E402


def embedded(spec: str, root: str, people: dict[str, list[str]], cache_dir: str) -> dict[str, np.ndarray]:
    """identity -> (n, D) embeddings of its photos with a face, cached."""
    import torch

    from models.pipeline import FacePipeline

    torch.set_num_threads(1)
    vectors, _ = embed_dataset(FacePipeline.from_spec(spec, "cpu"), root, people, cache_dir, progress=True)
    out = {}
    for person, files in people.items():
        rows = [vectors[f] for f in files if vectors[f] is not None]
        if rows:
            out[person] = np.stack(rows)
    return out


COPIES = ("small face in a large frame", "96px JPEG q30", "grey, low contrast", "blurred, dark")


def camera_copy(image: np.ndarray, kind: int, rng) -> np.ndarray:
    """One camera-like copy of an RGB photo (the module docstring says which)."""
    import cv2

    if kind == 0:
        small = cv2.resize(image, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
        frame = np.clip(rng.normal(110, 12, (300, 400, 3)), 0, 255).astype(np.uint8)
        y, x = rng.integers(0, 300 - small.shape[0]), rng.integers(0, 400 - small.shape[1])
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        return frame
    if kind == 1:
        small = cv2.resize(image, (96, 96), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
    if kind == 2:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grey = (grey - grey.mean()) * 0.5 + grey.mean()
        return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.5)
    return (255.0 * (blurred / 255.0) ** 1.8).astype(np.uint8)


def write_camera_copies(root: str, people: dict[str, list[str]], out: Path) -> dict[str, list[str]]:
    """Each photo and its camera-like copies under ``out`` (written once); person -> relative paths."""
    import cv2

    from models.imageio import load_image

    listing = {}
    for person, files in people.items():
        listing[person] = []
        for rel in files:
            stem = Path(rel).stem
            for kind in range(-1, len(COPIES)):
                name = f"{person}/{stem}_{'orig' if kind < 0 else kind}.png"
                target = out / name
                if not target.exists():
                    image = load_image(Path(root) / rel)
                    rng = np.random.default_rng(zlib.crc32(f"{stem}/{kind}".encode()))
                    copy = image if kind < 0 else camera_copy(image, kind, rng)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(target), copy[:, :, ::-1])
                listing[person].append(name)
    return listing


def calibration_of(spec: str):
    from models.encoders.sources import load_encoder

    return load_encoder(spec, "cpu").calibration


def draw(pools: list[dict[str, np.ndarray]], n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n events: whole identities from each pool in turn, in a random order, then shuffled; (embeddings, labels)."""
    vectors, labels = [], []
    for pool in pools:
        for person in rng.permutation(sorted(pool)):
            take = pool[person][: n - len(labels)]
            vectors += list(take)
            labels += [person] * len(take)
            if len(labels) == n:
                order = rng.permutation(n)
                return np.asarray(vectors, np.float32)[order], np.asarray(labels, object)[order]
    raise SystemExit(f"only {len(labels)} photos in the data: fewer than {n} events")


def pair_counts(groups: list, truth: list) -> tuple[int, int, int]:
    def pairs(counts: Counter) -> int:
        return sum(v * (v - 1) // 2 for v in counts.values())

    return pairs(Counter(groups)), pairs(Counter(zip(groups, truth))), pairs(Counter(truth))


def run(cal, vectors: np.ndarray, labels: np.ndarray, **options) -> dict:
    clusters = UnknownClusters(cal, vectors.shape[1], **options)
    took = np.empty(len(vectors))
    seen, first, first_joined = set(), 0, 0
    for i, x in enumerate(vectors):
        t0 = time.perf_counter()
        placed = clusters.add(i, x)
        took[i] = time.perf_counter() - t0
        if labels[i] not in seen:  # someone no group holds yet: joining any group is the false merge the rate bounds
            seen.add(labels[i])
            first += 1
            first_joined += not placed.new
    placed = clusters.labels()
    together, right, truth = pair_counts([placed[i] for i in range(len(vectors))], list(labels))
    mixed = sum(len({labels[f] for f in clusters.members(c)}) > 1 for c in clusters.clusters())
    return {"precision": right / together if together else 1.0, "recall": right / truth if truth else 1.0,
            "groups": len(clusters), "identities": len(set(labels)), "mixed_groups": mixed,
            "new_visitor_joined": first_joined / first,
            "ms_p50": float(np.median(took) * 1000), "ms_p95": float(np.percentile(took, 95) * 1000),
            "ms_last_1000_p50": float(np.median(took[-1000:]) * 1000),
            "thresholds_at_end": {str(s): round(t, 4) for s, t in clusters.thresholds().items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(ROOT.parent / "shared/data/lfw-dev"))
    ap.add_argument("--celeba", default=str(ROOT.parent / "shared/data/celeba-aligned-10k"),
                    help="extra identities for the mixed stream")
    ap.add_argument("--cache-dir", required=True, help="embeddings and camera copies (outside the repository)")
    ap.add_argument("--encoder", default="dlib")
    ap.add_argument("--streams", nargs="+", default=["lfw", "camera", "mixed"], choices=["lfw", "camera", "mixed"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.005, 0.01],
                    help="false-merge rates: the chance a new visitor's face joins someone else's group")
    ap.add_argument("--cap", type=int, default=20, help="at most this many photos of one LFW person")
    ap.add_argument("--member-agreement", type=float, default=MEMBER_AGREEMENT)
    ap.add_argument("--no-auto-merge", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    lfw_people = list_image_folder(args.lfw)
    val = set(one_side(sorted(lfw_people), "val", 0.5, 0))
    capped = {p: list(rng.permutation(f))[: args.cap] for p, f in lfw_people.items() if p in val}
    lfw = embedded(args.encoder, args.lfw, capped, args.cache_dir)
    repeat = {p: v for p, v in lfw.items() if len(v) > 1}
    once = {p: v for p, v in lfw.items() if len(v) == 1}
    pools: dict[str, list[dict[str, np.ndarray]]] = {"lfw": [repeat, once]}
    if "camera" in args.streams:
        copies = Path(args.cache_dir) / "lfw-val-camera"
        listing = write_camera_copies(args.lfw, {p: capped[p] for p in repeat}, copies)
        pools["camera"] = [embedded(args.encoder, str(copies), listing, args.cache_dir), once]
    if "mixed" in args.streams:
        celeba = {f"celeba/{p}": v for p, v in
                  embedded(args.encoder, args.celeba, list_image_folder(args.celeba), args.cache_dir).items()}
        pools["mixed"] = [repeat, {p: v for p, v in celeba.items() if len(v) > 1},
                          once | {p: v for p, v in celeba.items() if len(v) == 1}]
    for name in args.streams:
        print(f"{name}: pools (identities, events) {[(len(p), sum(map(len, p.values()))) for p in pools[name]]}",
              file=sys.stderr)
    cal = calibration_of(args.encoder)
    options = {"member_agreement": args.member_agreement, "auto_merge": not args.no_auto_merge}
    rows = []
    for name in args.streams:
        available = sum(len(v) for pool in pools[name] for v in pool.values())
        for rate in args.rates:
            for n in [n for n in args.sizes if n <= available]:
                runs = []
                for seed in range(args.seeds):
                    vectors, labels = draw(pools[name], n, np.random.default_rng(seed))
                    runs.append(run(cal, vectors, labels, false_merge_rate=rate, **options))
                row = {"stream": name, "rate": rate, "events": n, "runs": runs}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "runs"} | summary(runs)), file=sys.stderr,
                      flush=True)
    print(table(rows, args))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                        indent=2) + "\n")
    return 0


def summary(runs: list[dict]) -> dict:
    def mean_std(key):
        v = np.array([r[key] for r in runs], float)
        return float(v.mean()), float(v.std())

    keys = ("precision", "recall", "groups", "identities", "mixed_groups", "new_visitor_joined", "ms_p50", "ms_p95")
    return {k: mean_std(k) for k in keys} | {"precision_min": min(r["precision"] for r in runs)}


def table(rows: list[dict], args) -> str:
    lines = [f"{args.seeds} random orders each (mean ± std); one thread; encoder {args.encoder}; "
             f"member agreement {args.member_agreement}; auto-merge {not args.no_auto_merge}", "",
             "| stream | false-merge rate | events | pairwise precision (min) | pairwise recall | groups | identities "
             "| mixed groups | new visitors joined to a group | ms per event p50 | ms per event p95 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s = summary(row["runs"])
        lines.append(
            f"| {row['stream']} | {row['rate']:.3g} | {row['events']:,} "
            f"| {s['precision'][0]:.4f} ± {s['precision'][1]:.4f} ({s['precision_min']:.4f}) "
            f"| {s['recall'][0]:.3f} ± {s['recall'][1]:.3f} | {s['groups'][0]:,.0f} "
            f"| {s['identities'][0]:,.0f} | {s['mixed_groups'][0]:.1f} | {s['new_visitor_joined'][0]:.2%} "
            f"| {s['ms_p50'][0]:.3f} | {s['ms_p95'][0]:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
