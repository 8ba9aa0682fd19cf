"""Voxel-level classification metrics, at one threshold or over a threshold grid.

A voxel counts as track when the network output exceeds the threshold τ
(``score > τ``, strictly). Truth is the clean target: track voxels are
positives, every other voxel (noise or empty) is a negative.

Two entry points:

- ``confusion_counts(truth, scores, threshold)`` returns the exact
  ``Confusion`` counts at one threshold.
- ``ScoreHistogram`` accumulates, batch by batch, how many positive and
  negative voxels have each score, binned on the grid τ_k = k / steps
  (k = 0 … steps). Its counts at every grid threshold are exact, and from
  them it gives ROC and precision-recall curves with their areas::

      histogram = ScoreHistogram(steps=1000)
      for truth, scores in batches:          # any shapes, equal per batch
          histogram.update(truth, scores)
      curve = histogram.confusion()          # Confusion of arrays, one entry per τ_k
      curve.f1[histogram.index_of(0.42)], histogram.roc_auc()

Ratios whose denominator is zero (precision with no predicted positives,
recall without positives) are NaN, never a made-up 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "THRESHOLD_METRICS",
    "Confusion",
    "ScoreHistogram",
    "confusion_counts",
    "select_threshold_index",
]

# Metrics a threshold can be chosen by; see select_threshold_index.
THRESHOLD_METRICS: tuple[str, ...] = ("f1", "balanced", "youden")

Counts = Any  # an int, or an int64 array with one entry per threshold


def _ratio(numerator: Counts, denominator: Counts) -> Any:
    """Return numerator / denominator as float64, NaN where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class Confusion:
    """Voxel confusion counts at one threshold (ints) or at many (int64 arrays).

    Attributes:
        tp: track voxels classified as track.
        fp: other voxels classified as track.
        fn: track voxels classified as other.
        tn: other voxels classified as other.
    """

    tp: Counts
    fp: Counts
    fn: Counts
    tn: Counts

    @property
    def positives(self) -> Counts:
        """Number of track voxels."""
        return self.tp + self.fn

    @property
    def negatives(self) -> Counts:
        """Number of other voxels."""
        return self.fp + self.tn

    @property
    def precision(self) -> Any:
        """TP / (TP + FP): share of the voxels kept as track that are track."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> Any:
        """TP / (TP + FN): share of the track voxels kept (signal efficiency, TPR)."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> Any:
        """2 TP / (2 TP + FP + FN): harmonic mean of precision and recall."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> Any:
        """TP / (TP + FP + FN): intersection over union of kept and true track voxels."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def false_positive_rate(self) -> Any:
        """FP / (FP + TN): share of the other voxels kept as track."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def accuracy(self) -> Any:
        """(TP + TN) / all voxels."""
        return _ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def as_dict(self) -> dict[str, Any]:
        """Return counts and ratios by name, for tables and JSON."""
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "iou": self.iou,
            "false_positive_rate": self.false_positive_rate,
        }


def confusion_counts(truth: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> Confusion:
    """Count voxels by truth and by ``score > threshold``.

    Args:
        truth: clean target of any shape; nonzero marks a track voxel.
        scores: network outputs of the same shape.
        threshold: τ; a voxel is classified as track when its score exceeds it.

    Returns:
        Integer counts.
    """
    truth_arr = np.asarray(truth)
    scores_arr = np.asarray(scores)
    if truth_arr.shape != scores_arr.shape:
        msg = f"truth of shape {truth_arr.shape} and scores of shape {scores_arr.shape} differ"
        raise ValueError(msg)
    actual = truth_arr.astype(bool).ravel()
    predicted = (scores_arr > threshold).ravel()
    tp = int(np.count_nonzero(actual & predicted))
    n_pred = int(np.count_nonzero(predicted))
    n_true = int(np.count_nonzero(actual))
    return Confusion(tp=tp, fp=n_pred - tp, fn=n_true - tp, tn=actual.size - n_pred - n_true + tp)


def _first_plateau_middle(values: npt.NDArray[np.float64], best: float) -> int:
    """Return the middle index of the first run of entries equal to ``best``."""
    hits = np.flatnonzero(values == best)
    start = hits[0]
    end = start
    while end + 1 < len(values) and values[end + 1] == best:
        end += 1
    return int((start + end) // 2)


def select_threshold_index(curve: Confusion, metric: str = "f1") -> int:
    """Return the index of the best threshold of a curve of counts.

    Args:
        curve: counts per threshold, thresholds increasing.
        metric: ``"f1"`` maximises F1 (and so IoU, which rises with F1);
            ``"balanced"`` minimises |precision - recall| (the break-even
            point); ``"youden"`` maximises recall - false positive rate.

    Returns:
        The index. Where several neighbouring thresholds give the same best
        value, the middle one of the first such run is chosen.

    Raises:
        ValueError: unknown metric, no track voxels at all, or the metric
            is undefined at every threshold.
    """
    if metric not in THRESHOLD_METRICS:
        msg = f"threshold metric {metric!r} is unknown; expected one of {THRESHOLD_METRICS}"
        raise ValueError(msg)
    if not np.any(np.asarray(curve.positives) > 0):
        msg = "the data hold no track voxels; a threshold cannot be chosen without them"
        raise ValueError(msg)
    if metric == "f1":
        values = np.asarray(curve.f1, dtype=np.float64)
    elif metric == "balanced":
        values = -np.abs(np.asarray(curve.precision) - np.asarray(curve.recall))
    else:
        values = np.asarray(curve.recall) - np.asarray(curve.false_positive_rate)
    if not np.any(np.isfinite(values)):
        msg = f"the {metric} metric is undefined at every threshold; no threshold can be chosen"
        raise ValueError(msg)
    best = float(np.nanmax(values))
    return _first_plateau_middle(values, best)


class ScoreHistogram:
    """Streaming score histograms of track and other voxels on a threshold grid.

    Bin b contains the voxels with exactly b grid thresholds strictly below
    their score: bin 0 is score 0, bin b is (τ_{b-1}, τ_b]. The number of
    voxels with ``score > τ_k`` is then the sum of bins k + 1 … steps, exact
    for every grid threshold.

    Attributes:
        steps: number of grid intervals; thresholds are k / steps, k = 0 … steps.
        thresholds: float64 (steps + 1,).
        positive: int64 (steps + 1,) counts of track voxels per bin.
        negative: int64 (steps + 1,) counts of other voxels per bin.
    """

    def __init__(self, steps: int = 1000) -> None:
        if int(steps) < 1:
            msg = f"threshold grid steps {steps} is invalid; expected a positive integer"
            raise ValueError(msg)
        self.steps = int(steps)
        self.thresholds = np.arange(self.steps + 1, dtype=np.float64) / self.steps
        self.positive = np.zeros(self.steps + 1, dtype=np.int64)
        self.negative = np.zeros(self.steps + 1, dtype=np.int64)

    def bin_index(self, scores: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Return the bin of every score, int64 of the flattened shape.

        Raises:
            ValueError: a score is NaN or outside [0, 1].
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        if s.size and not (s.min() >= 0.0 and s.max() <= 1.0):
            msg = (
                f"scores must be probabilities in [0, 1]; got values from {np.nanmin(s):g} "
                f"to {np.nanmax(s):g}{' and NaN' if np.isnan(s).any() else ''}"
            )
            raise ValueError(msg)
        bins = np.clip(np.ceil(s * self.steps).astype(np.int64), 0, self.steps)

        # s * steps can round across an integer; move such scores to the bin
        # whose bounds (τ_{b-1}, τ_b] hold them.
        th = self.thresholds
        bins += s > th[bins]
        bins -= (bins > 0) & (s <= th[np.maximum(bins - 1, 0)])
        return bins

    def update(self, truth: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        """Add a batch of voxels.

        Args:
            truth: clean target, any shape; nonzero marks a track voxel.
            scores: probabilities in [0, 1] of the same shape.
        """
        truth_arr = np.asarray(truth)
        scores_arr = np.asarray(scores)
        if truth_arr.shape != scores_arr.shape:
            msg = f"truth of shape {truth_arr.shape} and scores of shape {scores_arr.shape} differ"
            raise ValueError(msg)
        bins = self.bin_index(scores_arr)
        actual = truth_arr.astype(bool).ravel()
        self.positive += np.bincount(bins[actual], minlength=self.steps + 1)
        self.negative += np.bincount(bins[~actual], minlength=self.steps + 1)

    def merge(self, other: ScoreHistogram) -> None:
        """Add the counts of another histogram on the same grid."""
        if other.steps != self.steps:
            msg = f"cannot merge histograms of {other.steps} and {self.steps} steps"
            raise ValueError(msg)
        self.positive += other.positive
        self.negative += other.negative

    def index_of(self, threshold: float) -> int:
        """Return the grid index of ``threshold``, which must lie on the grid."""
        index = round(float(threshold) * self.steps)
        if not 0 <= index <= self.steps or abs(self.thresholds[index] - threshold) > 1e-9:
            msg = f"threshold {threshold} is not on the grid k / {self.steps}"
            raise ValueError(msg)
        return index

    def confusion(self) -> Confusion:
        """Return the counts at every grid threshold, int64 arrays of length steps + 1."""
        n_pos = int(self.positive.sum())
        n_neg = int(self.negative.sum())
        tp = n_pos - np.cumsum(self.positive)
        fp = n_neg - np.cumsum(self.negative)
        return Confusion(tp=tp, fp=fp, fn=n_pos - tp, tn=n_neg - fp)

    def roc_curve(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return the ROC curve as (false positive rate, true positive rate).

        Points run from the strictest threshold (τ = 1) to classifying every
        voxel as track, so both arrays increase; length steps + 2.
        """
        curve = self.confusion()
        fpr = np.concatenate([np.asarray(curve.false_positive_rate)[::-1], [1.0]])
        tpr = np.concatenate([np.asarray(curve.recall)[::-1], [1.0]])
        return fpr, tpr

    def roc_auc(self) -> float:
        """Return the area under the ROC curve (trapezoids between grid points)."""
        fpr, tpr = self.roc_curve()
        if np.isnan(fpr).any() or np.isnan(tpr).any():
            return float("nan")
        return float(np.trapezoid(tpr, fpr))

    def precision_recall_curve(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return (recall, precision) at every grid threshold, thresholds increasing.

        Precision is NaN where no voxel is classified as track.
        """
        curve = self.confusion()
        recall = np.asarray(curve.recall, dtype=np.float64)
        precision = np.asarray(curve.precision, dtype=np.float64)
        return recall, precision

    def average_precision(self) -> float:
        """Return the area under the precision-recall curve as a step sum.

        AP = Σ (R_k - R_{k+1}) P_k over the grid thresholds, plus the step to
        recall 1 at "everything is track"; NaN without track voxels.
        """
        curve = self.confusion()
        n_pos = int(self.positive.sum())
        if n_pos == 0:
            return float("nan")
        recall = np.concatenate([[1.0], np.asarray(curve.recall)])
        precision = np.concatenate(
            [[n_pos / (n_pos + int(self.negative.sum()))], np.asarray(curve.precision)]
        )
        gain = recall[:-1] - recall[1:]
        # Where recall rises, TP > 0, so precision is defined.
        return float(np.sum(np.where(gain > 0, gain * np.nan_to_num(precision[:-1]), 0.0)))

    def table(self) -> dict[str, npt.NDArray[Any]]:
        """Return one column per quantity, one row per grid threshold."""
        curve = self.confusion()
        columns: dict[str, npt.NDArray[Any]] = {"threshold": self.thresholds}
        for name, values in curve.as_dict().items():
            columns[name] = np.asarray(values)
        return columns
