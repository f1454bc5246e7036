"""Where encoder weights come from, each turned into an :class:`EncoderCheckpoint`, and encoders built from a spec.

What a spec may name, and where its weights live, is :mod:`models.encoders.spec` (torch-free); this module loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from models.encoders.dlib_resnet_assets import dlib_model_path
from models.encoders.spec import (
    DEFAULT_CACHE_DIR,
    FACENET_WEIGHTS,
    IMPORTED,
    WeightSources,
    imported_path,
    parse_encoder_spec,
    read_manifest,
)
from models.errors import CheckpointError, WeightsUnavailable

FACENET_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{}"



def _asset(name: str) -> dict:
    return json.loads(resources.files("models").joinpath("assets", name).read_text())


def _asset_or_none(name: str) -> dict | None:
    path = resources.files("models").joinpath("assets", name)
    return json.loads(path.read_text()) if path.is_file() else None


def dlib_checkpoint(dlib_dir: Path | None = None) -> EncoderCheckpoint:
    """dlib's ResNet with the alignment template and threshold calibrated for it (models/assets)."""
    from models.encoders.dlib_resnet import load_dlib_resnet

    model, info = load_dlib_resnet(dlib_model_path(directory=dlib_dir))
    asset = _asset("dlib_resnet_v1.json")
    state = model.state_dict()
    meta = EncoderMetadata(
        name="dlib-resnet-v1",
        architecture="dlib_resnet_v1",
        embedding_size=128,
        input_size=150,
        alignment_template=asset["alignment_template"],
        normalization={"mean": info["mean_rgb"], "std": [256.0, 256.0, 256.0]},
        threshold=Threshold(**asset["threshold"]),
        recipe=asset.get("recipe", {}),
        data=asset.get("data", {}),
        flip_average=asset.get("flip_average", False),
        content_hash=content_hash(state),
        calibration=_asset_or_none("dlib_resnet_v1_calibration.json"),
    )
    return EncoderCheckpoint(meta, state)


def facenet_checkpoint(
    weights: str = "vggface2",
    *,
    cache_dir: Path | None = None,
    download: bool | None = None,
) -> EncoderCheckpoint:
    """facenet-pytorch's InceptionResnetV1 with pretrained weights, from disk or downloaded once."""
    if weights not in FACENET_WEIGHTS:
        raise CheckpointError(f"Unknown facenet weights {weights!r}; use one of {sorted(FACENET_WEIGHTS)}.")
    fname = FACENET_WEIGHTS[weights]
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    download = True if download is None else download
    candidates = [cache_dir / fname, Path(torch.hub.get_dir()).parent / "checkpoints" / fname]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None and download:
        path = cache_dir / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(FACENET_URL.format(fname), str(path), progress=False)
        except Exception as exc:  # no network, proxy refusal, DNS failure…
            path.unlink(missing_ok=True)
            raise WeightsUnavailable(_facenet_help(weights, candidates, f"download failed: {exc}")) from exc
    if path is None:
        raise WeightsUnavailable(_facenet_help(weights, candidates, "downloads are disabled (FACESHOT_OFFLINE=1)"))
    return facenet_checkpoint_from_file(path, weights)


def _facenet_help(weights: str, candidates: list[Path], why: str) -> str:
    return (
        f"facenet-pytorch's {weights} weights are not on this machine and {why}. Either run "
        f"`faceshot fetch-weights facenet-{weights}` once on a machine that is online (it saves to "
        f"{candidates[0]}), or copy {FACENET_WEIGHTS[weights]} to {candidates[0]} yourself. "
        f"The default encoder `dlib` needs no download."
    )


