"""Choice of the classification threshold τ on validation shards.

A voxel counts as track when the network output exceeds τ. The published
analysis uses τ = 0.42 (``constants.PAPER_THRESHOLD``); here τ is chosen on
validation data: the network scores every voxel, the counts of track and
other voxels are accumulated on the grid τ_k = k / steps, and the τ that is
best by the chosen metric is written to ``threshold.txt`` (the number
alone, as the original tools read it). The whole scan is written as CSV.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_write
from .dataset import ShardDataset, open_shards
from .metrics import THRESHOLD_METRICS, ScoreHistogram, select_threshold_index

if TYPE_CHECKING:
    import keras

__all__ = [
    "ThresholdSelection",
    "read_threshold",
    "scan_scores",
    "select_threshold",
    "write_threshold",
]

log = logging.getLogger(__name__)


def write_threshold(path: str | os.PathLike[str], threshold: float) -> None:
    """Write τ to ``path`` as one number on one line, atomically."""
    value = float(threshold)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        msg = f"threshold {threshold!r} is invalid; expected a number in [0, 1]"
        raise ValueError(msg)
    with atomic_write(path) as handle:
        handle.write(f"{value!r}\n")


def read_threshold(path: str | os.PathLike[str]) -> float:
    """Read τ from a threshold file that contains one number in [0, 1].

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, contains more than one value, or a value
            that is not a number in [0, 1].
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8").strip()
    fix = "write a single number in [0, 1], or run 'track-denoiser select-threshold'"
    if not text:
        msg = f"threshold file {path} is empty; {fix}"
        raise ValueError(msg)
    if len(text.split()) > 1:
        msg = f"threshold file {path} contains {len(text.split())} values ({text[:40]!r}); {fix}"
        raise ValueError(msg)
    try:
        value = float(text)
    except ValueError:
        msg = f"threshold file {path} contains {text[:40]!r}, not a number; {fix}"
        raise ValueError(msg) from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        msg = f"threshold file {path} contains {value}, outside [0, 1]; {fix}"
        raise ValueError(msg)
    return value


@dataclass(frozen=True)
class ThresholdSelection:
    """The chosen threshold and the validation figures behind it.

    Attributes:
        threshold: τ.
        metric: the metric τ was chosen by.
        counts: voxel counts and ratios at τ (see ``metrics.Confusion.as_dict``).
        roc_auc: area under the voxel ROC curve.
        average_precision: area under the voxel precision-recall curve.
        n_events: validation events scored.
    """

    threshold: float
    metric: str
    counts: dict[str, Any]
    roc_auc: float
    average_precision: float
    n_events: int


def scan_scores(model: keras.Model, data: ShardDataset, steps: int = 1000) -> ScoreHistogram:
    """Score every voxel of ``data`` and return the score histograms of track and other voxels."""
    histogram = ScoreHistogram(steps)
    for noisy, clean in data.tf_dataset():
        scores = model.predict_on_batch(noisy)
        histogram.update(clean.numpy(), scores)
    return histogram


def select_threshold(
    model_path: str | os.PathLike[str],
    validation_files: Sequence[str | os.PathLike[str]],
    threshold_path: str | os.PathLike[str],
    scan_path: str | os.PathLike[str],
    *,
    metric: str = "f1",
    steps: int = 1000,
    batch_size: int = 32,
    architecture: str | None = None,
) -> ThresholdSelection:
    """Choose τ on validation shards and write ``threshold.txt`` and the scan as CSV.

    Args:
        model_path: trained model (``.keras``, ``.h5`` or ``.weights.h5``).
        validation_files: validation shard files (see ``dataset.open_shards``).
        threshold_path: file that receives τ.
        scan_path: CSV with one row per grid threshold: counts, precision,
            recall, F1, IoU and false positive rate.
        metric: one of ``metrics.THRESHOLD_METRICS``: ``"f1"`` (default),
            ``"balanced"`` (precision = recall) or ``"youden"``.
        steps: grid intervals; τ is a multiple of 1 / steps.
        batch_size: events per forward pass.
        architecture: architecture of a ``.weights.h5`` model file.

    Returns:
        The selection.
    """
    import pandas as pd

    from .models import load_model

    if metric not in THRESHOLD_METRICS:
        msg = f"threshold metric {metric!r} is unknown; expected one of {THRESHOLD_METRICS}"
        raise ValueError(msg)
    model = load_model(model_path, architecture)
    data = ShardDataset(open_shards(validation_files), batch_size)
    histogram = scan_scores(model, data, steps)

    curve = histogram.confusion()
    index = select_threshold_index(curve, metric)
    threshold = float(histogram.thresholds[index])
    counts = {key: _scalar(value[index]) for key, value in curve.as_dict().items()}
    selection = ThresholdSelection(
        threshold=threshold,
        metric=metric,
        counts=counts,
        roc_auc=histogram.roc_auc(),
        average_precision=histogram.average_precision(),
        n_events=data.n_events,
    )

    with atomic_write(scan_path) as handle:
        pd.DataFrame(histogram.table()).to_csv(handle, index=False)
    write_threshold(threshold_path, threshold)
    log.info(
        "threshold %.4g by %s on %d events: precision %.4f, recall %.4f, F1 %.4f, ROC AUC %.4f",
        threshold,
        metric,
        data.n_events,
        counts["precision"],
        counts["recall"],
        counts["f1"],
        selection.roc_auc,
    )
    return selection


def _scalar(value: Any) -> float | int:
    number = value.item() if hasattr(value, "item") else value
    return number if isinstance(number, int) else float(number)
