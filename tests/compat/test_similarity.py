"""The similarity CompreFace's clients read: faceshot's decision, on either side of both clients' defaults."""

import numpy as np

from app.recognition.compreface_similarity import (
    COMPREFACE_DEFAULT,
    DOUBLE_TAKE_MATCH,
    DOUBLE_TAKE_UNKNOWN,
    similarity,
)


def double_take_confidence(value: float) -> float:
    return round(value * 100, 2)  # compreface.js: parseFloat((face.similarity * 100).toFixed(2))


def test_a_face_within_the_threshold_passes_both_defaults_and_one_beyond_passes_neither():
    for threshold in (0.3, 0.45, 0.52, 0.6, 0.9):
        for distance in np.linspace(0, 2, 401):
            value = similarity(float(distance), threshold)
            if distance <= threshold:
                assert value >= COMPREFACE_DEFAULT and double_take_confidence(value) >= DOUBLE_TAKE_MATCH * 100
            else:  # and Double Take names it unknown, as faceshot does
                assert value < COMPREFACE_DEFAULT and double_take_confidence(value) < DOUBLE_TAKE_UNKNOWN * 100
            assert 0 <= value <= 1


def test_anchored_at_the_threshold_and_monotonic():
    threshold = 0.52
    assert similarity(threshold, threshold) == 0.6 and similarity(0.0, threshold) == 1.0
    assert similarity(threshold + 1e-6, threshold) < 0.4 and similarity(2.0, threshold) == 0.0
    values = [similarity(float(d), threshold) for d in np.linspace(0, 2, 2001)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_the_servers_decision_wins_over_rounded_distances():
    assert similarity(0.52, 0.52, accepted=False) < 0.4  # rounded to the same 4 decimals, refused by the server
    assert similarity(0.5201, 0.52, accepted=True) >= 0.6
