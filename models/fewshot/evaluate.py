"""How well a trained method does on classes it never saw.

* :func:`evaluate_episodes`: N-way K-shot accuracy, mean and 95% interval over
  seeded episodes (>= 600 for a reported figure, as the papers do).
* :func:`evaluate_lake`: Lake et al.'s 20-way one-shot task (20 runs x 20 trials);
  error rate = wrong trials / 400.
* :func:`open_set_report`: faceshot's "company" protocol on face embeddings: K
  people enrolled with S shots, queries of theirs and of strangers; rank-1,
  DIR at FAR 1% / 10%, and the decisions at a given threshold, counted by
  :mod:`models.evaluation.openset` on embeddings of the cached validation chips.
* :func:`evaluate_grid`: all of them for a training checkpoint or an untouched
  encoder, as ``faceshot evaluate`` reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from models.device import pick_device
from models.errors import TrainingError
from models.evaluation.openset import EmbeddedPhotos, run_protocol
from models.fewshot.backbones import EncoderBackbone
from models.fewshot.base import FewShotClassifier
from models.fewshot.config import TrainConfig
from models.fewshot.datasets.face_chips import chip_folder
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.fewshot.datasets.omniglot import LakeRun, load_lake_runs
from models.fewshot.datasets.tensor_images import TensorImageDataset
from models.fewshot.samplers import EpisodeSampler, split_episode
from models.fewshot.splits import chips_of, load_splits
from models.fewshot.utils import mean_confidence_interval
from models.identities import split_identities


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@torch.no_grad()
def evaluate_episodes(
    method: FewShotClassifier,
    dataset: TensorImageDataset,
    n_way: int,
    n_shot: int,
    n_query: int,
    n_episodes: int = 600,
    *,
    seed: int = 0,
    amp_dtype: torch.dtype | None = None,
) -> dict:
    """Mean query accuracy over seeded N-way K-shot episodes, with its 95% confidence half-width."""
    was_training = method.training
    method.eval()
    sampler = EpisodeSampler(dataset.labels, n_way, n_shot, n_query, n_episodes, seed=seed + 10_000)
    accuracies = []
    try:
        for indices in sampler:
            x, _ = dataset.gather(indices)
            s, sl, q, ql = split_episode(x, n_way, n_shot, n_query)
            with _autocast(x.device, amp_dtype):
                method.process_support_set(s, sl)
                scores = method(q)
            accuracies.append((scores.argmax(1) == ql).float().mean().item())
    finally:
        method.train(was_training)
    mean, ci = mean_confidence_interval(accuracies)
    return {"n_way": n_way, "n_shot": n_shot, "n_query": n_query, "episodes": n_episodes, "accuracy": mean, "ci95": ci}


def episode_grid(
    method: FewShotClassifier,
    dataset: TensorImageDataset,
    ways: Sequence[int],
    shots: Sequence[int],
    n_query: int,
    n_episodes: int,
    *,
    seed: int = 0,
    amp_dtype: torch.dtype | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """:func:`evaluate_episodes` for every (N ways, K shots); a cell the method cannot take holds its error instead."""
    cells = []
    for n_way in ways:
        for n_shot in shots:
            try:
                cells.append(
                    evaluate_episodes(
                        method, dataset, n_way, n_shot, n_query, n_episodes, seed=seed, amp_dtype=amp_dtype
                    )
                )
            except ValueError as exc:  # e.g. a 5-way MAML head asked for 20 ways, too few classes for 20 ways
                cells.append({"n_way": n_way, "n_shot": n_shot, "error": str(exc)})
            if on_result is not None:
                on_result(cells[-1])
    return cells


@torch.no_grad()
def evaluate_lake(method: FewShotClassifier, runs: Sequence[LakeRun], *, mean: float = 0.0, std: float = 255.0) -> dict:
    """Lake et al. (Science 2015) 20-way one-shot classification: each test item against the run's 20 drawings."""
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    errors = {}
    try:
        for run in runs:
            support = (run.support.to(device).float() - mean) / std
            queries = (run.queries.to(device).float() - mean) / std
            method.process_support_set(support, torch.arange(len(support), device=device))
            predicted = method(queries).argmax(1).cpu()
            errors[run.name] = int((predicted != run.query_labels).sum())
    finally:
        method.train(was_training)
    trials = sum(len(r.queries) for r in runs)
    wrong = sum(errors.values())
    return {
        "runs": len(runs),
        "trials": trials,
        "errors": wrong,
        "error_rate": wrong / trials,
        "errors_per_run": errors,
    }


