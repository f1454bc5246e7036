"""ONNX encoders: dlib's port exported computes what the torch port computes; users' ONNX models import and run."""

import pickle

import numpy as np
import pytest
import torch

from models.encoders.checkpoint import EncoderCheckpoint
from models.encoders.encoder import Encoder
from models.errors import CheckpointError
from models.imageio import load_image

HINT = "ONNX encoders need onnx and onnxruntime: pip install onnxruntime onnx"
ort = pytest.importorskip("onnxruntime", reason=HINT)
onnx = pytest.importorskip("onnx", reason=HINT)

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from models.importers.onnx_model import (  # noqa: E402
    ARCFACE_TEMPLATE_112,
    PRESETS,
    arcface_template,
    export_dlib_onnx,
    import_onnx,
)

ARCFACE = {k: v for k, v in PRESETS["arcface"].items() if k != "input_size"}
WEIGHT = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32)
BIAS = np.linspace(-0.5, 0.5, 8, dtype=np.float32)


def tiny_model(path, *, size=112, batch="N", layout="NCHW", elem=TensorProto.FLOAT, extra_input=False, rank=4,
               external=False):
    """A face "encoder" small enough to build here: Conv 3x3/2 -> Relu -> GlobalAveragePool -> Flatten (8-d)."""
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    if rank != 4:
        shape = [batch, 3, size]
    inputs = [helper.make_tensor_value_info("data", elem, shape)]
    nodes, x = [], "data"
    if rank != 4:
        nodes.append(helper.make_node("Flatten", [x], ["embedding"]))
    else:
        if elem != TensorProto.FLOAT:
            nodes.append(helper.make_node("Cast", [x], ["as_float"], to=TensorProto.FLOAT))
            x = "as_float"
        if layout == "NHWC":
            nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
            x = "nchw"
        if extra_input:
            inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, shape))
            nodes.append(helper.make_node("Add", [x, "extra"], ["summed"]))
            x = "summed"
        nodes += [
            helper.make_node("Conv", [x, "W", "B"], ["conv"], kernel_shape=[3, 3], strides=[2, 2]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embedding"]),
        ]
    graph = helper.make_graph(
        nodes, "tiny_face", inputs, [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, None])],
        initializer=[numpy_helper.from_array(WEIGHT, "W"), numpy_helper.from_array(BIAS, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="faceshot-test")
    model.ir_version = 8
    onnx.save(model, str(path), save_as_external_data=external, location=f"{path.name}.data", size_threshold=0)
    return path


def reference(chips: np.ndarray) -> np.ndarray:
    """What the tiny model must give through the Encoder: ArcFace normalisation, the layers, unit length."""
    x = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() - 127.5) / 127.5
    y = torch.nn.functional.conv2d(x, torch.from_numpy(WEIGHT), torch.from_numpy(BIAS), stride=2).relu()
    return torch.nn.functional.normalize(y.mean(dim=(2, 3)), dim=1).numpy()


def random_chips(n: int, size: int = 112) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# dlib's ResNet exported
# ----------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dlib_onnx(tmp_path_factory):
    """The exported checkpoint (~22 MB) written to and read back from a temporary folder, never the repository."""
    path = tmp_path_factory.mktemp("onnx") / "dlib-resnet-v1-onnx.pt"
    export_dlib_onnx(path)
    return EncoderCheckpoint.load(path)


def test_exported_dlib_matches_torch_dlib_on_real_faces(dlib_onnx, photos, pipeline):
    """Same chips in, same embeddings out: max |diff| <= 1e-5 over every face of the LFW fixtures (measured
    3.1e-7 on 31 faces, flip averaging on, one thread)."""
    from models.encoders.sources import dlib_checkpoint

    torch_encoder = Encoder(dlib_checkpoint(), "cpu", runtime="torch")
    onnx_encoder = Encoder(dlib_onnx, "cpu")
    chips = []
    for files in photos.values():
        for path in files:
            image = load_image(path)
            faces = pipeline.detect(image)
            if faces:
                chips.append(onnx_encoder.chips(image, faces))
    chips = np.concatenate(chips)
    assert len(chips) >= 20
    ours, theirs = onnx_encoder.embed(chips), torch_encoder.embed(chips)
    assert ours.shape == theirs.shape == (len(chips), 128)
    assert np.abs(ours - theirs).max() <= 1e-5
    # one chip at a time (the service's usual batch) too
    assert np.abs(onnx_encoder.embed(chips[:1]) - theirs[:1]).max() <= 1e-5


