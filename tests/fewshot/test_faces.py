"""Fine-tuning the default face encoder, export, and the exported checkpoint in the service's classes."""

import numpy as np
import pytest
import torch

from models.encoders.checkpoint import EncoderCheckpoint
from models.encoders.encoder import Encoder
from models.fewshot.backbones import EncoderBackbone
from models.fewshot.config import TrainConfig
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.fewshot.export import export_from_training, export_untouched
from models.fewshot.methods import MetricLearning, PrototypicalNetworks
from models.fewshot.samplers import EpisodeSampler, PKBatchSampler, split_episode
from models.fewshot.train import train

from .conftest import LFW

pytestmark = pytest.mark.slow  # the dlib ResNet on CPU: seconds per test, a minute in all


@pytest.fixture(scope="module")
def chips(face_chips):
    return ImageFolderDataset(face_chips, min_images=3).load_tensors()


def _falls(losses):
    return sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2


def test_backbone_embeds_like_the_service_encoder(dlib_ckpt, chips):
    backbone = EncoderBackbone.from_checkpoint(dlib_ckpt).eval()
    x, _ = chips.gather(range(4))
    with torch.no_grad():
        ours = backbone.embed_like_service(x).numpy()
    theirs = Encoder(dlib_ckpt, "cpu").embed(x.permute(0, 2, 3, 1).to(torch.uint8).numpy())
    assert np.allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("kind", ["triplet", "protonet"])
def test_fine_tuning_the_dlib_encoder_lowers_the_loss(kind, dlib_ckpt, chips):
    backbone = EncoderBackbone.from_checkpoint(dlib_ckpt)
    if kind == "triplet":
        method = MetricLearning(backbone, loss="triplet", miner="batch_hard", margin=0.6)
        batch = next(iter(PKBatchSampler(chips.labels, p=4, k=2, n_batches=1)))
    else:
        method = PrototypicalNetworks(backbone, normalize=True, scale=10.0)
        batch = next(iter(EpisodeSampler(chips.labels, 4, 1, 1, 1)))
    x, y = chips.gather(batch)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-4)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = method.batch_loss(x, y) if kind == "triplet" else method.episode_loss(*split_episode(x, 4, 1, 1))[0]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert _falls(losses), losses


def test_last_layer_only_training_moves_nothing_else(dlib_ckpt, chips):
    backbone = EncoderBackbone.from_checkpoint(dlib_ckpt)
    assert backbone.train_last_layer_only() == ["fc.weight"]
    method = MetricLearning(backbone, loss="contrastive", miner="all", margin=0.6, pos_margin=0.2).train()
    assert backbone.encoder.fc.training
    assert all(not m.training for name, m in backbone.encoder.named_children() if name != "fc")
    before = {k: v.clone() for k, v in backbone.encoder.state_dict().items()}
    x, y = chips.gather(next(iter(PKBatchSampler(chips.labels, p=4, k=2, n_batches=1))))
    # Tiny steps: the last layer sees all-positive pooled features, a steep direction that larger ones overshoot.
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-6)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = method.batch_loss(x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    after = backbone.encoder.state_dict()
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if k != "fc.weight")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, face_chips):
    out = tmp_path_factory.mktemp("face-run")
    cfg = TrainConfig(
        method="protonet",
        dataset="faces",
        data=[str(face_chips)],
        out_dir=str(out),
        backbone="dlib",
        normalize=True,
        scale=10.0,
        augment=True,
        val_fraction=0.5,
        n_way=3,
        n_shot=1,
        n_query=1,
        val_n_way=2,
        val_n_query=1,
        val_episodes=3,
        steps_per_epoch=2,
        epochs=1,
        lr=1e-5,
        device="cpu",
    )
    summary = train(cfg, progress=False)
    return out, summary


def test_face_training_writes_a_checkpoint(trained):
    out, summary = trained
    assert summary["data"]["dataset"] == "faces" and summary["data"]["identities"]["val"] >= 4
    assert (out / "last.pt").exists()


def test_export_loads_in_the_service_and_identifies(trained, tmp_path, photos_by_person):
    out, _ = trained
    path = tmp_path / "encoder.pt"
    export_from_training(out / "last.pt", path, far=0.1, enrolled=2, device="cpu")
    ckpt = EncoderCheckpoint.load(path)  # hash verified on load
    meta = ckpt.metadata
    assert meta.architecture == "dlib_resnet_v1" and meta.input_size == 150
    assert meta.threshold.calibrated and meta.threshold.far == 0.1 and set(meta.threshold.by_support) == {"1", "2"}
    assert meta.recipe["method"] == "protonet" and "validation identities" in meta.threshold.calibrated_on

    from models.pipeline import FacePipeline

    pipeline = FacePipeline(Encoder(ckpt, "cpu"))
    people = [p for p, files in photos_by_person.items() if len(files) >= 3][:4]
    prototypes = []
    for person in people:
        vecs = [pipeline.analyze_file(f)[0].embedding for f in photos_by_person[person][:2]]
        proto = np.mean(vecs, axis=0)
        prototypes.append(proto / np.linalg.norm(proto))
    for i, person in enumerate(people):
        query = pipeline.analyze_file(photos_by_person[person][2])[0].embedding
        distances = np.linalg.norm(np.stack(prototypes) - query, axis=1)
        assert distances.argmin() == i
        assert distances[i] <= ckpt.metadata.threshold.for_support(2) + 0.2  # a sane scale: same person is near


def test_untouched_encoder_export(face_chips, tmp_path):
    ckpt = export_untouched(
        "dlib", tmp_path / "dlib.pt", face_chips, far=0.1, val_fraction=0.5, enrolled=2, device="cpu"
    )
    loaded = EncoderCheckpoint.load(tmp_path / "dlib.pt")
    assert loaded.metadata.content_hash == ckpt.metadata.content_hash
    assert 0.0 < loaded.metadata.threshold.distance < 2.0


@pytest.fixture(scope="module")
def photos_by_person():
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(LFW.iterdir()) if d.is_dir()}


def test_inception_resnet_v1_serves_as_a_backbone():
    """facenet-pytorch's network (random weights: its pretrained ones are a download away) behind the same wrapper."""
    from models.encoders.architectures import build
    from models.encoders.checkpoint import EncoderMetadata, Threshold

    meta = EncoderMetadata(
        name="facenet-test",
        architecture="inception_resnet_v1",
        embedding_size=512,
        input_size=160,
        alignment_template=[[51.6, 64.0], [108.4, 64.0], [80.0, 96.0], [56.6, 123.0], [103.4, 123.0]],
        normalization={"mean": [127.5] * 3, "std": [128.0] * 3},
        threshold=Threshold(1.0, calibrated=False),
    )
    method = PrototypicalNetworks(EncoderBackbone(build("inception_resnet_v1"), meta), normalize=True, scale=10.0)
    x = torch.rand(4, 3, 160, 160) * 255
    loss, scores = method.episode_loss(x[:2], torch.arange(2), x[2:], torch.arange(2))
    loss.backward()
    assert scores.shape == (2, 2) and method.backbone.encoder.last_linear.weight.grad is not None

    trainable = method.backbone.train_last_layer_only()
    assert trainable == ["last_linear.weight", "last_bn.weight", "last_bn.bias"]
    method.train()
    assert method.backbone.encoder.last_bn.training and not method.backbone.encoder.conv2d_1a.training
