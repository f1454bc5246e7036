"""`faceshot eval-openset` and `calibrate` on too little data: told in one line, warned, nothing in the checkout."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from app.testing.server import FACESHOT
from models.calibration import measure
from models.cli import calibration_preview


def _run(*args, cwd, env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1", **(env or {})}
    return subprocess.run([FACESHOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """One model cache for the module: the photos are embedded once, by whichever command comes first."""
    return tmp_path_factory.mktemp("models")


@pytest.mark.slow  # two runs of the face pipeline's command line
def test_eval_openset_caches_in_the_model_cache_not_the_working_directory(tmp_path, lfw_dir, model_cache):
    work, cache = tmp_path / "checkout", model_cache
    work.mkdir()
    out = _run("eval-openset", str(lfw_dir), "--k", "5", "--shots", "1", "--seeds", "1", "--device", "cpu",
               "--quiet", cwd=work, env={"FACESHOT_MODEL_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    assert list(work.iterdir()) == []  # it used to leave .cache/faceshot-eval here
    assert {p.name.split("-")[0] for p in (cache / "eval").glob("*.npz")} == {"detections", "embeddings"}

    # too few people for the K asked: one line that says how many there are and what K fits
    out = _run("eval-openset", str(lfw_dir), "--k", "50", "--device", "cpu", "--quiet", cwd=work,
               env={"FACESHOT_MODEL_CACHE": str(cache)})
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("faceshot: training_error: K=50 ") and "the data has 8" in line and "at most 7" in line


def test_calibrate_on_too_few_people_says_what_it_needs_in_one_line(tmp_path, lfw_dir, model_cache):
    out = _run("calibrate", str(lfw_dir), "--device", "cpu", "--quiet", cwd=tmp_path,
               env={"FACESHOT_MODEL_CACHE": str(model_cache)})
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("faceshot: training_error: too few photos to calibrate on: ") and "12 people" in line


def _people(n: int, photos: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of n identities (unit vectors near each one's own centre), as an encoder gives them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, photos, axis=0) + rng.normal(scale=0.03, size=(n * photos, 128))
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(n), photos)


def test_calibrate_warns_when_its_sample_cannot_measure_the_thresholds_it_previews():
    """60 people: about 14,000 one-photo impostor pairs measure a per-person rate down to 25/14,000 = 1.8e-3, and
    K=10 at FAR 1 % already needs 1e-3. 400 people measure down to 4e-5: K=10 and 50 are measured, 500 and 5000 not."""
    preview, warnings = calibration_preview(measure(*_people(60)), 0.01)
    assert all(preview[k]["extrapolated"] == [1, 2, 3] for k in ("10", "50", "500", "5000"))
    assert "K=10, 50, 500, 5000 at FAR 0.01" in warnings[0] and "extrapolated from the fitted tail" in warnings[0]
    assert "beta is assumed to be 1" in warnings[1]

    cal = measure(*_people(400))
    preview, warnings = calibration_preview(cal, 0.01)
    assert [k for k, v in preview.items() if v["extrapolated"]] == ["500", "5000"]
    assert f"400 people give {cal.impostor[1].pairs:,} one-photo impostor pairs" in warnings[0]
    assert "K=500, 5000 at FAR 0.01" in warnings[0]
    for k, v in preview.items():  # the rule itself: measured exactly when 25 pairs fall within the threshold
        assert (v["per_person_rate"] * cal.impostor[1].pairs >= 25) == (1 not in v["extrapolated"]), k
    json.dumps(warnings)  # what `calibrate` prints in its JSON, beside the thresholds
