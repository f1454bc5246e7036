"""``faceshot train | evaluate | export-encoder | prepare-faces``: the offline training commands' arguments and output.

``add_training_commands(subparsers)`` registers the commands on the ``faceshot``
entry point; ``python -m models.fewshot.cli ...`` runs them on their own.
Every command prints one JSON document (and writes it with ``--out``). The work
is done elsewhere (:mod:`.train`, :mod:`.evaluate`, :mod:`.export`,
:mod:`.datasets.face_chips`), imported by each command so ``--help`` loads no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import types
import typing
from pathlib import Path
from typing import Any

from models.errors import TrainingError
from models.fewshot.config import TrainConfig
from models.fewshot.factory import METHODS


def _json_out(result: Any, out: str | None) -> None:
    text = json.dumps(result, indent=1, default=str)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    print(text)


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (``--n-way``, ``--augment/--no-augment``…); unset flags leave the config alone."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # "float | None" -> float
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is list:
            kwargs["nargs"] = "+"
        elif hint in (int, float):
            kwargs["type"] = hint
        if f.name == "method":
            kwargs["choices"] = tuple(METHODS)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        kwargs["help"] = f"(default: {default})"
        parser.add_argument(flag, **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the JSON config file, then the flags given on the command line."""
    raw: dict[str, Any] = {}
    if getattr(args, "config", None):
        raw.update(json.loads(Path(args.config).read_text()))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    raw.update({k: v for k, v in vars(args).items() if k in names})
    if isinstance(raw.get("data"), str):
        raw["data"] = [raw["data"]]
    return TrainConfig.from_dict(raw)


def cmd_train(args: argparse.Namespace) -> int:
    from models.fewshot.train import train

    summary = train(config_from_args(args), progress=not args.quiet)
    last = summary["history"][-1] if summary["history"] else None
    _json_out({"out_dir": summary["out_dir"], "best": summary["best"], "last": last, "data": summary["data"]}, None)
    return 0


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models.fewshot.evaluate import evaluate_grid

    if not args.checkpoint and not (args.encoder and args.data):
        raise TrainingError("evaluate needs --checkpoint, or --encoder with --data (faces)")
    result = evaluate_grid(
        checkpoint=args.checkpoint,
        encoder=args.encoder,
        data=args.data,
        split=args.split,
        rotations=args.rotations,
        ways=args.ways,
        shots=args.shots,
        n_query=args.queries,
        n_episodes=args.episodes,
        seed=args.seed,
        lake=args.lake,
        eval_inner_steps=args.eval_inner_steps,
        fine_tuning_steps=args.fine_tuning_steps,
        enrolled=args.enrolled,
        open_set_shots=args.open_set_shots,
        open_set_seeds=args.open_set_seeds,
        threshold=args.threshold,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        device=args.device,
        amp=args.amp,
        on_result=lambda cell: print(json.dumps(cell), file=sys.stderr, flush=True),
        sources=getattr(args, "sources", None),
    )
    _json_out(result, args.out)
    return 0


# ---------------------------------------------------------------------------------------------
# export, prepare-faces
# ---------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from models.fewshot.export import export_from_training, export_untouched

    if args.checkpoint:
        ckpt = export_from_training(
            args.checkpoint,
            args.out,
            data=args.data,
            far=args.far,
            name=args.name,
            enrolled=args.enrolled,
            device=args.device,
        )
    elif args.encoder and args.data:
        ckpt = export_untouched(
            args.encoder,
            args.out,
            args.data,
            far=args.far,
            val_fraction=args.val_fraction,
            split_seed=args.split_seed,
            enrolled=args.enrolled,
            device=args.device,
            sources=getattr(args, "sources", None),
        )
    else:
        raise TrainingError("export-encoder needs --checkpoint, or --encoder with --data")
    meta = ckpt.metadata
    report = {
        "path": args.out,
        "name": meta.name,
        "architecture": meta.architecture,
        "content_hash": meta.content_hash,
        "threshold": dataclasses.asdict(meta.threshold),
    }
    _json_out(report, args.report)
    return 0


def cmd_prepare_faces(args: argparse.Namespace) -> int:
    from models.encoders.sources import resolve_checkpoint
    from models.fewshot.datasets.face_chips import prepare_face_chips

    meta = resolve_checkpoint(args.encoder, getattr(args, "sources", None)).metadata
    stats = prepare_face_chips(
        args.source,
        args.cache_dir,
        meta.alignment_template,
        meta.input_size,
        device=args.device or "cpu",
        workers=args.workers,
        image_format=args.format,
        quality=args.quality,
    )
    _json_out({"cache_dir": args.cache_dir, **stats}, None)
    return 0


# ---------------------------------------------------------------------------------------------
# The parsers
# ---------------------------------------------------------------------------------------------


