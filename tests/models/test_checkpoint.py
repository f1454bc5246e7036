"""Checkpoints carry their metadata, are verified on load, and every weight source yields one."""

import numpy as np
import pytest
import torch

from models.encoders.checkpoint import EncoderCheckpoint
from models.encoders.encoder import Encoder
from models.encoders.sources import dlib_checkpoint, facenet_checkpoint, resolve_checkpoint
from models.errors import CheckpointError, WeightsUnavailable


@pytest.fixture(scope="module")
def dlib_ckpt():
    return dlib_checkpoint()


def test_default_checkpoint_metadata(dlib_ckpt):
    m = dlib_ckpt.metadata
    assert (m.architecture, m.embedding_size, m.input_size) == ("dlib_resnet_v1", 128, 150)
    assert len(m.alignment_template) == 5
    assert 0.3 < m.threshold.distance < 1.0
    assert len(m.content_hash) == 16


def test_save_load_round_trip_embeds_identically(dlib_ckpt, tmp_path):
    path = dlib_ckpt.save(tmp_path / "enc.pt")
    loaded = resolve_checkpoint(str(path))
    assert loaded.metadata == dlib_ckpt.metadata
    chips = np.random.default_rng(0).integers(0, 255, (3, 150, 150, 3), dtype=np.uint8)
    a = Encoder(dlib_ckpt, "cpu").embed(chips)
    b = Encoder(loaded, "cpu").embed(chips)
    assert np.allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)


def test_tampered_weights_are_refused(dlib_ckpt, tmp_path):
    path = dlib_ckpt.save(tmp_path / "enc.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc.weight"] += 0.01
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="content hash"):
        EncoderCheckpoint.load(path)


def test_unknown_architecture_and_format_are_refused(dlib_ckpt, tmp_path):
    path = dlib_ckpt.save(tmp_path / "enc.pt")
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["architecture"] = "mystery_net"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="Unknown encoder architecture"):
        Encoder(EncoderCheckpoint.load(path), "cpu")
    payload["format"] = payload["metadata"]["format"] = "something-else/9"
    torch.save(payload, path)
    with pytest.raises(CheckpointError):
        EncoderCheckpoint.load(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        EncoderCheckpoint.load(tmp_path / "junk.pt")


def test_facenet_weights_missing_offline_names_both_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailable) as e:
        facenet_checkpoint("vggface2", cache_dir=tmp_path / "cache", download=False)
    msg = e.value.message
    assert "faceshot fetch-weights facenet-vggface2" in msg and str(tmp_path / "cache") in msg


def test_facenet_weights_from_local_file(tmp_path, monkeypatch):
    """The offline path for facenet: a weights file placed in the cache directory."""
    from facenet_pytorch import InceptionResnetV1

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "cache"
    cache.mkdir()
    torch.manual_seed(0)
    state = InceptionResnetV1(pretrained=None, classify=False).state_dict()
    torch.save(state, cache / "20180402-114759-vggface2.pt")
    ckpt = facenet_checkpoint("vggface2", cache_dir=cache, download=False)
    assert (ckpt.metadata.input_size, ckpt.metadata.embedding_size) == (160, 512)
    enc = Encoder(ckpt, "cpu")
    out = enc.embed(np.zeros((2, 160, 160, 3), np.uint8))
    assert out.shape == (2, 512)
