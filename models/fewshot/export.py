"""Turn a trained face backbone into the encoder checkpoint the service loads.

The exported file is an ordinary :class:`~models.encoders.checkpoint.EncoderCheckpoint`:
the encoder's own architecture name, weights, alignment template and pixel
normalisation (unchanged from the encoder training started from), a distance
threshold calibrated on *validation* identities at a stated false-accept rate,
and the training recipe and data summary.

Calibration is the service's open-set decision simulated by
:func:`models.evaluation.openset.calibrate_threshold`: ``enrolled`` validation people are
enrolled with 1 (and 2) photos, every other validation person is a stranger, and
the threshold per number of enrolment photos is the largest distance to the
nearest prototype that accepts at most ``far`` of the strangers (mean over seeds).
The same validation identities give the impostor and genuine distance distributions
(:func:`models.calibration.measure`) the service turns into gallery-aware thresholds.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.calibration import measure
from models.encoders.checkpoint import EncoderCheckpoint, Threshold
from models.errors import TrainingError
from models.evaluation.openset import calibrate_threshold
from models.fewshot.backbones import EncoderBackbone
from models.fewshot.datasets.face_chips import chip_folder
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.fewshot.datasets.tensor_images import TensorImageDataset
from models.fewshot.evaluate import embed_chips, gallery_of
from models.identities import split_identities

log = logging.getLogger(__name__)


def calibrate(
    embeddings: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    far: float,
    *,
    enrolled: int = 50,
    shots=(1, 2),
    seeds: int = 5,
) -> tuple[Threshold, dict]:
    """Per-shot-count thresholds admitting ``far`` of strangers
    (:func:`models.evaluation.openset.calibrate_threshold`)."""
    by_support = calibrate_threshold(
        gallery_of(embeddings, labels, names), far=far, k=enrolled, shots=tuple(shots), seeds=seeds
    )
    details = {
        "far": far,
        "enrolled": enrolled,
        "shots": list(shots),
        "seeds": seeds,
        "identities": len(set(labels.tolist())),
        "photos": len(labels),
    }
    threshold = Threshold(
        distance=round(by_support[min(shots)], 6),
        far=far,
        by_support={str(s): round(t, 6) for s, t in by_support.items()},
        calibrated=True,
    )
    return threshold, details


def export_encoder(
    backbone: EncoderBackbone,
    out_path: str | Path,
    calibration: TensorImageDataset,
    *,
    far: float = 0.01,
    name: str | None = None,
    recipe: dict | None = None,
    data_summary: dict | None = None,
    enrolled: int = 50,
    calibrated_on: str = "validation identities",
) -> EncoderCheckpoint:
    """Calibrate ``backbone`` on ``calibration`` (validation identities only) and write the encoder checkpoint."""
    backbone = backbone.eval()
    device = next(backbone.parameters()).device
    calibration = calibration.to(device)
    embeddings, labels = embed_chips(backbone, calibration)
    threshold, details = calibrate(embeddings, labels, calibration.base_class_names, far, enrolled=enrolled)
    try:  # what makes the service's threshold gallery-aware
        distributions = measure(embeddings, labels)
        distributions.source["calibrated_on"] = calibrated_on
    except TrainingError as exc:  # too few validation identities: the fixed thresholds alone
        log.warning("no distance distributions in the export (%s): the service will use its fixed thresholds",
                    exc.message)
        distributions = None
    threshold.calibrated_on = (
        f"{calibrated_on}: {details['identities']} people, {details['photos']} photos; open-set protocol K={enrolled}, "
        f"{details['seeds']} seeds: mean threshold accepting {far:g} of strangers, per number of enrolment photos"
    )
    metadata = copy.deepcopy(backbone.metadata)
    metadata.name = name or f"{metadata.name}-finetuned"
    metadata.threshold = threshold
    metadata.calibration = distributions.to_dict() if distributions else None
    metadata.recipe = {**(recipe or {}), "calibration": details}
    metadata.data = data_summary or {}
    state = {k: v.detach().cpu().float().contiguous() for k, v in backbone.encoder.state_dict().items()}
    checkpoint = EncoderCheckpoint(metadata, state)
    checkpoint.save(out_path)
    return checkpoint


def export_from_training(
    checkpoint_path: str | Path,
    out_path: str | Path,
    *,
    data: str | Path | None = None,
    far: float = 0.01,
    name: str | None = None,
    enrolled: int = 50,
    device: str | None = None,
) -> EncoderCheckpoint:
    """Export the backbone of a face training checkpoint, calibrated on that run's validation identities."""
    from models.fewshot.splits import chips_of
    from models.fewshot.trained import load_trained

    method, cfg, payload = load_trained(checkpoint_path, device)
    if not isinstance(method.backbone, EncoderBackbone):
        raise TrainingError("only face encoders (dlib_resnet_v1, inception_resnet_v1 backbones) can be exported")
    if data is not None:
        cfg.data = [str(data)]
    chips = chips_of(cfg, method.backbone.metadata)
    calibration = ImageFolderDataset(chips, classes=payload["splits"]["val"]).load_tensors()
    recipe = {
        "method": cfg.method,
        "started_from": f"{method.backbone.metadata.name} ({method.backbone.metadata.content_hash})",
        "epochs": payload["epoch"] + 1,
        "best": payload.get("best"),
        "settings": {
            k: payload["config"][k]
            for k in (
                "n_way",
                "n_shot",
                "n_query",
                "p",
                "k",
                "margin",
                "miner",
                "lr",
                "steps_per_epoch",
                "augment",
                "normalize",
                "scale",
            )
        },
    }
    return export_encoder(
        method.backbone,
        out_path,
        calibration,
        far=far,
        name=name,
        recipe=recipe,
        data_summary=payload.get("data_summary"),
        enrolled=enrolled,
        calibrated_on=f"validation identities of {Path(cfg.data[0]).name} ({payload['data_summary']['split_rule']})",
    )


def export_untouched(
    encoder_spec: str,
    out_path: str | Path,
    data: str | Path,
    *,
    far: float = 0.01,
    val_fraction: float = 0.3,
    split_seed: int = 0,
    enrolled: int = 50,
    device: str | None = None,
    sources=None,
) -> EncoderCheckpoint:
    """Calibrate a pretrained encoder as-is (e.g. ``dlib``) on the validation identities of a photo folder."""
    from models.device import pick_device
    from models.encoders.sources import resolve_checkpoint

    backbone = EncoderBackbone.from_checkpoint(resolve_checkpoint(encoder_spec, sources)).to(pick_device(device))
    chips = chip_folder(data, backbone.metadata)
    folder = ImageFolderDataset(chips)
    _, val = split_identities(folder.classes, val_fraction, split_seed)
    rule = f"split_identities(val_fraction={val_fraction}, seed={split_seed})"
    return export_encoder(
        backbone,
        out_path,
        ImageFolderDataset(chips, classes=val).load_tensors(),
        far=far,
        name=backbone.metadata.name,
        recipe={**backbone.metadata.recipe, "method": "none (pretrained encoder, recalibrated)"},
        enrolled=enrolled,
        calibrated_on=f"validation identities of {Path(data).name} ({rule})",
    )
