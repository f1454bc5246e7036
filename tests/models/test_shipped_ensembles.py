"""The named ensembles in models/assets (issue 14): each is a complete, calibrated manifest whose members the
service can name, that loads when its members' weights are fetched, and that refuses with the fetch command
when they are not."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from models.encoders.sources import load_encoder
from models.encoders.spec import IMPORTED, MANIFEST_FORMAT, WeightSources, ensemble_manifest
from models.errors import WeightsUnavailable

ASSETS = resources.files("models").joinpath("assets")
SHIPPED = sorted(p.name[len("ensemble_"):-len(".json")] for p in ASSETS.iterdir()
                 if p.name.startswith("ensemble_") and p.name.endswith(".json"))


def test_the_recommended_fusion_is_shipped():
    assert "dlib+facenet-20180408" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_manifest_is_calibrated_on_training_identities(name):
    manifest = json.loads(ASSETS.joinpath(f"ensemble_{name}.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT and manifest["name"] == name
    assert [m["encoder"] for m in manifest["members"]] == name.split("+")
    assert manifest["members"][0]["weight"] == 1.0 and all(m["content_hash"] for m in manifest["members"])
    assert manifest["threshold"]["far"] == 0.01 and manifest["threshold"]["calibrated"]
    # the distributions that make its thresholds gallery-aware, measured where no evaluation looks
    assert manifest["calibration"]["impostor"] and manifest["recipe"]["fitted_on"]["identities_side"] == "train"
    assert ensemble_manifest(name) is not None


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_ensemble_loads_when_its_members_are_fetched(name):
    missing = [m for m in name.split("+") if m in IMPORTED
               and not (WeightSources().cache_dir / IMPORTED[m][0]).is_file()]
    if missing:
        pytest.skip(f"needs `faceshot fetch-weights {missing[0]}` (weights are not committed)")
    encoder = load_encoder(name, "cpu")  # refuses if a member's content hash differs from the manifest's
    assert encoder.metadata.architecture == "ensemble" and encoder.calibration is not None


def test_without_a_members_weights_the_refusal_names_the_fetch_command(tmp_path):
    with pytest.raises(WeightsUnavailable, match="faceshot fetch-weights facenet-20180408"):
        load_encoder("dlib+facenet-20180408", "cpu", sources=WeightSources(cache_dir=tmp_path))


def test_serve_refuses_at_once_when_a_member_is_missing(tmp_path):
    """One clear line from the supervisor, before any worker (or the data directory) exists."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FACESHOT_DATA_DIR": str(tmp_path / "data"), "FACESHOT_MODEL_CACHE": str(tmp_path / "cache"),
           "FACESHOT_ENCODER": "dlib+facenet-20180408"}
    run = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "1"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1
    assert "faceshot fetch-weights facenet-20180408" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "data").exists()
