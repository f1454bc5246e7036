"""The TF.js graph interpreter reproduces TF.js itself; HSE faceres imports as a checkpoint that tells faces apart."""

# The tiny graph in tests/fixtures/importers/tfjs (every op the interpreter implements, with TF.js's own outputs)
# always runs. The faceres tests need the opt-in weights (`faceshot fetch-weights hse-faceres`); the comparison
# with TF.js on real faces also needs node with @tensorflow/tfjs in $FACESHOT_TFJS_DIR (default /tmp/tfjs-ref).

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from models.encoders.architectures import build
from models.encoders.checkpoint import EncoderCheckpoint, EncoderMetadata, Threshold
from models.encoders.encoder import Encoder
from models.encoders.spec import DEFAULT_CACHE_DIR
from models.encoders.tfjs_net import OPS, TfjsGraphNet
from models.errors import CheckpointError, WeightsUnavailable
from models.importers.tfjs_graph import (
    CAFFE_MEAN_BGR,
    CHECKPOINT_NAME,
    ORIGINALS_DIR,
    fetch,
    graph_config,
    import_model,
    verify_integrity,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "importers" / "tfjs"
TINY = FIXTURE / "tiny.json"
CHECKED = json.loads((FIXTURE / "tiny_expected.meta.json").read_text())["outputs"]
CACHE = Path(os.environ.get("FACESHOT_MODEL_CACHE", DEFAULT_CACHE_DIR)).expanduser()
TFJS_DIR = Path(os.environ.get("FACESHOT_TFJS_DIR", "/tmp/tfjs-ref")).expanduser()
NO_WEIGHTS = (f"HSE faceres weights are not in {CACHE}: run `faceshot fetch-weights hse-faceres` "
              "(opt-in: no licence published upstream)")


def _tiny_net(output: str) -> TfjsGraphNet:
    config, state = graph_config(TINY, output)
    net = TfjsGraphNet(json.loads(json.dumps(config)))  # the config survives JSON, as in a checkpoint
    net.load_state_dict(state, strict=True)
    return net.eval()


# The tiny graph, against TF.js's own outputs -------------------------------------------------------------------


def test_tiny_graph_uses_every_implemented_op():
    ops = {n["op"] for n in json.loads(TINY.read_text())["modelTopology"]["node"]}
    assert ops == set(OPS)


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
@pytest.mark.parametrize("output", CHECKED)
def test_tiny_graph_matches_tfjs(output, grad):
    """Each checked node (odd-sized SAME pads, dilation, explicit pads, quantized weights) as TF.js 4.22 computed
    it; with autograd off the interpreter overwrites dead activations in place, so both paths are checked."""
    x = torch.from_numpy(np.load(FIXTURE / "tiny_input.npy")).permute(0, 3, 1, 2)  # NHWC reference input
    expected = np.load(FIXTURE / "tiny_expected.npz")[output]
    with torch.set_grad_enabled(grad):
        got = _tiny_net(output)(x).detach().numpy()  # image outputs come back NHWC, as TF.js gives them
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


def test_checkpoint_round_trip_through_encoder(tmp_path):
    """Saved and loaded, the graph embeds as before, and Encoder's BGR flip and mean reach it in the right order."""
    net = _tiny_net("out")
    mean = [10.0, 20.0, 30.0]
    meta = EncoderMetadata(
        name="tiny", architecture="tfjs_graph", embedding_size=6, input_size=12,
        alignment_template=[[3.0, 4.0], [9.0, 4.0], [6.0, 6.0], [4.0, 9.0], [8.0, 9.0]],
        normalization={"mean": mean, "std": [50.0, 50.0, 50.0]}, threshold=Threshold(1.0, calibrated=False),
        channel_order="bgr", crop={"kind": "box", "margin": 10}, architecture_config=net.config)
    path = EncoderCheckpoint(meta, net.state_dict()).save(tmp_path / "tiny.pt")
    loaded = EncoderCheckpoint.load(path)
    assert loaded.metadata.architecture_config == net.config
    chips = np.random.default_rng(1).integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    got = Encoder(loaded, "cpu").embed(chips)
    bgr = (chips[..., ::-1].astype(np.float32) - np.float32(mean)) / 50.0
    with torch.inference_mode():
        want = torch.nn.functional.normalize(net(torch.from_numpy(bgr.copy()).permute(0, 3, 1, 2)), dim=1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    rebuilt = build("tfjs_graph", loaded.metadata.architecture_config)
    assert set(rebuilt.state_dict()) == set(loaded.state_dict)


# Refusals ------------------------------------------------------------------------------------------------------


def _copy_tiny(tmp_path: Path, edit) -> Path:
    model = json.loads(TINY.read_text())
    for node in model["modelTopology"]["node"]:
        edit(node)
    for shard in model["weightsManifest"][0]["paths"]:
        shutil.copy(FIXTURE / shard, tmp_path / shard)
    (tmp_path / "model.json").write_text(json.dumps(model))
    return tmp_path / "model.json"


def test_unknown_op_is_named(tmp_path):
    def rename(node):
        if node["name"] == "r1":
            node["op"] = "Elu"

    with pytest.raises(CheckpointError, match="Elu") as err:
        graph_config(_copy_tiny(tmp_path, rename), "out")
    assert err.value.details["unsupported_ops"] == ["Elu"]
    config = {"inputs": ["x"], "output": "y", "weights": {},
              "nodes": [{"name": "x", "op": "Placeholder", "inputs": []}, {"name": "y", "op": "Erf", "inputs": ["x"]}]}
    with pytest.raises(CheckpointError, match="Erf"):
        TfjsGraphNet(config)


def test_unknown_fused_op_is_named(tmp_path):
    def refuse(node):
        if node["name"] == "f2":
            node["attr"]["fused_ops"]["list"]["s"][1] = "TGVha3lSZWx1"  # LeakyRelu

    with pytest.raises(CheckpointError, match="LeakyRelu"):
        graph_config(_copy_tiny(tmp_path, refuse), "out")


def test_faceres_import_refuses_another_graph():
    with pytest.raises(CheckpointError, match="global_pooling/Mean"):
        import_model(TINY)


def test_missing_shard_is_refused(tmp_path):
    path = _copy_tiny(tmp_path, lambda node: None)
    (tmp_path / "tiny.shard2of2.bin").unlink()
    with pytest.raises(CheckpointError, match="tiny.shard2of2.bin"):
        graph_config(path, "out")


def test_offline_fetch_says_both_ways_in(tmp_path):
    with pytest.raises(WeightsUnavailable) as err:
        fetch(tmp_path, download=False)
    assert "faceshot fetch-weights hse-faceres" in err.value.message
    assert "faceres.json" in err.value.message


def test_tarball_integrity_is_checked(tmp_path):
    fake = tmp_path / "human-models.tgz"
    fake.write_bytes(b"not the package")
    with pytest.raises(WeightsUnavailable, match="pinned integrity"):
        verify_integrity(fake)


# HSE faceres, with the real weights ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faceres() -> EncoderCheckpoint:
    path = CACHE / CHECKPOINT_NAME
    if not path.is_file():
        pytest.skip(NO_WEIGHTS)
    return EncoderCheckpoint.load(path)


@pytest.fixture(scope="module")
def faceres_chips(faceres, photos) -> tuple[list[str], np.ndarray]:
    """Every fixture photo's largest MTCNN face, cut as faceres expects (box + 10 px, 224 x 224, RGB)."""
    from models.detection import FaceDetector
    from models.imageio import load_image

    detector, encoder = FaceDetector("cpu"), Encoder(faceres, "cpu")
    names, chips = [], []
    for person, paths in photos.items():
        for path in paths:
            image = load_image(path)
            faces = detector.detect(image)[:1]
            assert faces, f"no face found in {path}"
            chips.append(encoder.chips(image, faces)[0])
            names.append(person)
    return names, np.stack(chips)


def test_faceres_metadata(faceres):
    m = faceres.metadata
    assert (m.name, m.architecture, m.embedding_size, m.input_size) == ("hse-faceres", "tfjs_graph", 1024, 224)
    assert m.channel_order == "bgr" and m.crop == {"kind": "box", "margin": 10}
    assert m.normalization == {"mean": CAFFE_MEAN_BGR, "std": [1.0, 1.0, 1.0]}
    assert m.architecture_config["output"] == "global_pooling/Mean"
    assert "none published upstream" in m.recipe["licence"]
    assert m.recipe["matches_pinned_files"]


def test_faceres_matches_tfjs_on_faces(faceres, faceres_chips, tmp_path):
    """faceres on real face chips, in the interpreter and in TF.js (CPU backend): the same features."""
    original = CACHE / ORIGINALS_DIR / "faceres.json"
    if not original.is_file():
        pytest.skip(f"{original} is missing: run `faceshot fetch-weights hse-faceres` to keep the TF.js originals")
    if shutil.which("node") is None or not (TFJS_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        pytest.skip(f"needs node and `npm install @tensorflow/tfjs` in {TFJS_DIR} (or set FACESHOT_TFJS_DIR)")
    names, chips = faceres_chips
    pick = sorted({name: i for i, name in enumerate(names)}.values())[:6]  # one photo each of six people
    x = np.ascontiguousarray(chips[pick][..., ::-1].astype(np.float32) - np.float32(CAFFE_MEAN_BGR))
    x.tofile(tmp_path / "x.f32")
    subprocess.run(["node", str(FIXTURE / "run_tfjs.js"), str(original), str(tmp_path / "x.f32"),
                    f"{len(x)},224,224,3", str(tmp_path / "out.json"), "global_pooling/Mean"],
                   check=True, capture_output=True, timeout=300,
                   env=dict(os.environ, NODE_PATH=str(TFJS_DIR / "node_modules")))
    ref = json.loads((tmp_path / "out.json").read_text())["global_pooling/Mean"]
    expected = np.asarray(ref["data"], np.float32).reshape(ref["shape"])
    net = build("tfjs_graph", faceres.metadata.architecture_config)
    net.load_state_dict(faceres.state_dict)
    with torch.inference_mode():
        got = net.eval()(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert np.abs(got - expected).max() < 1e-4  # features up to ~3; measured 4e-6
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    # Encoder's own preprocessing (RGB chips flipped to BGR, Caffe means) gives TF.js's embeddings too
    np.testing.assert_allclose(Encoder(faceres, "cpu").embed(chips[pick]), unit, atol=1e-5)


def test_faceres_tells_people_apart(faceres, faceres_chips):
    """On the fixture photos each person's own photos are closer together than any stranger is to them."""
    names, chips = faceres_chips
    emb = Encoder(faceres, "cpu").embed(chips)
    assert emb.shape == (len(names), 1024)
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    labels = np.asarray(names)
    for person in sorted(set(names)):
        own = labels == person
        if own.sum() < 2:
            continue
        genuine = dist[np.ix_(own, own)][~np.eye(own.sum(), dtype=bool)]
        impostor = dist[np.ix_(own, ~own)]
        assert genuine.max() < impostor.min(), person
    same = labels[:, None] == labels[None]
    off = ~np.eye(len(names), dtype=bool)
    assert dist[same & off].mean() < dist[~same].mean() - 0.2
