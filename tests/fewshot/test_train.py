"""The training loop, checkpoints, resume and evaluation on a handful of Omniglot drawings (CPU, seconds)."""

import json

import pytest
import torch

from models.fewshot import cli
from models.fewshot.config import TrainConfig
from models.fewshot.train import train
from models.fewshot.trained import load_trained

from .conftest import LAKE, OMNIGLOT


def tiny(tmp_path, method: str, **overrides) -> TrainConfig:
    settings = dict(
        method=method,
        dataset="omniglot",
        data=[str(OMNIGLOT)],
        out_dir=str(tmp_path / method),
        test_fraction=0.25,
        val_fraction=0.25,
        n_way=3,
        n_shot=1,
        n_query=2,
        p=4,
        k=3,
        steps_per_epoch=4,
        epochs=2,
        val_n_way=2,
        val_n_query=2,
        val_episodes=5,
        device="cpu",
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.mark.parametrize("method", ["protonet", "matching", "relation", "siamese", "triplet", "fomaml", "finetune"])
def test_every_method_trains_and_checkpoints(tmp_path, method):
    cfg = tiny(tmp_path, method, meta_batch=2 if method == "fomaml" else 1)
    summary = train(cfg, progress=False)
    assert [h["epoch"] for h in summary["history"]] == [0, 1]
    assert all(h["loss"] == h["loss"] for h in summary["history"])  # finite, not NaN
    assert (tmp_path / method / "last.pt").exists() and (tmp_path / method / "best.pt").exists()
    assert summary["data"]["characters"] == {"train": 6, "val": 3, "test": 3}


def test_checkpoint_round_trips_and_resume_continues(tmp_path):
    cfg = tiny(tmp_path, "protonet", epochs=1)
    train(cfg, progress=False)
    method, loaded_cfg, payload = load_trained(tmp_path / "protonet" / "last.pt", "cpu")
    assert loaded_cfg.method == "protonet" and payload["epoch"] == 0
    x = torch.rand(6, 1, 28, 28)
    method.process_support_set(x[:3], torch.arange(3))
    before = method(x[3:])
    again, _, _ = load_trained(tmp_path / "protonet" / "last.pt", "cpu")
    again.process_support_set(x[:3], torch.arange(3))
    assert torch.allclose(before, again(x[3:]))

    resumed = train(tiny(tmp_path, "protonet", epochs=3, resume=True), progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2]
    assert resumed["history"][0] == json.loads(json.dumps(payload["history"][0]))


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    straight = train(tiny(tmp_path / "a", "protonet", epochs=2), progress=False)
    train(tiny(tmp_path / "b", "protonet", epochs=1), progress=False)
    resumed = train(tiny(tmp_path / "b", "protonet", epochs=2, resume=True), progress=False)
    assert resumed["history"][1]["loss"] == pytest.approx(straight["history"][1]["loss"], rel=1e-4)


def test_cli_train_then_evaluate_with_lake_runs(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "config.json"
    settings = {"method": "protonet", "dataset": "omniglot", "data": [str(OMNIGLOT)], "n_way": 3, "n_query": 2}
    config.write_text(json.dumps({**settings, "val_n_way": 2, "val_episodes": 3}))
    argv = ["train", "--quiet", "--config", str(config), "--out-dir", str(out)]
    argv += "--steps-per-epoch 3 --epochs 1 --device cpu --val-fraction 0.25".split()
    assert cli.main(argv) == 0
    result_path = tmp_path / "eval.json"
    argv = ["evaluate", "--checkpoint", str(out / "best.pt"), "--lake", str(LAKE), "--out", str(result_path)]
    argv += "--ways 2 3 --shots 1 --queries 5 --episodes 20 --device cpu".split()
    assert cli.main(argv) == 0
    result = json.loads(result_path.read_text())
    assert [(e["n_way"], e["n_shot"]) for e in result["episodes"]] == [(2, 1), (3, 1)]
    assert all(0 <= e["accuracy"] <= 1 and e["ci95"] >= 0 for e in result["episodes"])
    assert result["lake"]["trials"] == 20 and 0 <= result["lake"]["error_rate"] <= 1


def test_config_file_rejects_unknown_settings(tmp_path):
    with pytest.raises(ValueError, match="wayz"):
        TrainConfig.from_dict({"wayz": 5})


def test_cli_reports_bad_settings_as_typed_errors(tmp_path, capsys):
    assert cli.main(["train", "--data", str(OMNIGLOT), "--miner", "hardest", "--out-dir", str(tmp_path)]) == 1
    assert "training_error: miner must be one of" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path), "--device", "cpu"]) == 1
    assert "training_error: No Omniglot folder" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(OMNIGLOT), "--trainable", "last", "--out-dir", str(tmp_path)]) == 1
    assert "training_error: trainable='last' is for face encoders" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(OMNIGLOT), "--optimizer", "rmsprop", "--out-dir", str(tmp_path)]) == 1
    assert "training_error: optimizer must be one of" in capsys.readouterr().err
