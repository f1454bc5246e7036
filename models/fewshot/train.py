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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.device import pick_device
from models.encoders.checkpoint import EncoderMetadata
from models.errors import TrainingError
from models.fewshot.augment import augment_characters, augment_faces
from models.fewshot.base import FewShotClassifier
from models.fewshot.config import TrainConfig
from models.fewshot.evaluate import evaluate_episodes
from models.fewshot.factory import build_backbone, build_method, check_config, input_shape_of
from models.fewshot.samplers import EpisodeSampler, PKBatchSampler, split_episode
from models.fewshot.splits import Splits, load_splits
from models.fewshot.trained import TRAIN_FORMAT

log = logging.getLogger(__name__)



@dataclass
class _Run:
    """What a training carries from epoch to epoch; a checkpoint saves all of it."""

    cfg: TrainConfig
    device: torch.device
    out: Path
    splits: Splits
    encoder_metadata: EncoderMetadata | None
    method: FewShotClassifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.StepLR | None
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    augment_gen: torch.Generator
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": -1, "val_accuracy": -1.0})
    start_epoch: int = 0

    @property
    def episodic(self) -> bool:
        return self.method.training_mode == "episodic"

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"


def train(cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a training; returns the summary also written to ``out_dir/summary.json``."""
    device, out = _start(cfg)
    backbone, encoder_metadata = build_backbone(cfg)
    splits = _prepare_data(cfg, encoder_metadata, device)
    method = _build_model(cfg, backbone, encoder_metadata, device)
    optimizer, scheduler = _make_optimizer(cfg, method)
    amp_dtype = _amp_dtype(cfg, device)
    run = _Run(
        cfg,
        device,
        out,
        splits,
        encoder_metadata,
        method,
        optimizer,
        scheduler,
        amp_dtype,
        scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
        augment_gen=torch.Generator(device=device).manual_seed(cfg.seed),
    )
    if cfg.resume and run.last_path.exists():
        _resume(run)
    sampler = _make_sampler(run)
    for epoch in range(run.start_epoch, cfg.epochs):
        started = time.perf_counter()
        losses, accuracies = _run_epoch(run, sampler, epoch, progress=progress)
        val = _validate(run)
        record = _epoch_record(run, epoch, losses, accuracies, val, seconds=time.perf_counter() - started)
        improved = _log_epoch(run, record, progress=progress)
        _save_checkpoint(run, epoch, improved)
    return _write_summary(run)


# ---------------------------------------------------------------------------------------------
# Steps of a run, in the order train() takes them
# ---------------------------------------------------------------------------------------------


def _start(cfg: TrainConfig) -> tuple[torch.device, Path]:
    """Check the settings, pick the device, make out_dir and seed torch, so the same config builds the same model."""
    check_config(cfg)
    device = pick_device(None if cfg.device == "auto" else cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device, out


def _prepare_data(cfg: TrainConfig, encoder_metadata: EncoderMetadata | None, device: torch.device) -> Splits:
    """Load the splits and put training and validation images on the device, where every batch is gathered."""
    splits = load_splits(cfg, encoder_metadata)
    splits.train.to(device)
    splits.val.to(device)
    return splits


def _build_model(
    cfg: TrainConfig, backbone: nn.Module, encoder_metadata: EncoderMetadata | None, device: torch.device
) -> FewShotClassifier:
    """Freeze what ``trainable`` leaves fixed, then wrap the backbone in the method, on the device."""
    if cfg.trainable == "last":
        log.info("training only %s", ", ".join(backbone.train_last_layer_only()))
    return build_method(cfg, backbone, input_shape_of(cfg, encoder_metadata)).to(device)


def _make_optimizer(
    cfg: TrainConfig, method: FewShotClassifier
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR | None]:
    """Adam or SGD over the parameters that learn, and the step schedule that halves the learning rate."""
    trainable = [p for p in method.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            trainable, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_step_epochs, 0.5) if cfg.lr_step_epochs else None
    return optimizer, scheduler


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA where it exists (else fp16), none on the CPU or with amp off."""
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp in ("bf16", "auto"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise TrainingError("amp must be auto, bf16, fp16 or off")


def _resume(run: _Run) -> None:
    """Restore weights, optimiser, schedule, scaler, augmentation RNG and history from last.pt, to continue exactly."""
    state = torch.load(run.last_path, map_location="cpu", weights_only=True)
    run.method.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and state.get("scheduler"):
        run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.augment_gen.set_state(state["augment_rng"])
    run.history, run.best, run.start_epoch = state["history"], state["best"], state["epoch"] + 1
    log.info("resuming %s at epoch %d", run.out, run.start_epoch)


def _make_sampler(run: _Run) -> EpisodeSampler | PKBatchSampler:
    """Episodes for episodic methods, P x K batches for the pair and triplet losses, seeded by (seed, epoch)."""
    cfg, labels = run.cfg, run.splits.train.labels
    if run.episodic:
        n_episodes = cfg.steps_per_epoch * cfg.meta_batch
        return EpisodeSampler(labels, cfg.n_way, cfg.n_shot, cfg.n_query, n_episodes, seed=cfg.seed)
    return PKBatchSampler(labels, cfg.p, cfg.k, cfg.steps_per_epoch, seed=cfg.seed)


def _run_epoch(
    run: _Run, sampler: EpisodeSampler | PKBatchSampler, epoch: int, *, progress: bool
) -> tuple[list[float], list[float]]:
    """``steps_per_epoch`` optimiser steps on this epoch's batches; returns (step losses, episode accuracies)."""
    from tqdm import tqdm

    cfg = run.cfg
    run.method.train()
    sampler.set_epoch(epoch)
    losses: list[float] = []
    accuracies: list[float] = []
    batches = iter(sampler)
    bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
    for _ in bar:
        losses.append(_optimizer_step(run, batches, accuracies))
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
    if run.scheduler is not None:
        run.scheduler.step()
    return losses, accuracies


def _optimizer_step(run: _Run, batches: Iterator[list[int]], accuracies: list[float]) -> float:
    """One update: ``meta_batch`` episodes (or one P x K batch) forward and backward, clipped, applied; its loss."""
    cfg, method, optimizer, scaler = run.cfg, run.method, run.optimizer, run.scaler
    per_step = cfg.meta_batch if run.episodic else 1
    optimizer.zero_grad(set_to_none=True)
    step_loss = 0.0
    for _ in range(per_step):
        x, y = run.splits.train.gather(next(batches))
        x = _augment(run, x)
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
            if run.episodic:
                s, sl, q, ql = split_episode(x, cfg.n_way, cfg.n_shot, cfg.n_query)
                loss, scores = method.episode_loss(s, sl, q, ql)
                accuracies.append((scores.argmax(1) == ql).float().mean().item())
            else:
                loss = method.batch_loss(x, y)
        loss = loss / per_step
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
    return step_loss


def _augment(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """The batch, randomly warped when ``augment`` is on, from the run's own generator so resume replays it."""
    if not run.cfg.augment:
        return x
    if run.cfg.dataset == "faces":
        return augment_faces(x, generator=run.augment_gen)
    return augment_characters(x, generator=run.augment_gen)


def _validate(run: _Run) -> dict:
    """Accuracy on seeded episodes of the validation classes: the figure that decides best.pt."""
    cfg = run.cfg
    return evaluate_episodes(
        run.method,
        run.splits.val,
        cfg.val_n_way,
        cfg.val_n_shot,
        cfg.val_n_query,
        cfg.val_episodes,
        seed=cfg.seed,
        amp_dtype=run.amp_dtype,
    )


def _epoch_record(
    run: _Run, epoch: int, losses: list[float], accuracies: list[float], val: dict, *, seconds: float
) -> dict:
    """One line of history: the epoch's losses, training and validation accuracy, time and learning rate."""
    return {
        "epoch": epoch,
        "loss": sum(losses) / max(len(losses), 1),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_accuracy": sum(accuracies) / len(accuracies) if accuracies else None,
        "val_accuracy": val["accuracy"],
        "val_ci95": val["ci95"],
        "seconds": round(seconds, 2),
        "lr": run.optimizer.param_groups[0]["lr"],
    }


def _log_epoch(run: _Run, record: dict, *, progress: bool) -> bool:
    """Add the record to the history (and print it), keep the best epoch; whether this one improved on it."""
    run.history.append(record)
    log.info("epoch %d: %s", record["epoch"], record)
    if progress:
        print(json.dumps(record), flush=True)
    improved = record["val_accuracy"] > run.best["val_accuracy"]
    if improved:
        run.best = {"epoch": record["epoch"], "val_accuracy": record["val_accuracy"]}
    return improved


def _save_checkpoint(run: _Run, epoch: int, improved: bool) -> None:
    """Write last.pt atomically (best.pt, epoch-NNN.pt as copies): everything load_trained and a resume read."""
    payload = {
        "format": TRAIN_FORMAT,
        "config": asdict(run.cfg),
        "epoch": epoch,
        "model": run.method.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler else None,
        "scaler": run.scaler.state_dict() if run.scaler else None,
        "augment_rng": run.augment_gen.get_state().cpu(),
        "history": run.history,
        "best": run.best,
        "encoder_metadata": run.encoder_metadata.to_dict() if run.encoder_metadata else None,
        "splits": run.splits.names,
        "data_summary": run.splits.summary,
    }
    tmp = run.last_path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(run.last_path)
    if improved:
        shutil.copyfile(run.last_path, run.out / "best.pt")
    if run.cfg.keep_epoch_checkpoints:
        shutil.copyfile(run.last_path, run.out / f"epoch-{epoch + 1:03d}.pt")


def _write_summary(run: _Run) -> dict[str, Any]:
    """The run's outcome as JSON in out_dir/summary.json (and returned), for reports and the CLI."""
    summary = {
        "out_dir": str(run.out),
        "best": run.best,
        "history": run.history,
        "data": run.splits.summary,
        "config": asdict(run.cfg),
    }
    (run.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
