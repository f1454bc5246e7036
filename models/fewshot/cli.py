"""``faceshot train | evaluate | export | prepare-faces``: offline meta-training from the command line.

``add_training_commands(subparsers)`` registers the commands on the ``faceshot``
entry point; ``python -m models.fewshot.cli ...`` runs them on their own.
Every command prints one JSON document (and writes it with ``--out``).
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

from ..errors import TrainingError
from .train import METHODS, TrainConfig


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
            kwargs["choices"] = METHODS
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
    from .train import train

    summary = train(config_from_args(args), progress=not args.quiet)
    _json_out({"out_dir": summary["out_dir"], "best": summary["best"], "last": summary["history"][-1] if summary["history"] else None, "data": summary["data"]}, None)
    return 0


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..device import pick_device
    from .data import ImageFolderDataset, load_lake_runs, split_identities
    from .evaluate import embed_dataset, evaluate_episodes, evaluate_lake, open_set_report

    device = pick_device(args.device)
    amp_dtype = torch.bfloat16 if device.type == "cuda" and args.amp else None
    result: dict[str, Any] = {}
    if args.checkpoint:
        from .train import load_splits, load_trained

        method, cfg, payload = load_trained(args.checkpoint, device)
        if args.data:
            cfg.data = args.data
        for key in ("eval_inner_steps", "fine_tuning_steps"):
            if getattr(args, key) is not None and hasattr(method, key):
                setattr(method, key, getattr(args, key))
        result["checkpoint"] = {"path": args.checkpoint, "method": cfg.method, "epoch": payload["epoch"] + 1, "best": payload.get("best")}
        if cfg.dataset == "omniglot":
            splits = load_splits(cfg)
        else:
            metadata = method.backbone.metadata
            from .train import face_chips

            chips = face_chips(cfg, metadata)
            splits = None
            val = ImageFolderDataset(chips, classes=payload["splits"]["val"]).load_tensors()
    else:
        if not args.encoder or not args.data:
            raise TrainingError("evaluate needs --checkpoint, or --encoder with --data (faces)")
        from ..sources import resolve_checkpoint
        from .backbones import EncoderBackbone
        from .methods import PrototypicalNetworks
        from .train import face_chips

        backbone = EncoderBackbone.from_checkpoint(resolve_checkpoint(args.encoder))
        method = PrototypicalNetworks(backbone, normalize=True, scale=10.0).to(device).eval()
        cfg = TrainConfig(dataset="faces", data=args.data, val_fraction=args.val_fraction, split_seed=args.split_seed)
        chips = face_chips(cfg, backbone.metadata)
        folder = ImageFolderDataset(chips)
        _, val_names = split_identities(folder.classes, cfg.val_fraction, cfg.split_seed)
        val = ImageFolderDataset(chips, classes=val_names).load_tensors()
        splits = None
        result["encoder"] = {"spec": args.encoder, "name": backbone.metadata.name, "content_hash": backbone.metadata.content_hash}

    if cfg.dataset == "omniglot":
        test = (splits.test if args.split == "test" else splits.val).to(device)
        test.rotations = args.rotations
        result["split"] = {"name": args.split, "classes": test.num_classes, "images": len(test), "rule": splits.summary["split_rule"]}
        episodic = []
        for n_way in args.ways:
            for n_shot in args.shots:
                try:
                    episodic.append(
                        evaluate_episodes(method, test, n_way, n_shot, args.queries, args.episodes, seed=args.seed, amp_dtype=amp_dtype)
                    )
                except ValueError as exc:  # e.g. a 5-way MAML head asked for 20 ways
                    episodic.append({"n_way": n_way, "n_shot": n_shot, "error": str(exc)})
                print(json.dumps(episodic[-1]), file=sys.stderr, flush=True)
        result["episodes"] = episodic
        if args.lake:
            try:
                result["lake"] = evaluate_lake(method, load_lake_runs(args.lake))
            except ValueError as exc:  # a learned 5-way MAML head cannot take Lake's 20 ways
                result["lake"] = {"error": str(exc)}
    else:
        val = val.to(device)
        result["validation"] = {"identities": len(val.base_class_names), "images": len(val)}
        episodic = []
        for n_way in args.ways:
            for n_shot in args.shots:
                try:
                    episodic.append(evaluate_episodes(method, val, n_way, n_shot, args.queries, args.episodes, seed=args.seed, amp_dtype=amp_dtype))
                except ValueError as exc:
                    episodic.append({"n_way": n_way, "n_shot": n_shot, "error": str(exc)})
        result["episodes"] = episodic
        if args.enrolled:
            backbone = method.backbone.eval()
            embeddings, labels = embed_dataset(backbone, val)
            known = backbone.metadata.threshold
            threshold: Any = args.threshold
            if threshold is None:
                threshold = {s: known.for_support(s) for s in args.open_set_shots}
            result["open_set"] = open_set_report(
                embeddings, labels, val.base_class_names, enrolled=args.enrolled, shots=args.open_set_shots, seeds=args.open_set_seeds, threshold=threshold
            )
            result["open_set"]["threshold"] = threshold
    _json_out(result, args.out)
    return 0


# ---------------------------------------------------------------------------------------------
# export, prepare-faces
# ---------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_from_training, export_untouched

    if args.checkpoint:
        ckpt = export_from_training(args.checkpoint, args.out, data=args.data, far=args.far, name=args.name, enrolled=args.enrolled, device=args.device)
    elif args.encoder and args.data:
        ckpt = export_untouched(args.encoder, args.out, args.data, far=args.far, val_fraction=args.val_fraction, split_seed=args.split_seed, enrolled=args.enrolled, device=args.device)
    else:
        raise TrainingError("export needs --checkpoint, or --encoder with --data")
    meta = ckpt.metadata
    report = {"path": args.out, "name": meta.name, "architecture": meta.architecture, "content_hash": meta.content_hash, "threshold": dataclasses.asdict(meta.threshold)}
    _json_out(report, args.report)
    return 0


def cmd_prepare_faces(args: argparse.Namespace) -> int:
    from ..sources import resolve_checkpoint
    from .data import prepare_face_chips

    meta = resolve_checkpoint(args.encoder).metadata
    stats = prepare_face_chips(
        args.source, args.cache_dir, meta.alignment_template, meta.input_size, device=args.device or "cpu", workers=args.workers, image_format=args.format, quality=args.quality
    )
    _json_out({"cache_dir": args.cache_dir, **stats}, None)
    return 0


def add_training_commands(subparsers) -> None:
    """Register ``train``, ``evaluate``, ``export`` and ``prepare-faces`` on an argparse sub-parser set."""
    p = subparsers.add_parser("train", help="meta-train a few-shot method (Omniglot or faces)")
    p.add_argument("--config", help="JSON file of training settings (flags override it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("evaluate", help="N-way K-shot accuracy with 95%% intervals, Lake's one-shot runs, open-set figures")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a training checkpoint (last.pt / best.pt)")
    src.add_argument("--encoder", help="an untouched encoder instead (dlib, facenet-vggface2, a .pt): faces only")
    p.add_argument("--data", nargs="+", help="dataset folder(s); default: those the checkpoint was trained on")
    p.add_argument("--split", choices=("test", "val"), default="test", help="omniglot: which held-out characters")
    p.add_argument("--rotations", action="store_true", help="omniglot: also rotated test characters as classes")
    p.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    p.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    p.add_argument("--queries", type=int, default=15)
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lake", help="one-shot-classification folder (run01..run20) for Lake's 20-way one-shot error")
    p.add_argument("--eval-inner-steps", type=int, help="MAML: inner steps at test time")
    p.add_argument("--fine-tuning-steps", type=int, help="finetune: steps at test time")
    p.add_argument("--enrolled", type=int, default=0, help="faces: open-set protocol with this many enrolled people (e.g. 50)")
    p.add_argument("--open-set-shots", type=int, nargs="+", default=[1, 2])
    p.add_argument("--open-set-seeds", type=int, default=5)
    p.add_argument("--threshold", type=float, help="faces: decision threshold (default: the encoder's own)")
    p.add_argument("--val-fraction", type=float, default=0.3, help="with --encoder: the identity split")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA")
    p.add_argument("--out", help="also write the JSON result here")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("export", help="write a service encoder checkpoint with a threshold calibrated on validation identities")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a face training checkpoint")
    src.add_argument("--encoder", help="recalibrate an untouched encoder (needs --data)")
    p.add_argument("--data", help="photo folder or chip cache (default: the training run's)")
    p.add_argument("--far", type=float, default=0.01, help="false-accept rate of strangers the threshold admits")
    p.add_argument("--enrolled", type=int, default=50)
    p.add_argument("--name")
    p.add_argument("--val-fraction", type=float, default=0.3)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--out", required=True, help="where to write the encoder checkpoint")
    p.add_argument("--report", help="also write the JSON summary here")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("prepare-faces", help="detect + align every photo of an image folder once into a chip cache (resumable)")
    p.add_argument("source")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--encoder", default="dlib", help="whose alignment template and input size to use")
    p.add_argument("--workers", type=int, default=1, help="detector processes (CPU)")
    p.add_argument("--format", choices=("png", "jpg"), default="png")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    p.add_argument("--device")
    p.set_defaults(func=cmd_prepare_faces)


def main(argv: list[str] | None = None) -> int:
    from ..errors import FaceshotError

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