def test_on_a_cpu_dlib_runs_on_onnx_runtime_with_the_same_hash_and_embeddings(photos, pipeline):
    """Issue 15: the default encoder on a CPU is the same weights under ONNX Runtime (FACESHOT_ENCODER_RUNTIME=auto):
    max |diff| <= 1e-5 against torch on the fixture faces, and the same content hash, so stored embeddings stay."""
    from models.encoders.sources import WeightSources, dlib_checkpoint, load_encoder

    served = load_encoder("dlib", "cpu")
    reference = load_encoder("dlib", "cpu", sources=WeightSources(runtime="torch"))
    assert served.runtime == "onnx" and reference.runtime == "torch"
    assert served.content_hash == reference.content_hash == dlib_checkpoint().metadata.content_hash
    images = [load_image(files[0]) for files in photos.values()]
    chips = np.concatenate([served.chips(image, pipeline.detect(image)) for image in images])
    assert len(chips) >= 8
    assert np.abs(served.embed(chips) - reference.embed(chips)).max() <= 1e-5
    assert np.abs(served.embed(chips[:1]) - reference.embed(chips[:1])).max() <= 1e-5
    with pytest.raises(CheckpointError, match="runtime"):
        Encoder(dlib_checkpoint(), "cpu", runtime="tensorrt")


def test_exported_dlib_keeps_dlibs_metadata_but_not_its_hash(dlib_onnx, pipeline):
    """Everything that decides how faces are cropped and compared is dlib's; the hash is new (so `reembed`)."""
    ours, theirs = dlib_onnx.metadata, pipeline.encoder.metadata
    assert ours.name == "dlib-resnet-v1-onnx" and ours.architecture == "onnx"
    for field in ("embedding_size", "input_size", "alignment_template", "normalization", "threshold",
                  "flip_average", "calibration", "crop", "channel_order"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.content_hash != theirs.content_hash
    assert ours.recipe["exported_from"]["content_hash"] == theirs.content_hash
    assert ours.architecture_config["opset"] == {"ai.onnx": 17}


def test_session_follows_torchs_thread_count(dlib_onnx):
    encoder = Encoder(dlib_onnx, "cpu")
    options = encoder.model.session().get_session_options()
    assert options.intra_op_num_threads == torch.get_num_threads()
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


# ----------------------------------------------------------------------------------------------------------------
# ONNX models users bring
# ----------------------------------------------------------------------------------------------------------------

def test_imported_model_runs_through_the_encoder(tmp_path):
    ckpt = import_onnx(tiny_model(tmp_path / "tiny.onnx"), name="tiny", input_size=112, **ARCFACE,
                       licence="test only", source="built by the test")
    meta = ckpt.metadata
    assert (meta.architecture, meta.embedding_size, meta.input_size) == ("onnx", 8, 112)
    assert meta.alignment_template == ARCFACE_TEMPLATE_112
    assert meta.normalization == {"mean": [127.5] * 3, "std": [127.5] * 3}
    assert meta.recipe["licence"] == "test only" and not meta.threshold.calibrated
    assert meta.architecture_config["batch"] is None  # "N": any batch
    chips = random_chips(5)
    encoder = Encoder(ckpt, "cpu", batch_size=2)  # several batches, the last one short
    assert np.abs(encoder.embed(chips) - reference(chips)).max() <= 1e-5
    assert encoder.embed(chips[:0]).shape == (0, 8)


def test_imported_model_embeds_faces_in_a_photo(tmp_path, photos, pipeline):
    """Photo -> detector -> the checkpoint's crop (template, and box) -> ONNX -> unit embeddings."""
    image = load_image(next(iter(photos.values()))[0])
    faces = pipeline.detect(image)
    for crop in ({"kind": "template"}, {"kind": "box", "margin": 8}):
        ckpt = import_onnx(tiny_model(tmp_path / "tiny.onnx"), name="tiny", input_size=112, crop=crop, **ARCFACE)
        encoder = Encoder(ckpt, "cpu")
        chips = encoder.chips(image, faces)
        embeddings = encoder.embed_faces(image, faces)
        assert embeddings.shape == (len(faces), 8)
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
        assert np.abs(embeddings - reference(chips)).max() <= 1e-5


def test_nhwc_and_fixed_batch_models(tmp_path):
    """The layout comes from the input shape; a model built for batches of 2 gets chunks of 2, the last padded."""
    chips = random_chips(3)
    nhwc = import_onnx(tiny_model(tmp_path / "nhwc.onnx", layout="NHWC"), name="t", input_size=112, **ARCFACE)
    assert nhwc.metadata.architecture_config["layout"] == "NHWC"
    fixed = import_onnx(tiny_model(tmp_path / "b2.onnx", batch=2), name="t", input_size=112, **ARCFACE)
    assert fixed.metadata.architecture_config["batch"] == 2
    for ckpt in (nhwc, fixed):
        assert np.abs(Encoder(ckpt, "cpu").embed(chips) - reference(chips)).max() <= 1e-5


def test_checkpoint_round_trip_and_hash(tmp_path):
    ckpt = import_onnx(tiny_model(tmp_path / "tiny.onnx"), name="tiny", input_size=112, **ARCFACE)
    saved = ckpt.save(tmp_path / "tiny.pt")
    loaded = EncoderCheckpoint.load(saved)
    assert loaded.metadata.content_hash == ckpt.metadata.content_hash
    assert loaded.metadata.architecture_config == ckpt.metadata.architecture_config
    chips = random_chips(4)
    np.testing.assert_array_equal(Encoder(loaded, "cpu").embed(chips), Encoder(ckpt, "cpu").embed(chips))

    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["onnx_model"][-1] ^= 1  # one bit of one weight
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="content hash"):
        EncoderCheckpoint.load(tmp_path / "edited.pt")


