"""Calibration distributions and the gallery-aware operating point (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import Calibration, knots_from_samples, measure
from models.operating_point import composition, effective_size, fixed_operating_point, one_to_one_rate, operating_point


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    """Synthetic identities: a centre per person, photos scattered around it on the unit sphere."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(300, 32))
    labels = np.repeat(np.arange(300), 4)
    photos = centres[labels] + 0.45 * rng.normal(size=(len(labels), 32))
    return measure(photos, labels)


def test_knots_follow_the_samples_and_extend_the_tail():
    samples = np.random.default_rng(1).normal(1.0, 0.1, 200_000)
    d = knots_from_samples(samples, fit_tail=True)
    assert d.log10_p[0] == -9.0 and d.pairs == 200_000
    for p in (0.5, 0.1, 0.01, 0.001):  # measured region: the samples' own quantiles
        assert abs(d.quantile(p) - np.quantile(samples, p)) < 0.005
        assert abs(np.log10(d.cdf(d.quantile(p))) - np.log10(p)) < 0.01
    assert 0.0 <= d.quantile(1e-9) < d.quantile(1e-7) < d.quantile(1e-5) < np.quantile(samples, 1e-3)
    assert np.all(np.diff(d.distance) >= 0)


def test_a_calibration_survives_its_json(calibration):
    again = Calibration.from_dict(calibration.to_dict())
    for s in (1, 2, 3):
        assert again.impostor[s].quantile(1e-4) == pytest.approx(calibration.impostor[s].quantile(1e-4), abs=1e-5)
    with pytest.raises(ValueError):
        Calibration.from_dict({"impostor": {}, "genuine": {}})


def test_thresholds_tighten_as_the_gallery_grows_and_hold_the_target(calibration):
    points = [operating_point(calibration, 0.01, {1: k}) for k in (10, 50, 500, 5000, 100_000)]
    thresholds = [op.thresholds[1] for op in points]
    assert thresholds == sorted(thresholds, reverse=True) and thresholds[0] > thresholds[-1]
    for op in points:
        p = op.per_person_rate
        k_eff = effective_size(calibration, 0.01, {1: op.gallery_size})
        assert op.gallery_size ** 0.7 - 1e-6 <= k_eff <= op.gallery_size + 1e-6
        assert 1 - (1 - p) ** k_eff == pytest.approx(0.01, rel=1e-9)
        assert calibration.impostor[1].cdf(op.thresholds[1]) == pytest.approx(p, rel=0.05)
    # recognition falls as the thresholds tighten, and says so when it names almost nobody
    recog = [op.expected_recognition[1] for op in points]
    assert recog == sorted(recog, reverse=True)


def test_a_fixed_threshold_says_what_it_stands_for(calibration):
    t = operating_point(calibration, 0.01, {1: 50}).thresholds[1]
    fixed = fixed_operating_point(calibration, {1: t, 2: t, 3: t}, {1: 50}, "FACESHOT_THRESHOLD")
    assert fixed.stranger_accept_rate == pytest.approx(0.01, rel=0.1)
    bigger = fixed_operating_point(calibration, {1: t, 2: t, 3: t}, {1: 5000}, "FACESHOT_THRESHOLD")
    assert bigger.stranger_accept_rate > 0.5, "the same threshold lets most strangers in at 5,000 people"
    assert one_to_one_rate(calibration, 1, t) == pytest.approx(calibration.impostor[1].cdf(t))
    assert one_to_one_rate(None, 1, t) is None


def test_composition_counts_shot_classes():
    assert composition([1, 1, 2, 3, 7]) == {1: 2, 2: 1, 3: 2}


def test_the_gallery_model_counts_correlated_strangers_once(calibration):
    """Simulated galleries of the calibration identities: fewer strangers pass than independence says."""
    model = calibration.gallery
    assert set(model.beta) == {1, 2, 3} and all(0.7 <= b <= 1.0 for bs in model.beta.values() for b in bs)
    fitted = operating_point(calibration, 0.01, {1: 500})
    plain = operating_point(Calibration(calibration.impostor, calibration.genuine), 0.01, {1: 500})  # beta = 1
    assert fitted.per_person_rate >= plain.per_person_rate and fitted.thresholds[1] >= plain.thresholds[1]


def test_the_shipped_dlib_calibration_warns_when_one_photo_each_names_almost_nobody():
    import json
    from importlib import resources

    raw = json.loads(resources.files("models").joinpath("assets", "dlib_resnet_v1_calibration.json").read_text())
    cal = Calibration.from_dict(raw)
    assert cal.source["identities_side"] == "train" and cal.impostor[1].pairs > 1_000_000
    small, huge = operating_point(cal, 0.01, {1: 50}), operating_point(cal, 0.01, {1: 100_000})
    assert not small.warnings and 0.33 < small.thresholds[1] < 0.36
    assert huge.warnings and "second photo" in huge.warnings[0]
    assert operating_point(cal, 0.01, {2: 100_000}).expected_recognition[2] > huge.expected_recognition[1]