# ---------------------------------------------------------------------------------------------
# Open-set protocol on face embeddings (models.evaluation.openset does the counting)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def embed_chips(
    backbone: EncoderBackbone, dataset: TensorImageDataset, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of every chip as the service makes them, and their labels.

    Unit length, mirror-averaged when the encoder's metadata says so.
    """
    out = []
    for start in range(0, len(dataset), batch_size):
        x, _ = dataset.gather(range(start, min(start + batch_size, len(dataset))))
        out.append(backbone.embed_like_service(x).float().cpu())
    return torch.cat(out).numpy(), np.asarray(dataset.labels)


def gallery_of(embeddings: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> EmbeddedPhotos:
    """:class:`models.evaluation.openset.EmbeddedPhotos` of in-memory embeddings (every chip has a face:
    detection ran when caching)."""
    people = {names[c]: np.flatnonzero(labels == c).tolist() for c in np.unique(labels)}
    return EmbeddedPhotos(people, embeddings.astype(np.float32), np.ones(len(embeddings), dtype=bool))


def open_set_report(
    embeddings: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    enrolled: int = 50,
    shots: Sequence[int] = (1, 2),
    seeds: int = 5,
    threshold: float | dict[int, float],
) -> dict:
    """faceshot's open-set protocol (:func:`models.evaluation.openset.run_protocol`): mean and std over seeds per
    shot count."""
    summary = run_protocol(
        gallery_of(embeddings, labels, names), k=enrolled, shots=tuple(shots), seeds=seeds, threshold=threshold
    )
    return {f"S={s}": {"mean": r["mean"], "std": r["std"], "seeds": len(r["runs"])} for s, r in summary.items()}


# ---------------------------------------------------------------------------------------------
# The whole report of `faceshot evaluate`
# ---------------------------------------------------------------------------------------------


def evaluate_grid(
    *,
    checkpoint: str | None = None,
    encoder: str | None = None,
    data: Sequence[str] | None = None,
    split: str = "test",
    rotations: bool = False,
    ways: Sequence[int] = (5, 20),
    shots: Sequence[int] = (1, 5),
    n_query: int = 15,
    n_episodes: int = 600,
    seed: int = 0,
    lake: str | None = None,
    eval_inner_steps: int | None = None,
    fine_tuning_steps: int | None = None,
    enrolled: int = 0,
    open_set_shots: Sequence[int] = (1, 2),
    open_set_seeds: int = 5,
    threshold: float | None = None,
    val_fraction: float = 0.3,
    split_seed: int = 0,
    device: str | None = None,
    amp: bool = True,
    on_result: Callable[[dict], None] | None = None,
    sources=None,
) -> dict[str, Any]:
    """N-way K-shot grid with 95% intervals, Lake's runs (Omniglot), open-set figures (faces) as one report.

    Of a training ``checkpoint`` (on the classes its run held out, from ``data`` or
    the run's own folders), or of an untouched face ``encoder`` as a prototypical
    network on the validation identities of ``data`` (``val_fraction``,
    ``split_seed``). ``on_result`` sees each Omniglot grid cell as it is done.
    """
    dev = pick_device(device)
    amp_dtype = torch.bfloat16 if dev.type == "cuda" and amp else None
    grid = {
        "ways": ways,
        "shots": shots,
        "n_query": n_query,
        "n_episodes": n_episodes,
        "seed": seed,
        "amp_dtype": amp_dtype,
    }
    if checkpoint:
        method, cfg, payload = _trained(checkpoint, dev, data, eval_inner_steps, fine_tuning_steps)
        result: dict[str, Any] = {
            "checkpoint": {
                "path": checkpoint,
                "method": cfg.method,
                "epoch": payload["epoch"] + 1,
                "best": payload.get("best"),
            }
        }
        if cfg.dataset == "omniglot":
            splits = load_splits(cfg)
            test = (splits.test if split == "test" else splits.val).to(dev)
            test.rotations = rotations
            result["split"] = {
                "name": split,
                "classes": test.num_classes,
                "images": len(test),
                "rule": splits.summary["split_rule"],
            }
            result["episodes"] = episode_grid(method, test, **grid, on_result=on_result)
            if lake:
                try:
                    result["lake"] = evaluate_lake(method, load_lake_runs(lake))
                except ValueError as exc:  # a learned 5-way MAML head cannot take Lake's 20 ways
                    result["lake"] = {"error": str(exc)}
            return result
        chips = chips_of(cfg, method.backbone.metadata)
        val = ImageFolderDataset(chips, classes=payload["splits"]["val"]).load_tensors()
    elif encoder and data:
        method, val = _untouched_encoder(encoder, data[0], dev, val_fraction=val_fraction, split_seed=split_seed,
                                         sources=sources)
        metadata = method.backbone.metadata
        result = {"encoder": {"spec": encoder, "name": metadata.name, "content_hash": metadata.content_hash}}
    else:
        raise TrainingError("evaluation needs a training checkpoint, or an encoder with face data")

    val = val.to(dev)
    result["validation"] = {"identities": len(val.base_class_names), "images": len(val)}
    result["episodes"] = episode_grid(method, val, **grid)
    if enrolled:
        result["open_set"] = _open_set(
            method.backbone, val, enrolled=enrolled, shots=open_set_shots, seeds=open_set_seeds, threshold=threshold
        )
    return result


def _trained(
    checkpoint: str,
    device: torch.device,
    data: Sequence[str] | None,
    eval_inner_steps: int | None,
    fine_tuning_steps: int | None,
) -> tuple[FewShotClassifier, TrainConfig, dict]:
    """The checkpoint's method, pointed at ``data`` when given, with the test-time step counts asked for."""
    from models.fewshot.trained import load_trained

    method, cfg, payload = load_trained(checkpoint, device)
    if data:
        cfg.data = list(data)
    for key, value in (("eval_inner_steps", eval_inner_steps), ("fine_tuning_steps", fine_tuning_steps)):
        if value is not None and hasattr(method, key):
            setattr(method, key, value)
    return method, cfg, payload


def _untouched_encoder(
    spec: str, source: str, device: torch.device, *, val_fraction: float, split_seed: int, sources=None
) -> tuple[FewShotClassifier, TensorImageDataset]:
    """A pretrained encoder as a prototypical network (unit-length features), and the validation chips of ``source``."""
    from models.encoders.sources import resolve_checkpoint
    from models.fewshot.methods import PrototypicalNetworks

    backbone = EncoderBackbone.from_checkpoint(resolve_checkpoint(spec, sources))
    method = PrototypicalNetworks(backbone, normalize=True, scale=10.0).to(device).eval()
    chips = chip_folder(source, backbone.metadata)
    _, val_names = split_identities(ImageFolderDataset(chips).classes, val_fraction, split_seed)
    return method, ImageFolderDataset(chips, classes=val_names).load_tensors()


def _open_set(
    backbone: EncoderBackbone,
    dataset: TensorImageDataset,
    *,
    enrolled: int,
    shots: Sequence[int],
    seeds: int,
    threshold: float | None,
) -> dict:
    """:func:`open_set_report` of the chips' embeddings, at ``threshold`` or the encoder's own per shot count."""
    backbone = backbone.eval()
    embeddings, labels = embed_chips(backbone, dataset)
    decision: float | dict[int, float]
    if threshold is None:
        known = backbone.metadata.threshold
        decision = {s: known.for_support(s) for s in shots}
    else:
        decision = threshold
    report = open_set_report(
        embeddings, labels, dataset.base_class_names, enrolled=enrolled, shots=shots, seeds=seeds, threshold=decision
    )
    report["threshold"] = decision
    return report