def facenet_checkpoint_from_file(path: Path, weights: str = "vggface2") -> EncoderCheckpoint:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable InceptionResnetV1 state dict: {exc}") from exc
    state = {k: v for k, v in raw.items() if not k.startswith("logits.")}
    asset = _asset("inception_resnet_v1.json")
    meta = EncoderMetadata(
        name=f"facenet-{weights}",
        architecture="inception_resnet_v1",
        embedding_size=512,
        input_size=160,
        alignment_template=asset["alignment_template"],
        normalization={"mean": [127.5] * 3, "std": [128.0] * 3},
        threshold=Threshold(**asset["threshold"][weights]),
        recipe={"source": f"facenet-pytorch pretrained {weights}"},
        content_hash=content_hash(state),
    )
    return EncoderCheckpoint(meta, state)


def fetch_imported(name: str, sources: WeightSources, local: Path | None = None) -> EncoderCheckpoint:
    """Download (or take ``local``) and convert ``name`` into the cache; the checkpoint written."""
    import importlib

    fname, module, _, _ = IMPORTED[name]
    importer = importlib.import_module(f"models.importers.{module}")
    cache = Path(sources.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    if local is None:
        return EncoderCheckpoint.load(importer.fetch(cache))
    converted = importer.import_graph(local) if module == "facenet_graph" else importer.import_model(local)
    converted.save(cache / fname)
    return EncoderCheckpoint.load(cache / fname)


def resolve_checkpoint(spec: str | None = None, sources: WeightSources | None = None) -> EncoderCheckpoint:
    """Turn an encoder name or checkpoint path into a checkpoint (one network; ensembles: :func:`load_encoder`)."""
    sources = sources or WeightSources()
    parsed = parse_encoder_spec(spec)
    if parsed.zoom is not None:
        raise CheckpointError(f"{spec}: @zoom changes the crop of a served encoder, not a checkpoint to train.")
    if parsed.kind == "ensemble":
        raise CheckpointError(f"{spec} is an ensemble of encoders: it serves and evaluates, it does not train.")
    if parsed.kind == "imported":
        return EncoderCheckpoint.load(imported_path(parsed.name, sources))
    if parsed.kind == "dlib":
        return dlib_checkpoint(sources.dlib_dir)
    if parsed.kind == "facenet":
        return facenet_checkpoint(parsed.facenet_weights, cache_dir=sources.cache_dir, download=not sources.offline)
    return EncoderCheckpoint.load(parsed.path)


def zoomed(encoder, zoom: float):
    """``encoder`` cropping onto its template scaled by ``zoom`` about the chip's centre: another input, so
    another name and content hash (embeddings of one scale are never compared with another's)."""
    meta = encoder.metadata
    if meta.crop.get("kind", "template") != "template":
        raise CheckpointError(f"{meta.name} crops from the detector's box; @zoom applies to template crops.")
    if not 0.5 <= zoom <= 2.0:
        raise CheckpointError(f"zoom {zoom} is outside 0.5..2.", {"zoom": zoom})
    t = np.asarray(meta.alignment_template, dtype=np.float64)
    centre = meta.input_size / 2
    suffix = f"@zoom={zoom:g}"
    encoder.metadata = replace(
        meta, name=meta.name + suffix, alignment_template=((t - centre) * zoom + centre).tolist(),
        content_hash=hashlib.sha256((meta.content_hash + suffix).encode()).hexdigest()[:16])
    return encoder


def load_encoder(spec: str | None = None, device: str | None = None, *, fp16: bool = False,
                 sources: WeightSources | None = None):
    from models.encoders.encoder import Encoder

    parsed = parse_encoder_spec(spec)
    if parsed.zoom is not None:
        return zoomed(load_encoder(parsed.name, device, fp16=fp16, sources=sources), parsed.zoom)
    if parsed.kind == "ensemble":
        from models.encoders.ensemble import EnsembleEncoder

        manifest = read_manifest(parsed.path)
        members = [load_encoder(m["encoder"], device, fp16=fp16, sources=sources) for m in manifest["members"]]
        return EnsembleEncoder(manifest, members)
    return Encoder(resolve_checkpoint(parsed.name, sources), device=device, fp16=fp16,
                   runtime=(sources or WeightSources()).runtime)