def add_training_commands(subparsers) -> None:
    """Register ``train``, ``evaluate``, ``export-encoder`` and ``prepare-faces`` on an argparse sub-parser set."""
    p = subparsers.add_parser(
        "train", help="meta-train a few-shot method (Omniglot or faces)",
        description="Example: faceshot train --dataset omniglot --data ../shared/data/omniglot --method protonet "
                    "--ways 5 --shots 1 --epochs 2 --out-dir runs/protonet")
    p.add_argument("--config", help="JSON file of training settings (flags override it; default: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines (default: show them)")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "evaluate", help="N-way K-shot accuracy with 95%% intervals, Lake's one-shot runs, open-set figures",
        description="Example: faceshot evaluate --encoder dlib --data cache/chips --ways 5 --shots 1 --enrolled 50",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a training checkpoint (last.pt / best.pt)")
    src.add_argument("--encoder", help="an untouched encoder instead (dlib, facenet-vggface2, a .pt): faces only")
    p.add_argument("--data", nargs="+", help="dataset folder(s); default: those the checkpoint was trained on")
    p.add_argument(
        "--split", choices=("test", "val"), default="test", help="omniglot: which held-out characters (default: test)"
    )
    p.add_argument(
        "--rotations", action="store_true", help="omniglot: also rotated test characters as classes (default: off)"
    )
    p.add_argument("--ways", type=int, nargs="+", default=[5, 20], help="N of the N-way episodes (default: 5 20)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="K of the K-shot episodes (default: 1 5)")
    p.add_argument("--queries", type=int, default=15, help="query items per class and episode (default: 15)")
    p.add_argument("--episodes", type=int, default=600, help="episodes per (N, K) figure (default: 600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (default: 0)")
    p.add_argument(
        "--lake", help="one-shot-classification folder (run01..run20) for Lake's 20-way one-shot error (default: none)"
    )
    p.add_argument("--eval-inner-steps", type=int, help="MAML: inner steps at test time (default: the checkpoint's)")
    p.add_argument("--fine-tuning-steps", type=int, help="finetune: steps at test time (default: the checkpoint's)")
    p.add_argument(
        "--enrolled",
        type=int,
        default=0,
        help="faces: open-set protocol with this many enrolled people, e.g. 50 (default: 0, no open-set figures)",
    )
    p.add_argument(
        "--open-set-shots", type=int, nargs="+", default=[1, 2], help="open set: enrolment photos each (default: 1 2)"
    )
    p.add_argument("--open-set-seeds", type=int, default=5, help="open set: seeds averaged over (default: 5)")
    p.add_argument("--threshold", type=float, help="faces: decision threshold (default: the encoder's own)")
    p.add_argument("--val-fraction", type=float, default=0.3, help="with --encoder: the identity split (default: 0.3)")
    p.add_argument("--split-seed", type=int, default=0, help="with --encoder: seed of the identity split (default: 0)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when there is one, else cpu)")
    p.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA (default: on)"
    )
    p.add_argument("--out", help="also write the JSON result here (default: print only)")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "export-encoder", help="write a service encoder checkpoint with a threshold calibrated on validation "
        "identities", description="Example: faceshot export-encoder --checkpoint runs/contrastive-last/last.pt "
                                  "--far 0.01 --out runs/contrastive-last/encoder.pt",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a face training checkpoint")
    src.add_argument("--encoder", help="recalibrate an untouched encoder (needs --data)")
    p.add_argument("--data", help="photo folder or chip cache (default: the training run's)")
    p.add_argument(
        "--far", type=float, default=0.01, help="false-accept rate of strangers the threshold admits (default: 0.01)"
    )
    p.add_argument(
        "--enrolled", type=int, default=50, help="calibration: people enrolled in the open-set protocol (default: 50)"
    )
    p.add_argument(
        "--name", help="name of the exported encoder (default: <encoder>-finetuned; with --encoder, its own name)"
    )
    p.add_argument("--val-fraction", type=float, default=0.3, help="with --encoder: the identity split (default: 0.3)")
    p.add_argument("--split-seed", type=int, default=0, help="with --encoder: seed of the identity split (default: 0)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when there is one, else cpu)")
    p.add_argument("--out", required=True, help="where to write the encoder checkpoint")
    p.add_argument("--report", help="also write the JSON summary here (default: print only)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "prepare-faces", help="detect + align every photo of an image folder once into a chip cache (resumable)",
        description="Example: faceshot prepare-faces ../shared/data/lfw-dev --cache-dir cache/chips --encoder dlib",
    )
    p.add_argument("source", help="photo folder, one sub-folder per person")
    p.add_argument("--cache-dir", required=True, help="where the aligned chips go (and are found again on a rerun)")
    p.add_argument("--encoder", default="dlib", help="whose alignment template and input size to use (default: dlib)")
    p.add_argument("--workers", type=int, default=1, help="detector processes (CPU) (default: 1)")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="chip image format (default: png)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default: 95)")
    p.add_argument("--device", help="where the face detector runs (default: cpu)")
    p.set_defaults(func=cmd_prepare_faces)


def main(argv: list[str] | None = None) -> int:
    from models.errors import FaceshotError

    parser = argparse.ArgumentParser(prog="faceshot", description="faceshot offline few-shot training")
    sub = parser.add_subparsers(dest="command", required=True)
    add_training_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except FaceshotError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