def test_external_weight_files_are_folded_into_the_checkpoint(tmp_path):
    """A model saved with its weights beside it (``model.onnx`` + ``model.onnx.data``) becomes one file."""
    path = tiny_model(tmp_path / "split.onnx", external=True)
    data = tmp_path / "split.onnx.data"
    assert data.is_file()
    ckpt = import_onnx(path, name="split", input_size=112, **ARCFACE)
    saved = ckpt.save(tmp_path / "split.pt")
    data.unlink()
    chips = random_chips(2)
    assert np.abs(Encoder(EncoderCheckpoint.load(saved), "cpu").embed(chips) - reference(chips)).max() <= 1e-5


def test_module_pickles_without_its_session(tmp_path):
    """A copied or pickled OnnxNet (worker processes, deepcopy) drops the ORT session and makes a new one."""
    ckpt = import_onnx(tiny_model(tmp_path / "tiny.onnx"), name="tiny", input_size=112, **ARCFACE)
    encoder = Encoder(ckpt, "cpu")
    chips = random_chips(2)
    before = encoder.embed(chips)
    encoder.model = pickle.loads(pickle.dumps(encoder.model))
    assert encoder.model._session is None
    np.testing.assert_array_equal(encoder.embed(chips), before)


def test_templates_follow_insightface():
    assert arcface_template(112) == ARCFACE_TEMPLATE_112
    assert arcface_template(224)[0] == [round(38.2946 * 2, 4), round(51.6963 * 2, 4)]
    assert arcface_template(128)[0] == [round(38.2946 * 128 / 128 + 8, 4), 51.6963]
    with pytest.raises(CheckpointError, match="template="):
        arcface_template(150)


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        ({"extra_input": True}, {}, "2 inputs"),
        ({"rank": 3}, {}, "rank 4"),
        ({"elem": TensorProto.UINT8}, {}, "UINT8"),
        ({}, {"input_size": 150, "template": ARCFACE_TEMPLATE_112}, "112x112 inputs, input_size says 150"),
        ({}, {"embedding_size": 512}, "8-d embeddings, embedding_size says 512"),
        ({}, {"output_name": "logits"}, "no output 'logits'"),
    ],
    ids=["two-inputs", "wrong-rank", "uint8-input", "size-mismatch", "embedding-size", "unknown-output"],
)
def test_refusals(tmp_path, build, kwargs, message):
    path = tiny_model(tmp_path / "bad.onnx", **build)
    with pytest.raises(CheckpointError, match=message):
        import_onnx(path, name="bad", **{"input_size": 112, **ARCFACE, **kwargs})


def test_missing_and_unreadable_files_are_named(tmp_path):
    missing = tmp_path / "nowhere" / "w600k_r50.onnx"
    with pytest.raises(CheckpointError, match="w600k_r50.onnx") as err:
        import_onnx(missing, name="arcface", input_size=112, **ARCFACE)
    assert str(missing) in err.value.message
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(CheckpointError, match="junk.onnx"):
        import_onnx(junk, name="junk", input_size=112, **ARCFACE)
