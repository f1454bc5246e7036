"""Meta-training: one loop for every method, on Omniglot characters or aligned face chips.

``train(config)`` builds the data splits, the injected backbone and the method,
then runs epochs of episodes (or P x K batches for the pair and triplet
losses). On CUDA it uses bf16 autocast (fp16 with a gradient scaler where bf16
is missing); after every epoch it measures validation accuracy and writes
``last.pt`` (and ``best.pt`` when validation improved), from which
``resume=True`` continues: samplers are seeded by (seed, epoch), so a resumed
run sees the same episodes it would have seen.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..architectures import build
from ..checkpoint import EncoderMetadata
from ..device import pick_device
from ..errors import TrainingError
from .backbones import Conv4, EncoderBackbone, feature_shape
from .base import FewShotClassifier
from .data import (
    TensorImageDataset,
    augment_characters,
    augment_faces,
    load_omniglot,
    split_identities,
    split_omniglot,
)
from .samplers import EpisodeSampler, PKBatchSampler, split_episode

log = logging.getLogger(__name__)

TRAIN_FORMAT = "faceshot-fewshot-train/1"
METHODS = ("protonet", "matching", "relation", "siamese", "triplet", "contrastive", "maml", "fomaml", "finetune")


@dataclass
class TrainConfig:
    """Every knob of a training run; a JSON config file and command-line flags set these names."""

    method: str = "protonet"
    dataset: str = "omniglot"  # "omniglot" | "faces"
    data: list[str] = field(default_factory=list)  # omniglot: background folders; faces: photo folder (or chip cache)
    cache_dir: str | None = None  # faces: where aligned chips are cached (default: beside out_dir)
    prepare_workers: int = 4
    out_dir: str = "artifacts/fewshot"
    # splits
    split_seed: int = 0
    split_by: str = "character"  # omniglot: "character" | "alphabet"
    test_fraction: float = 0.25  # omniglot
    val_fraction: float | None = None  # omniglot: of all characters (0.1); faces: of identities, hash rule (0.3)
    rotations: bool = True  # omniglot: 90-degree rotations as new training classes
    augment: bool = False
    min_images: int = 1
    # model
    backbone: str = "conv4"  # "conv4" | "dlib" | "facenet-vggface2" | path to an encoder checkpoint
    normalize: bool = False  # protonet: L2-normalise features (faces)
    scale: float = 1.0  # protonet / finetune / metric: logit scale on distances
    learn_scale: bool = False
    trainable: str = "all"  # face encoders: "all" | "last" (only the final projection learns)
    margin: float = 0.2  # triplet / contrastive (contrastive: different people pushed beyond it)
    pos_margin: float = 0.0  # contrastive: same-person pairs pulled inside it
    miner: str = "semi_hard"  # "batch_hard" | "semi_hard" | "all"
    full_context: bool = False  # matching networks
    inner_lr: float = 0.4  # maml
    inner_steps: int = 1
    eval_inner_steps: int = 3
    maml_head: str = "learned"  # "learned" | "zero"
    fine_tuning_steps: int = 25  # finetune (test time)
    entropy_weight: float = 1.0
    # episodes / batches
    n_way: int = 5
    n_shot: int = 1
    n_query: int = 5
    meta_batch: int = 1  # episodes per optimiser step (MAML's meta-batch)
    p: int = 32  # P x K batches (siamese, triplet, contrastive)
    k: int = 4
    steps_per_epoch: int = 500
    epochs: int = 10
    # optimisation
    optimizer: str = "adam"  # "adam" | "sgd" (momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_step_epochs: int = 0  # halve the learning rate every this many epochs (0: never)
    grad_clip: float = 0.0
    # validation
    val_n_way: int = 5
    val_n_shot: int = 1
    val_n_query: int = 5
    val_episodes: int = 200
    # run
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # "auto" (on with CUDA) | "bf16" | "fp16" | "off"
    resume: bool = False
    keep_epoch_checkpoints: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TrainingError(f"Unknown training settings: {', '.join(unknown)}")
        return cls(**raw)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise TrainingError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.dataset not in ("omniglot", "faces"):
            raise TrainingError("dataset must be 'omniglot' or 'faces'")
        if not self.data:
            raise TrainingError("data: give the dataset folder(s)")
        choices = {"miner": ("batch_hard", "semi_hard", "all"), "maml_head": ("learned", "zero"), "split_by": ("character", "alphabet"), "amp": ("auto", "bf16", "fp16", "off"), "trainable": ("all", "last"), "optimizer": ("adam", "sgd")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainingError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if (self.dataset == "omniglot") != (self.backbone == "conv4"):
            raise TrainingError("Omniglot trains the conv4 backbone; faces train a face encoder (dlib, facenet-…, a checkpoint)")
        if self.trainable == "last" and self.backbone == "conv4":
            raise TrainingError("trainable='last' is for face encoders: a Conv-4 learns from scratch")
        if self.method in ("maml", "fomaml") and self.maml_head == "learned":
            self.val_n_way = self.n_way  # a learned N-way head only classifies N ways
        if self.val_fraction is None:
            self.val_fraction = 0.1 if self.dataset == "omniglot" else 0.3


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class Splits:
    train: TensorImageDataset
    val: TensorImageDataset
    test: TensorImageDataset | None
    names: dict[str, list[str]]
    summary: dict[str, Any]


def load_splits(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None = None) -> Splits:
    """The train / validation (/ test) datasets a config describes, each an identity-disjoint set of classes."""
    if cfg.dataset == "omniglot":
        full = load_omniglot(cfg.data)
        names = split_omniglot(
            full.base_class_names, test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction, seed=cfg.split_seed, by=cfg.split_by
        )
        train = full.subset_classes(names["train"])
        train.rotations = cfg.rotations
        summary = {
            "dataset": "omniglot",
            "roots": [str(Path(r)) for r in cfg.data],
            "characters": {k: len(v) for k, v in names.items()},
            "images": len(full),
            "split_rule": f"split_omniglot(by={cfg.split_by!r}, test={cfg.test_fraction}, val={cfg.val_fraction}, seed={cfg.split_seed})",
            "rotations_as_classes": cfg.rotations,
        }
        return Splits(train, full.subset_classes(names["val"]), full.subset_classes(names["test"]), names, summary)
    if encoder_metadata is None:
        raise ValueError("face data needs the encoder's metadata (alignment template, input size)")
    chips = face_chips(cfg, encoder_metadata)
    from .data import ImageFolderDataset

    folder = ImageFolderDataset(chips, min_images=cfg.min_images)
    train_names, val_names = split_identities(folder.classes, cfg.val_fraction, cfg.split_seed)
    full = folder.load_tensors()
    summary = {
        "dataset": "faces",
        "source": [str(Path(r)) for r in cfg.data],
        "identities": {"train": len(train_names), "val": len(val_names)},
        "images": len(full),
        "split_rule": f"split_identities(val_fraction={cfg.val_fraction}, seed={cfg.split_seed}): sha256('<seed>:<name>') < fraction",
    }
    return Splits(full.subset_classes(train_names), full.subset_classes(val_names), None, {"train": train_names, "val": val_names}, summary)


def face_chips(cfg: TrainConfig, metadata: EncoderMetadata) -> Path:
    """Folder of aligned chips for ``cfg.data``: the folder itself if it is a chip cache, else a prepared cache."""
    from .data import CACHE_META, prepare_face_chips, template_key

    source = Path(cfg.data[0])
    if (source / CACHE_META).exists():
        meta = json.loads((source / CACHE_META).read_text())
        if template_key(meta["template"], meta["size"]) != template_key(metadata.alignment_template, metadata.input_size):
            raise TrainingError(f"{source} holds chips aligned for another encoder template; point --data at the photos instead.")
        return source
    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path("var/cache/faces") / (
        f"{source.name}-{metadata.architecture}-{template_key(metadata.alignment_template, metadata.input_size)}"
    )
    stats = prepare_face_chips(source, cache, metadata.alignment_template, metadata.input_size, workers=cfg.prepare_workers)
    log.info("face chips in %s: %s", cache, stats)
    return cache


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def build_backbone(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None = None) -> tuple[nn.Module, EncoderMetadata | None]:
    """The injected backbone: a fresh Conv-4, or a face encoder (pretrained weights, or bare when metadata is given)."""
    if cfg.backbone == "conv4":
        if cfg.method == "relation":
            return Conv4(in_channels=1, pooled_blocks=2, flatten=False), None
        return Conv4(in_channels=1), None
    if encoder_metadata is not None:  # rebuilding from a training checkpoint: weights come from its state dict
        return EncoderBackbone(build(encoder_metadata.architecture), encoder_metadata), encoder_metadata
    from ..sources import resolve_checkpoint

    checkpoint = resolve_checkpoint(cfg.backbone)
    return EncoderBackbone.from_checkpoint(checkpoint), checkpoint.metadata


def build_method(cfg: TrainConfig, backbone: nn.Module, input_shape: tuple[int, ...]) -> FewShotClassifier:
    from . import methods as m

    shape = feature_shape(backbone, input_shape)
    dim = int(torch.tensor(shape).prod())
    if cfg.method == "protonet":
        return m.PrototypicalNetworks(backbone, normalize=cfg.normalize, scale=cfg.scale, learn_scale=cfg.learn_scale)
    if cfg.method == "matching":
        return m.MatchingNetworks(backbone, dim, full_context=cfg.full_context)
    if cfg.method == "relation":
        return m.RelationNetworks(backbone, shape)
    if cfg.method == "siamese":
        return m.SiameseNetworks(backbone, dim)
    if cfg.method in ("triplet", "contrastive"):
        return m.MetricLearning(backbone, loss=cfg.method, miner=cfg.miner, margin=cfg.margin, pos_margin=cfg.pos_margin, scale=cfg.scale)
    if cfg.method in ("maml", "fomaml"):
        return m.MAML(
            backbone,
            dim,
            cfg.n_way,
            inner_lr=cfg.inner_lr,
            inner_steps=cfg.inner_steps,
            eval_inner_steps=cfg.eval_inner_steps,
            first_order=cfg.method == "fomaml",
            head=cfg.maml_head,
        )
    if cfg.method == "finetune":
        return m.Finetune(backbone, fine_tuning_steps=cfg.fine_tuning_steps, entropy_weight=cfg.entropy_weight, scale=cfg.scale)
    raise ValueError(f"unknown method {cfg.method!r}")


def input_shape_of(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None) -> tuple[int, int, int]:
    if cfg.dataset == "omniglot":
        return (1, 28, 28)
    assert encoder_metadata is not None
    return (3, encoder_metadata.input_size, encoder_metadata.input_size)


def load_trained(path: str | Path, device: str | torch.device | None = None) -> tuple[FewShotClassifier, TrainConfig, dict]:
    """A method as a training checkpoint left it (weights, config, encoder metadata), in eval mode."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TRAIN_FORMAT:
        raise TrainingError(f"{path} is not a faceshot training checkpoint ({TRAIN_FORMAT})")
    cfg = TrainConfig.from_dict(payload["config"])
    metadata = EncoderMetadata.from_dict(payload["encoder_metadata"]) if payload.get("encoder_metadata") else None
    backbone, metadata = build_backbone(cfg, metadata)
    method = build_method(cfg, backbone, input_shape_of(cfg, metadata))
    method.load_state_dict(payload["model"])
    return method.to(pick_device(device)).eval(), cfg, payload


