"""Chimney removal and normalisation of measured events."""

from __future__ import annotations

import numpy as np
import pytest

from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.preprocessing import normalise_events, preprocess_measured, remove_chimneys


def _chimney_oracle(
    event: np.ndarray, saturation: float = 800.0, min_nonzero: int = 20
) -> np.ndarray:
    # Loop version of the chimney rule, pad by pad.
    out = event.astype(np.float64).copy()
    for x in range(EVENT_SHAPE[0]):
        for y in range(EVENT_SHAPE[1]):
            above = np.flatnonzero(out[x, y] > saturation)
            if above.size == 0:
                continue
            tail = out[x, y, above[0] :]
            values = tail[tail > 0]
            if values.size < min_nonzero:
                continue
            keep = tail - values.min() > values.std()
            out[x, y, above[0] :] = np.where(keep, tail, 0.0)
    return out


def _chimney_event() -> np.ndarray:
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    # A saturated waveform in pad (3, 4): low amplitudes before, a plateau
    # around saturation, then a slowly decaying tail.
    event[3, 4, 40:50] = 120.0
    event[3, 4, 50:60] = 900.0
    event[3, 4, 60:90] = np.linspace(500.0, 50.0, 30)
    # A short saturated pulse in pad (7, 7): fewer than 20 nonzero values.
    event[7, 7, 100:110] = 850.0
    # An ordinary track voxel elsewhere.
    event[1, 1, 30] = 300.0
    return event


def test_chimney_matches_loop_oracle():
    event = _chimney_event()
    cleaned = remove_chimneys(event)
    np.testing.assert_allclose(cleaned, _chimney_oracle(event), rtol=1e-6)


def test_chimney_tail_cleaned_head_kept():
    event = _chimney_event()
    cleaned = remove_chimneys(event)
    # Time bins before the first saturated one stay as they are.
    np.testing.assert_array_equal(cleaned[3, 4, 40:50], 120.0)
    # The plateau is far above min + std and survives; the low end of the tail goes.
    assert np.all(cleaned[3, 4, 50:60] == 900.0)
    assert np.all(cleaned[3, 4, 80:90] == 0.0)
    tail = event[3, 4, 50:90]
    expected_kept = int(np.sum(tail - tail.min() > tail.std()))
    assert int(np.count_nonzero(cleaned[3, 4, 50:90])) == expected_kept


def test_short_saturated_pulse_kept():
    event = _chimney_event()
    cleaned = remove_chimneys(event)
    np.testing.assert_array_equal(cleaned[7, 7], event[7, 7])
    assert cleaned[1, 1, 30] == 300.0


def test_chimney_batch_and_input_untouched():
    rng = np.random.default_rng(3)
    batch = np.zeros((4, *EVENT_SHAPE), dtype=np.float32)
    batch[0] = _chimney_event()
    batch[1, 2, 2, 10:60] = rng.uniform(0, 1000, 50)
    batch[2] = rng.uniform(0, 100, EVENT_SHAPE) * (rng.random(EVENT_SHAPE) < 0.01)
    original = batch.copy()

    cleaned = remove_chimneys(batch)

    np.testing.assert_array_equal(batch, original)
    for i in range(len(batch)):
        np.testing.assert_allclose(cleaned[i], _chimney_oracle(batch[i]), rtol=1e-6)


def test_saturation_needs_strictly_above():
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    event[0, 0, 0:30] = 800.0  # at, not above, the saturation level
    np.testing.assert_array_equal(remove_chimneys(event), event)


def test_normalise_divides_by_max():
    batch = np.zeros((2, *EVENT_SHAPE), dtype=np.float32)
    batch[0, 1, 2, 3] = 400.0
    batch[0, 4, 5, 6] = 100.0
    normalised = normalise_events(batch)
    assert normalised[0, 1, 2, 3] == pytest.approx(1.0)
    assert normalised[0, 4, 5, 6] == pytest.approx(0.25)
    # The all-zero event stays zero, without NaN.
    assert not np.any(normalised[1])
    assert normalised.dtype == np.float32


def test_preprocess_chimney_then_normalise():
    event = _chimney_event()
    processed = preprocess_measured(event)
    expected = _chimney_oracle(event)
    expected /= expected.max()
    np.testing.assert_allclose(processed, expected, rtol=1e-6)
    assert processed.max() == pytest.approx(1.0)


def test_wrong_shape_rejected():
    with pytest.raises(ValueError, match=r"expected \(12, 14, 208\)"):
        remove_chimneys(np.zeros((12, 14, 200)))
