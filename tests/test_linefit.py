"""Straight-line fit figures of kept voxels, against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.generator import GeneratorSettings, generate_shard_events
from track_denoiser.linefit import LineFitSettings, fit_lines, summarise_line_fits


def _events(n: int) -> np.ndarray:
    return np.zeros((n, *EVENT_SHAPE), dtype=bool)


def test_line_along_x_without_gaps():
    kept = _events(1)
    kept[0, :, 5, 100] = True
    fit = fit_lines(kept)
    assert fit.kept[0] == 12
    assert fit.outliers[0] == 0
    assert fit.outlier_share[0] == 0.0
    assert fit.mean_distance[0] == pytest.approx(0.0, abs=1e-9)
    assert fit.crossed[0] == 12
    assert fit.missed[0] == 0
    assert abs(fit.direction[0, 0]) == pytest.approx(1.0)


def test_gap_counts_as_missed():
    kept = _events(1)
    kept[0, :, 5, 100] = True
    kept[0, 5, 5, 100] = False
    fit = fit_lines(kept)
    assert fit.crossed[0] == 12
    assert fit.missed[0] == 1
    assert fit.missed_share[0] == pytest.approx(1 / 12)


def test_outlier_share_and_mean_distance():
    kept = _events(1)
    kept[0, :, 5, 100] = True
    kept[0, 6, 9, 100] = True  # 4 pads beside the line
    fit = fit_lines(kept)
    # The refit to the 12 inliers is the line y = 5, z = 100.
    assert fit.outliers[0] == 1
    assert fit.outlier_share[0] == pytest.approx(1 / 13)
    assert fit.mean_distance[0] == pytest.approx(4 / 13)
    assert fit.crossed[0] == 12
    assert fit.missed[0] == 0


def test_z_scale_sets_distance_units():
    kept = _events(1)
    kept[0, 3, 3, 50:70] = True  # 20 time bins in one pad: a line along z
    kept[0, 3, 3, 90] = True  # on the line, 20 bins beyond its end
    kept[0, 4, 3, 60] = True  # one pad beside the line
    fit = fit_lines(kept, LineFitSettings(z_scale=0.1, outlier_distance=0.5))
    assert fit.outliers[0] == 1
    assert fit.mean_distance[0] == pytest.approx(1 / 22)
    # The segment now reaches z = 90: 41 time bins crossed, 20 of them empty.
    assert fit.crossed[0] == 41
    assert fit.missed[0] == 20


def test_no_fit_below_two_voxels():
    kept = _events(2)
    kept[1, 0, 0, 0] = True
    fit = fit_lines(kept)
    assert fit.fitted.tolist() == [False, False]
    assert np.isnan(fit.outlier_share).all()
    assert np.isnan(fit.mean_distance).all()
    assert fit.crossed.tolist() == [0, 0]
    summary = summarise_line_fits(fit)
    assert summary["events"] == 2
    assert summary["fitted_events"] == 0
    assert math.isnan(summary["mean_distance"])


def test_summary_means_over_fitted_events():
    kept = _events(3)
    kept[0, :, 5, 100] = True
    kept[1, :, 5, 100] = True
    kept[1, 5, 5, 100] = False
    fit = fit_lines(kept)
    summary = summarise_line_fits(fit)
    assert summary["fitted_events"] == 2
    assert summary["missed"] == pytest.approx(0.5)
    assert summary["missed_share"] == pytest.approx(1 / 24)
    assert summary["outlier_share"] == 0.0


def test_generated_tracks_lie_on_lines():
    events = generate_shard_events(GeneratorSettings(events_per_shard=60), 5, 0, None)
    truth = events.clean_dense() > 0
    fit = fit_lines(truth)
    assert fit.fitted.all()
    # True tracks are straight: no outliers, voxels within a pad width of the line.
    assert np.all(fit.outlier_share == 0.0)
    assert np.all(fit.mean_distance < 0.6)
    # Rounding along the generator's own steps differs a little from the fitted line.
    assert np.median(fit.missed_share) < 0.2


def test_settings_validation():
    with pytest.raises(ValueError, match="z_scale"):
        LineFitSettings(z_scale=0)
    with pytest.raises(ValueError, match="unknown line fit settings"):
        LineFitSettings.from_dict({"zscale": 0.1})