# ---------------------------------------------------------------------------------------------
# Loop
# ---------------------------------------------------------------------------------------------


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp in ("bf16", "auto"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise TrainingError("amp must be auto, bf16, fp16 or off")


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def train(cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a training; returns the summary also written to ``out_dir/summary.json``."""
    from tqdm import tqdm

    from .evaluate import evaluate_episodes

    cfg.validate()
    device = pick_device(None if cfg.device == "auto" else cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    backbone, encoder_metadata = build_backbone(cfg)
    splits = load_splits(cfg, encoder_metadata)
    train_set, val_set = splits.train.to(device), splits.val.to(device)
    if cfg.trainable == "last":
        log.info("training only %s", ", ".join(backbone.train_last_layer_only()))
    method = build_method(cfg, backbone, input_shape_of(cfg, encoder_metadata)).to(device)
    trainable = [p for p in method.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(trainable, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_step_epochs, 0.5) if cfg.lr_step_epochs else None
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    augment_gen = torch.Generator(device=device).manual_seed(cfg.seed)

    history: list[dict] = []
    best = {"epoch": -1, "val_accuracy": -1.0}
    start_epoch = 0
    last_path = out / "last.pt"
    if cfg.resume and last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        augment_gen.set_state(state["augment_rng"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        log.info("resuming %s at epoch %d", out, start_epoch)

    episodic = method.training_mode == "episodic"
    if episodic:
        sampler = EpisodeSampler(train_set.labels, cfg.n_way, cfg.n_shot, cfg.n_query, cfg.steps_per_epoch * cfg.meta_batch, seed=cfg.seed)
    else:
        sampler = PKBatchSampler(train_set.labels, cfg.p, cfg.k, cfg.steps_per_epoch, seed=cfg.seed)

    def augment(x: torch.Tensor) -> torch.Tensor:
        if not cfg.augment:
            return x
        return augment_faces(x, generator=augment_gen) if cfg.dataset == "faces" else augment_characters(x, generator=augment_gen)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    for epoch in range(start_epoch, cfg.epochs):
        method.train()
        sampler.set_epoch(epoch)
        started = time.perf_counter()
        losses, accuracies = [], []
        batches = iter(sampler)
        bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for _ in bar:
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for _ in range(cfg.meta_batch if episodic else 1):
                x, y = train_set.gather(next(batches))
                x = augment(x)
                with autocast():
                    if episodic:
                        s, sl, q, ql = split_episode(x, cfg.n_way, cfg.n_shot, cfg.n_query)
                        loss, scores = method.episode_loss(s, sl, q, ql)
                        accuracies.append((scores.argmax(1) == ql).float().mean().item())
                    else:
                        loss = method.batch_loss(x, y)
                loss = loss / (cfg.meta_batch if episodic else 1)
                (scaler.scale(loss) if scaler else loss).backward()
                step_loss += loss.item()
            if scaler:
                scaler.unscale_(optimizer)
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(method.parameters(), cfg.grad_clip)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            losses.append(step_loss)
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        if scheduler is not None:
            scheduler.step()
        val = evaluate_episodes(
            method, val_set, cfg.val_n_way, cfg.val_n_shot, cfg.val_n_query, cfg.val_episodes, seed=cfg.seed, amp_dtype=amp_dtype
        )
        record = {
            "epoch": epoch,
            "loss": sum(losses) / max(len(losses), 1),
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "train_accuracy": sum(accuracies) / len(accuracies) if accuracies else None,
            "val_accuracy": val["accuracy"],
            "val_ci95": val["ci95"],
            "seconds": round(time.perf_counter() - started, 2),
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(record)
        log.info("epoch %d: %s", epoch, record)
        if progress:
            print(json.dumps(record), flush=True)
        improved = val["accuracy"] > best["val_accuracy"]
        if improved:
            best = {"epoch": epoch, "val_accuracy": val["accuracy"]}
        payload = {
            "format": TRAIN_FORMAT,
            "config": asdict(cfg),
            "epoch": epoch,
            "model": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None,
            "scaler": scaler.state_dict() if scaler else None,
            "augment_rng": augment_gen.get_state().cpu(),
            "history": history,
            "best": best,
            "encoder_metadata": encoder_metadata.to_dict() if encoder_metadata else None,
            "splits": splits.names,
            "data_summary": splits.summary,
        }
        _save(last_path, payload)
        if improved:
            shutil.copyfile(last_path, out / "best.pt")
        if cfg.keep_epoch_checkpoints:
            shutil.copyfile(last_path, out / f"epoch-{epoch + 1:03d}.pt")
    summary = {"out_dir": str(out), "best": best, "history": history, "data": splits.summary, "config": asdict(cfg)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
