"""Does one camera capture in the support set beat a second badge photo? (issue 29, point 7a)

The open-set "company" protocol (models/evaluation/openset.py) on people no calibration saw: LFW-dev's
val side of the identity split the shipped dlib calibration was fitted beside (models/identities.py,
--val-fraction 0.5, --split-seed 0; the calibration used the train side), at most --cap photos per
person (drawn as bench/cluster_unknowns.py draws them, so its camera copies are the same photos).
Per trial (a seed of ``make_split``): K=50 people are enrolled; every other val-side person gives up
to two stranger photos; each enrolled person gives up to 10 query photos. Support photos are drawn
among photos whose face is found in the original and in all four camera copies (so every condition
and camera uses the same split, and a camera capture could have come from a recognition event).

The QUERY photos (known people's and strangers') are seen through a camera, one of
bench/cluster_unknowns.py's ``camera_copy`` transforms of the 250x250 LFW photo:

* ``frame``: small face in a large frame: the photo resized to 40 % (100x100, area) pasted at a random
  place in a 400x300 frame of Gaussian noise (mean 110, sd 12 per channel): the detected face box is
  ~36 px wide (median; ~92 px in the original);
* ``jpeg``: downscaled to 96x96 (area) and saved as JPEG quality 30 (face box ~35 px);
* ``grey``: grey, its contrast halved about its mean (a night camera), as 3 equal channels;
* ``blur``: Gaussian blur (sigma 1.5), then darkened (gamma 1.8);
* ``mixed``: each query, stranger and event photo through one of the four, drawn at random per photo and trial
  (so an event capture and a query rarely share a camera's look);
* ``none``: the original photos (the reference; there, a "camera capture" is a second badge photo).

Each copy is made once and deterministically (noise and placement seeded by the photo's name).
Four support conditions, each person's prototype by the service's rule (models/prototypes.py):

* (i) ``badge``: one original photo (the badge photo);
* (ii) ``badge + camera capture``: the badge photo and a camera copy (through the same camera as the
  queries) of a second photo of the person, never one of their queries -- a face "added to the person
  from an event";
* (iii) ``two badges``: the badge photo and the *same* second photo as an original;
* (v) ``capture only``: that camera copy alone -- a person named from an unknown event or visitor group.

(ii) and (iii) use the same second photo, so they differ only in whether it came through the camera.
The decision is the service's own: the gallery-aware operating point (models/operating_point.py) that
the encoder's shipped calibration gives for K people like these at --target-far: shot class 1 for (i), 2 for (iii),
and the capture classes for (ii) and (v) (``with_camera``, ``camera_only``: bench/calibrate_captures.py measured them
on the train side's identities through the same four cameras); ``--no-capture-classes`` holds (ii) and (v) to the
shot classes of their photo counts instead, as the service did before.
Reported per trial, then mean ± sd over trials: DIR@FAR=1 %
(known queries accepted and correctly named at the threshold that accepts 1 % of *these* strangers:
an oracle threshold), known named and strangers named (stranger-accept rate) at the service's
threshold, balanced accuracy ((known named + strangers rejected) / 2), and the paired difference
(ii) - (iii) per trial. A query photo whose face is not found counts as not named; a stranger's, as
rejected. One thread: OMP_NUM_THREADS=1 is set before numpy loads and torch.set_num_threads(1).
Embeddings and camera copies are cached under --cache-dir (outside the repository): a first run detects
and embeds 14,225 images (2,845 val photos, each original and four copies), ~15 min on one CPU thread;
afterwards the 20 trials take ~20 s.

    PYTHONPATH=. .venv/bin/python bench/camera_support.py --cache-dir /tmp/faceshot-camera-support \\
        --lfw ../shared/data/lfw-dev --trials 20 --json /tmp/faceshot-camera-support/result.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cluster_unknowns import COPIES, write_camera_copies  # noqa: E402  (the camera transforms of point 7b)

from models.calibration import CAMERA_ONLY, WITH_CAMERA, shot_class  # noqa: E402
from models.evaluation.dataset_embeddings import embed_dataset, list_image_folder  # noqa: E402
from models.evaluation.openset import EmbeddedPhotos, evaluate_split, make_split  # noqa: E402
from models.identities import one_side  # noqa: E402
from models.operating_point import operating_point  # noqa: E402

CAMERAS = {"frame": 0, "jpeg": 1, "grey": 2, "blur": 3}  # name -> camera_copy kind (COPIES[kind] says which)
# condition -> (label, photos in the prototype, its capture class: the service's threshold for it)
CONDITIONS = {"i": ("badge", 1, None), "ii": ("badge + camera capture", 2, WITH_CAMERA),
              "iii": ("two badges", 2, None), "v": ("capture only (named from an event)", 1, CAMERA_ONLY)}
KEYS = ("dir@far=0.01", "known_named", "stranger_accept_rate", "balanced_accuracy", "rank1", "threshold",
        "known_queries", "stranger_queries", "failures_known", "failures_strangers")


def embed_views(lfw: str, capped: dict[str, list[str]], cache_dir: Path, spec: str, side: str = "val"):
    """(people, embeddings (5, N, D), found (5, N), calibration): view 0 the original, view 1 + kind the copies."""
    import torch

    from models.pipeline import FacePipeline

    torch.set_num_threads(1)
    pipe = FacePipeline.from_spec(spec, "cpu")
    copies = cache_dir / f"lfw-{side}-camera"
    listing = write_camera_copies(lfw, capped, copies)  # "<person>/<stem>_orig.png" and "_0".."_3"
    vectors, _ = embed_dataset(pipe, str(copies), listing, str(cache_dir), progress=True)
    dim = pipe.encoder.metadata.embedding_size
    people, rows = {}, []
    for person in sorted(capped):
        people[person] = []
        for rel in sorted(capped[person]):
            people[person].append(len(rows))
            rows.append([vectors[f"{person}/{Path(rel).stem}_{tag}.png"] for tag in ["orig", *range(len(COPIES))]])
    emb = np.zeros((1 + len(COPIES), len(rows), dim), np.float32)
    found = np.zeros((1 + len(COPIES), len(rows)), bool)
    for i, views in enumerate(rows):
        for v, x in enumerate(views):
            if x is not None:
                emb[v, i], found[v, i] = x, True
    return people, emb, found, pipe.encoder.calibration


def trial(people, emb, found, decide, k: int, seed: int) -> dict:
    """Every camera and condition on one draw of K people: camera -> condition -> openset figures."""
    n = emb.shape[1]
    split = make_split(EmbeddedPhotos(people, emb[0], found.all(axis=0)), k, 2, seed)
    badge1 = np.array([split.support[p][0] for p in split.known])
    second = np.array([split.support[p][1] for p in split.known])
    rng = np.random.default_rng(10_000 + seed)
    out = {}
    for camera in ["none", *CAMERAS, "mixed"]:
        if camera == "none":
            view = np.zeros(n, int)
        elif camera == "mixed":
            view = 1 + rng.integers(0, len(COPIES), n)
        else:
            view = np.full(n, 1 + CAMERAS[camera])
        seen = emb[view, np.arange(n)]  # every photo as the camera saw it
        ok = found[view, np.arange(n)]
        badges = seen.copy()
        badges[badge1], badges[second] = emb[0, badge1], emb[0, second]  # support photos as originals
        captured = badges.copy()
        captured[second] = seen[second]  # the second support photo as the camera saw it (an event's face)
        only = badges.copy()
        only[badge1] = seen[second]  # a person named from an event: their one photo is the capture
        support = {"i": badges, "ii": captured, "iii": badges, "v": only}
        out[camera] = {}
        for cond, (_, shots, capture) in CONDITIONS.items():
            if camera == "none" and cond in ("ii", "v"):
                continue  # no camera: a "capture" is the original, i.e. (iii)
            g = EmbeddedPhotos(people, support[cond], ok)
            r = evaluate_split(g, split, shots, decide(k, shots, capture))
            out[camera][cond] = {key: r[key] for key in KEYS}
    return out


def mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def table(runs: list[dict], args, cal_source: dict) -> str:
    pct = lambda m, s: f"{m:.1%} ± {s:.1%}"  # noqa: E731
    first = runs[0]["none"]["i"]
    lines = [
        f"{len(runs)} trials (draws of K={args.k} people; mean ± sd over trials); LFW-dev val side "
        f"({cal_source.get('identities_side', '?')} side calibrated); encoder {args.encoder}, one thread; "
        f"service threshold at target {args.target_far:.0%} (gallery-aware: shot class 1 for (i), 2 for (iii); "
        + ("capture classes ignored: shot class 2 for (ii), 1 for (v)); " if args.no_capture_classes
           else "capture classes with_camera for (ii), camera_only for (v)); ") +
        f"per trial ~{first['known_queries']} known queries, ~{first['stranger_queries']} stranger photos", "",
        "| queries seen as | support | DIR@FAR=1% | known named | strangers named | balanced | threshold "
        "| no face found (known / strangers) |",
        "|---|---|---|---|---|---|---|---|"]
    for camera in ["none", *CAMERAS, "mixed"]:
        for cond, (label, _, _) in CONDITIONS.items():
            if cond not in runs[0][camera]:
                continue
            f = {key: mean_sd([r[camera][cond][key] for r in runs]) for key in KEYS}
            lines.append(
                f"| {camera} | ({cond}) {label} | {pct(*f['dir@far=0.01'])} | {pct(*f['known_named'])} "
                f"| {pct(*f['stranger_accept_rate'])} | {pct(*f['balanced_accuracy'])} | {f['threshold'][0]:.4f} "
                f"| {f['failures_known'][0] / f['known_queries'][0]:.1%} / "
                f"{f['failures_strangers'][0] / f['stranger_queries'][0]:.1%} |")
    lines += ["", "Paired per trial: (ii) badge + camera capture minus (iii) two badges (mean ± sd; trials where "
              "(ii) is higher / lower)", "",
              "| queries seen as | Δ DIR@FAR=1% | Δ known named | Δ strangers named | Δ balanced |",
              "|---|---|---|---|---|"]
    for camera in [*CAMERAS, "mixed"]:
        cells = []
        for key in ("dir@far=0.01", "known_named", "stranger_accept_rate", "balanced_accuracy"):
            d = np.array([r[camera]["ii"][key] - r[camera]["iii"][key] for r in runs])
            m, s = mean_sd(d)
            cells.append(f"{m:+.1%} ± {s:.1%} ({int((d > 0).sum())}/{int((d < 0).sum())})")
        lines.append(f"| {camera} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=str(ROOT.parent / "shared/data/lfw-dev"))
    ap.add_argument("--cache-dir", type=Path, required=True, help="embeddings and camera copies (outside the repo)")
    ap.add_argument("--encoder", default="dlib")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--target-far", type=float, default=0.01)
    ap.add_argument("--cap", type=int, default=20, help="at most this many photos of one person")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-capture-classes", action="store_true",
                    help="ignore the calibration's capture classes (a capture held as an ordinary photo)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    lfw_people = list_image_folder(args.lfw)
    val = set(one_side(sorted(lfw_people), "val", 0.5, 0))
    rng = np.random.default_rng(0)  # bench/cluster_unknowns.py's draw of the capped photos
    capped = {p: [str(f) for f in rng.permutation(f)][: args.cap] for p, f in lfw_people.items() if p in val}
    people, emb, found, cal = embed_views(args.lfw, capped, args.cache_dir, args.encoder)
    t1 = time.perf_counter()
    cal_source = dict(cal.source)
    if cal_source.get("identities_side") not in (None, "train"):
        print(f"warning: the calibration was fitted on the {cal_source['identities_side']} side", file=sys.stderr)
    print(f"{len(people)} val-side people, {emb.shape[1]} photos; faces found: "
          + ", ".join(f"{name} {found[v].mean():.1%}" for v, name in enumerate(["original", *CAMERAS]))
          + f"; embedding {t1 - t0:.0f} s", file=sys.stderr)
    if args.no_capture_classes:
        cal.capture = None  # the rule before capture classes: a capture counted as one more photo

    def decide(k: int, shots: int, capture: str | None) -> float:
        """The service's threshold for K people like this one (models/operating_point.py)."""
        op = operating_point(cal, args.target_far, {shot_class(shots): k}, captured=k if capture else 0)
        return op.threshold_for(shots, capture)

    runs = [trial(people, emb, found, decide, args.k, seed) for seed in range(args.trials)]
    t2 = time.perf_counter()
    print(table(runs, args, cal_source))
    print(f"\nruntime: embedding (or cache) {t1 - t0:.0f} s, {args.trials} trials {t2 - t1:.1f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "runtime_s": {"embedding": t1 - t0, "trials": t2 - t1},
                                         "found": {name: float(found[v].mean())
                                                   for v, name in enumerate(["original", *CAMERAS])},
                                         "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
