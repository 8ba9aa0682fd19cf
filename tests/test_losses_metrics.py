"""Training losses and voxel metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from track_denoiser.losses import (
    PooledBinaryCrossentropy,
    VoxelBinaryCrossentropy,
    get_loss,
)
from track_denoiser.metrics import (
    Confusion,
    ScoreHistogram,
    confusion_counts,
    select_threshold_index,
)

SHAPE = (1, 12, 14, 208, 1)
N_VOXELS = 12 * 14 * 208


def _bce(target: float, prediction: float) -> float:
    return -(target * math.log(prediction) + (1 - target) * math.log(1 - prediction))


# ---------------------------------------------------------------------------
# Losses


def test_paper_loss_empty_target():
    y_true = np.zeros(SHAPE, dtype=np.float32)
    y_pred = np.full(SHAPE, 0.2, dtype=np.float32)

    loss = float(get_loss("paper")(y_true, y_pred))
    # Voxel term and pooled term are both -log(0.8).
    assert loss == pytest.approx(2 * -math.log(0.8), rel=1e-5)


def test_paper_loss_one_block_of_track():
    y_true = np.zeros(SHAPE, dtype=np.float32)
    y_true[0, 3, 4, 80:88, 0] = 1.0  # exactly one pooling block of 8 time bins
    y_pred = np.full(SHAPE, 0.3, dtype=np.float32)

    n_cells = N_VOXELS // 8
    voxel = (8 * _bce(1, 0.3) + (N_VOXELS - 8) * _bce(0, 0.3)) / N_VOXELS
    pooled = (_bce(1, 0.3) + (n_cells - 1) * _bce(0, 0.3)) / n_cells
    assert float(get_loss("paper")(y_true, y_pred)) == pytest.approx(voxel + pooled, rel=1e-5)
    assert float(get_loss("bce")(y_true, y_pred)) == pytest.approx(voxel, rel=1e-5)


def test_paper_loss_pools_target_and_prediction():
    # One track voxel: its pooling cell has the target 1/8; the prediction is
    # 0.9 on that voxel and 0.1 elsewhere, so the cell's pooled prediction is 0.2.
    y_true = np.zeros(SHAPE, dtype=np.float32)
    y_true[0, 0, 0, 3, 0] = 1.0
    y_pred = np.full(SHAPE, 0.1, dtype=np.float32)
    y_pred[0, 0, 0, 3, 0] = 0.9

    n_cells = N_VOXELS // 8
    voxel = (_bce(1, 0.9) + (N_VOXELS - 1) * _bce(0, 0.1)) / N_VOXELS
    pooled = (_bce(0.125, 0.2) + (n_cells - 1) * _bce(0, 0.1)) / n_cells
    assert float(get_loss("paper")(y_true, y_pred)) == pytest.approx(voxel + pooled, rel=1e-5)


def test_losses_accept_events_without_channel_axis():
    y_true = np.zeros((2, 12, 14, 208), dtype=np.float32)
    y_true[1, 5, 5, 100:110] = 1.0
    y_pred = np.full((2, 12, 14, 208), 0.05, dtype=np.float32)

    with_channel = float(get_loss("paper")(y_true[..., None], y_pred[..., None]))
    assert float(get_loss("paper")(y_true, y_pred)) == pytest.approx(with_channel, rel=1e-6)


def test_loss_averages_over_events():
    y_true = np.zeros((2, *SHAPE[1:]), dtype=np.float32)
    y_true[0, 1, 1, 50:58, 0] = 1.0
    y_pred = np.full((2, *SHAPE[1:]), 0.25, dtype=np.float32)
    loss = get_loss("paper")

    first = float(loss(y_true[:1], y_pred[:1]))
    second = float(loss(y_true[1:], y_pred[1:]))
    assert float(loss(y_true, y_pred)) == pytest.approx((first + second) / 2, rel=1e-6)


def test_loss_config_round_trip():
    loss = PooledBinaryCrossentropy(pool=4)
    again = PooledBinaryCrossentropy.from_config(loss.get_config())

    assert again.pool == 4
    assert isinstance(get_loss("bce"), VoxelBinaryCrossentropy)


def test_unknown_loss_and_invalid_pool():
    with pytest.raises(ValueError, match="loss 'focal' is unknown"):
        get_loss("focal")
    with pytest.raises(ValueError, match="pool size 7 is invalid"):
        PooledBinaryCrossentropy(pool=7)


# ---------------------------------------------------------------------------
# Confusion counts


def test_confusion_counts_hand_example():
    truth = np.array([1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.3, 0.5, 0.1, 0.42])

    counts = confusion_counts(truth, scores, 0.42)
    # 0.42 is not above the threshold 0.42.
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (1, 1, 1, 2)
    assert counts.precision == pytest.approx(0.5)
    assert counts.recall == pytest.approx(0.5)
    assert counts.f1 == pytest.approx(0.5)
    assert counts.iou == pytest.approx(1 / 3)
    assert counts.false_positive_rate == pytest.approx(1 / 3)
    assert counts.accuracy == pytest.approx(3 / 5)


def test_confusion_undefined_ratios_are_nan():
    counts = confusion_counts(np.zeros(4), np.zeros(4), 0.5)

    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (0, 0, 0, 4)
    assert math.isnan(counts.precision)
    assert math.isnan(counts.recall)
    assert math.isnan(counts.f1)
    assert counts.false_positive_rate == 0.0


def test_confusion_addition():
    total = Confusion(1, 2, 3, 4) + Confusion(10, 20, 30, 40)
    assert total == Confusion(11, 22, 33, 44)


def test_confusion_shape_mismatch():
    with pytest.raises(ValueError, match="differ"):
        confusion_counts(np.zeros(3), np.zeros(4), 0.5)


# ---------------------------------------------------------------------------
# Score histograms


@pytest.fixture(scope="module")
def scored_voxels() -> tuple[np.ndarray, np.ndarray]:
    """Truth and scores of 20,000 voxels; scores include 0, 1 and exact grid values."""
    rng = np.random.default_rng(3)
    truth = rng.random(20_000) < 0.1
    scores = np.where(truth, rng.beta(4, 2, truth.size), rng.beta(1, 5, truth.size))
    scores[:200] = rng.integers(0, 101, 200) / 100  # on the grid of 100 steps
    scores[200:210] = 0.0
    scores[210:220] = 1.0
    return truth, scores.astype(np.float32)


def test_histogram_counts_exact_at_every_threshold(scored_voxels):
    truth, scores = scored_voxels
    histogram = ScoreHistogram(steps=100)
    for start in range(0, truth.size, 3000):  # streamed in batches
        histogram.update(truth[start : start + 3000], scores[start : start + 3000])

    curve = histogram.confusion()
    for k, threshold in enumerate(histogram.thresholds):
        exact = confusion_counts(truth, scores, threshold)
        assert (curve.tp[k], curve.fp[k], curve.fn[k], curve.tn[k]) == (
            exact.tp,
            exact.fp,
            exact.fn,
            exact.tn,
        ), f"threshold {threshold}"


def test_histogram_merge_equals_single_pass(scored_voxels):
    truth, scores = scored_voxels
    whole, first, second = ScoreHistogram(50), ScoreHistogram(50), ScoreHistogram(50)
    whole.update(truth, scores)
    first.update(truth[:7000], scores[:7000])
    second.update(truth[7000:], scores[7000:])
    first.merge(second)

    np.testing.assert_array_equal(first.positive, whole.positive)
    np.testing.assert_array_equal(first.negative, whole.negative)


def test_roc_auc_equals_mann_whitney_on_grid_scores():
    rng = np.random.default_rng(5)
    truth = rng.random(5000) < 0.3
    # Scores on the grid: the binned AUC has no error then (ties count one half).
    scores = np.where(truth, rng.integers(20, 101, 5000), rng.integers(0, 81, 5000)) / 100
    histogram = ScoreHistogram(steps=100)
    histogram.update(truth, scores)

    u = mannwhitneyu(scores[truth], scores[~truth]).statistic
    expected = u / (truth.sum() * (~truth).sum())
    assert histogram.roc_auc() == pytest.approx(expected, abs=1e-12)
    fpr, tpr = histogram.roc_curve()
    assert fpr[0] == tpr[0] == 0.0
    assert fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0)


def test_average_precision_hand_example():
    # Scores 0.9 (track), 0.7 (other), 0.5 (track), 0.2 (other) on a grid of 10.
    truth = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.7, 0.5, 0.2])
    histogram = ScoreHistogram(steps=10)
    histogram.update(truth, scores)

    # Recall 0.5 at precision 1, then recall 1 at precision 2/3.
    assert histogram.average_precision() == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert histogram.roc_auc() == pytest.approx(0.75)


def test_curves_without_tracks_are_nan():
    histogram = ScoreHistogram(steps=10)
    histogram.update(np.zeros(5), np.linspace(0, 1, 5))

    assert math.isnan(histogram.average_precision())
    assert math.isnan(histogram.roc_auc())


def test_histogram_rejects_scores_outside_unit_interval():
    histogram = ScoreHistogram(steps=10)
    with pytest.raises(ValueError, match="probabilities in"):
        histogram.update(np.zeros(2), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="NaN"):
        histogram.update(np.zeros(2), np.array([0.5, np.nan]))


def test_histogram_table_and_grid_index():
    histogram = ScoreHistogram(steps=4)
    histogram.update(np.array([1, 0]), np.array([0.8, 0.3]))
    table = histogram.table()

    assert list(table["threshold"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(table["tp"]) == [1, 1, 1, 1, 0]
    assert list(table["fp"]) == [1, 1, 0, 0, 0]
    assert histogram.index_of(0.75) == 3
    with pytest.raises(ValueError, match="not on the grid"):
        histogram.index_of(0.3)


def test_invalid_grid_steps():
    with pytest.raises(ValueError, match="steps 0 is invalid"):
        ScoreHistogram(steps=0)


# ---------------------------------------------------------------------------
# Threshold choice


def _curve(tp, fp, fn, tn) -> Confusion:
    return Confusion(*(np.array(v, dtype=np.int64) for v in (tp, fp, fn, tn)))


def test_select_by_f1():
    # F1 per threshold: 2/3, 0.8, 0.5
    curve = _curve([4, 4, 2], [4, 2, 2], [0, 0, 2], [2, 4, 4])
    assert select_threshold_index(curve, "f1") == 1


def test_select_plateau_middle():
    curve = _curve([1, 3, 3, 3, 1], [1, 1, 1, 1, 1], [2, 0, 0, 0, 2], [6, 6, 6, 6, 6])
    assert select_threshold_index(curve, "f1") == 2


def test_select_balanced_and_youden():
    # precision: 0.5, 0.6, 0.8;  recall: 1.0, 0.75, 0.5; fpr: 0.8, 0.4, 0.1
    curve = _curve([8, 6, 4], [8, 4, 1], [0, 2, 4], [2, 6, 9])
    assert select_threshold_index(curve, "balanced") == 1
    # recall - fpr: 0.2, 0.35, 0.4
    assert select_threshold_index(curve, "youden") == 2


def test_select_errors():
    curve = _curve([0, 0], [3, 0], [0, 0], [1, 4])
    with pytest.raises(ValueError, match="no track voxels"):
        select_threshold_index(curve, "f1")
    # Every track voxel scores 0 and so is never kept: precision is undefined throughout.
    hidden = _curve([0, 0], [0, 0], [2, 2], [4, 4])
    with pytest.raises(ValueError, match="undefined at every threshold"):
        select_threshold_index(hidden, "balanced")
    with pytest.raises(ValueError, match="metric 'auc' is unknown"):
        select_threshold_index(curve, "auc")
