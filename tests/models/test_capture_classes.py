"""Capture classes (issue 29): a prototype holding a camera capture is held to a threshold measured against
camera-seen strangers, not to its photo count's, so the stated stranger-accept rate is the one that happens."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    CAMERA_ONLY,
    CAPTURE_CLASSES,
    WITH_CAMERA,
    Calibration,
    capture_class,
    measure,
    measure_capture,
)
from models.operating_point import one_to_one_rate, operating_point

DIM = 32


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def identities(seed: int, people: int, photos: int = 4):
    """Photos around a centre per person, and the same photos through two 'cameras': each pulls every face toward
    a look of its own (what a low-resolution or night camera does to embeddings) and adds noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, DIM))
    labels = np.repeat(np.arange(people), photos)
    original = unit(centres[labels] + 0.45 * rng.normal(size=(len(labels), DIM)))
    looks = np.random.default_rng(99).normal(size=(2, DIM))  # the cameras are the same for every seed
    cameras = [unit(original + 0.5 * unit(look) + 0.15 * rng.normal(size=original.shape)) for look in looks]
    return original, cameras, labels


@pytest.fixture(scope="module")
def calibrated():
    original, cameras, labels = identities(0, 400)
    cal = measure(original, labels)
    cal.capture = measure_capture(original, cameras, labels.astype(str), [np.ones(len(labels), bool)] * 2,
                                  camera_names=["a", "b"])
    return cal


def stranger_rate(threshold, original, camera, labels, kind):
    """Camera-seen strangers within ``threshold`` of prototypes of ``kind`` (one per person, from photos 0 and 1)."""
    first, second = np.flatnonzero(np.arange(len(labels)) % 4 == 0), np.flatnonzero(np.arange(len(labels)) % 4 == 1)
    if kind == WITH_CAMERA:
        protos = unit(original[first] + camera[second])
    elif kind == CAMERA_ONLY:
        protos = camera[second]
    else:  # two badge photos
        protos = unit(original[first] + original[second])
    queries = camera[np.arange(len(labels)) % 4 == 3]
    d = np.sqrt(np.maximum(2 - 2 * protos @ queries.T, 0))
    return float(d[~np.eye(len(protos), dtype=bool)].__le__(threshold).mean())


def test_capture_classes_hold_camera_strangers_to_the_rate_that_two_photos_do_not(calibrated):
    """On identities the calibration never saw, through each camera: the with_camera threshold holds strangers near
    the per-person rate, where the two-photo threshold the service used before lets several times as many through."""
    original, cameras, labels = identities(1, 300)
    p = 0.01
    op = operating_point(calibrated, p, {2: 1})
    assert op.thresholds[WITH_CAMERA] < op.thresholds[2]
    for camera in cameras:
        held = stranger_rate(op.thresholds[WITH_CAMERA], original, camera, labels, WITH_CAMERA)
        before = stranger_rate(op.thresholds[2], original, camera, labels, WITH_CAMERA)
        assert held <= 1.5 * p and before > 2 * p, (held, before)
        only = stranger_rate(op.thresholds[CAMERA_ONLY], original, camera, labels, CAMERA_ONLY)
        assert only <= 1.5 * p, only
    # the worst case over the cameras: no camera's own quantile is tighter than the class's
    assert op.threshold_for(2, WITH_CAMERA) == op.thresholds[WITH_CAMERA]
    assert one_to_one_rate(calibrated, 2, op.thresholds[WITH_CAMERA], WITH_CAMERA) == pytest.approx(p, rel=0.05)


def test_the_capture_block_survives_its_json_and_is_optional(calibrated):
    again = Calibration.from_dict(calibrated.to_dict())
    for c in CAPTURE_CLASSES:
        assert again.capture.impostor[c].quantile(1e-3) == pytest.approx(calibrated.capture.impostor[c].quantile(1e-3),
                                                                          abs=1e-5)
    assert again.capture.source["cameras"] == ["a", "b"]
    raw = calibrated.to_dict()
    del raw["capture"]
    assert Calibration.from_dict(raw).capture is None
    raw["capture"] = {"impostor": {}, "genuine": {}}
    with pytest.raises(ValueError):
        Calibration.from_dict(raw)


def test_without_capture_classes_the_operating_point_says_it_cannot_state_the_rate(calibrated):
    bare = Calibration(calibrated.impostor, calibrated.genuine, calibrated.source, calibrated.gallery)
    op = operating_point(bare, 0.01, {1: 40, 2: 10}, captured=3)
    assert WITH_CAMERA not in op.thresholds and op.threshold_for(2, WITH_CAMERA) == op.thresholds[2]
    assert any("3 of these people have faces added from camera events" in w for w in op.warnings)
    assert not operating_point(calibrated, 0.01, {1: 40, 2: 10}, captured=3).warnings


def test_capture_class_of_a_prototype():
    assert capture_class(2, 0) is None and capture_class(1, 0) is None
    assert capture_class(2, 1) == WITH_CAMERA and capture_class(3, 2) == WITH_CAMERA
    assert capture_class(1, 1) == CAMERA_ONLY and capture_class(3, 3) == CAMERA_ONLY
