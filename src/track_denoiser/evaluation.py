"""The evaluation stage: every model judged on the same events.

Rows of the comparison: the trained network, any further model files
(``compare``), and the classical baseline (``track_denoiser.baseline``). For
each row, on the same events:

- Voxel level, on held-out synthetic denoising shards with known truth:
  exact confusion counts at the row's threshold τ (precision, recall, F1,
  IoU), and ROC and precision-recall curves with their areas from score
  histograms on the grid k / ``curve_steps``. A voxel is track when its
  score exceeds τ.
- Event level, on synthetic labeling shards (half of the events hold a
  track): efficiency = events with a track that the criterion finds / events
  with a track, and false-positive rate = events without a track in which it
  finds one / events without a track, for each criterion of
  ``track_denoiser.recognition``.
- Straight-line fit of the kept voxels on the denoising shards, summarised
  over the events (``track_denoiser.linefit``). A ``truth`` row fits the true
  track voxels for reference.
- Measured events with hand labels, when ``data/x17/noisy``,
  ``data/x17/clean`` and a label file are present: after skipping the first
  ``skip_first`` events (natural order), efficiency = labelled tracks found /
  labelled tracks and false-positive rate = FP / (FP + labelled tracks), the
  form the reference analysis reports. Network and baseline rows classify the
  preprocessed noisy events (voxel kept when its score exceeds τ and its
  preprocessed amplitude is nonzero); the ``conventional`` row takes the
  nonzero voxels of the conventional reconstruction in ``data/x17/clean``.

Outputs under the output folder (every file written atomically):
``metrics.csv``/``metrics.json`` (one row per model), ``measured.csv``/
``measured.json``, ``linefit.csv``, ``curves.csv`` (long format: model,
curve, threshold, x, y), ``amplitudes.csv`` (amplitude histograms) and
``examples.npz`` (a few test events with the first row's output, for plots).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .atomic import atomic_path, atomic_write
from .baseline import BaselineSettings, baseline_scores
from .constants import EVENT_SHAPE, N_VOXELS
from .denoise import classify_measured, limit_tensorflow_threads
from .events import list_event_files, read_event
from .generator import SparseEvents
from .labels import read_labels, select_validation_events
from .linefit import LineFit, LineFitSettings, fit_lines, summarise_line_fits
from .metrics import Confusion, ScoreHistogram, confusion_counts
from .preprocessing import preprocess_measured
from .recognition import CRITERIA, RecognitionSettings, recognise
from .shards import read_shard

__all__ = [
    "CRITERION_LABELS",
    "EvaluationSettings",
    "MeasuredData",
    "ModelRow",
    "build_rows",
    "dense_chunks",
    "evaluate",
    "evaluate_stage",
    "find_measured_data",
]

log = logging.getLogger(__name__)

# Short column suffix of each recognition criterion.
CRITERION_LABELS: dict[str, str] = {
    "track_count": "count",
    "track_count_strict": "count_strict",
    "track_cluster": "cluster",
}

# Names that the evaluation itself uses for rows.
_RESERVED = {"baseline", "conventional", "truth"}

# Amplitude histograms: bins on [0, 1]; larger amplitudes fall into the last bin.
_AMPLITUDE_BINS = 100


@dataclass(frozen=True)
class EvaluationSettings:
    """Settings of the evaluation stage (the ``evaluation`` config section).

    Attributes:
        batch_size: events per forward pass of a network.
        chunk_events: events densified at once from a shard (bounds memory).
        curve_steps: ROC and precision-recall curves use thresholds k / curve_steps.
        n_example_events: test events kept in ``examples.npz`` for plots.
        skip_first: measured events (natural order) left out as calibration events.
        recognition: criteria of the event-level figures.
        linefit: line-fit frame and outlier distance.
        baseline: the classical baseline.
    """

    batch_size: int = 32
    chunk_events: int = 256
    curve_steps: int = 1000
    n_example_events: int = 4
    skip_first: int = 100
    recognition: RecognitionSettings = field(default_factory=RecognitionSettings)
    linefit: LineFitSettings = field(default_factory=LineFitSettings)
    baseline: BaselineSettings = field(default_factory=BaselineSettings)

    def __post_init__(self) -> None:
        for name in ("batch_size", "chunk_events", "curve_steps"):
            if int(getattr(self, name)) < 1:
                msg = f"evaluation {name}={getattr(self, name)!r} is invalid; expected a positive integer"
                raise ValueError(msg)
        for name in ("n_example_events", "skip_first"):
            if int(getattr(self, name)) < 0:
                msg = f"evaluation {name}={getattr(self, name)!r} is invalid; expected 0 or more"
                raise ValueError(msg)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> EvaluationSettings:
        """Build settings from the ``evaluation`` config section.

        Keys that are not settings of the stage itself (``compare``,
        ``labels``) are ignored here.
        """
        section = dict(section or {})
        return cls(
            batch_size=int(section.get("batch_size", cls.batch_size)),
            chunk_events=int(section.get("chunk_events", cls.chunk_events)),
            curve_steps=int(section.get("curve_steps", cls.curve_steps)),
            n_example_events=int(section.get("n_example_events", cls.n_example_events)),
            skip_first=int(section.get("skip_first", cls.skip_first)),
            recognition=RecognitionSettings.from_dict(section.get("recognition")),
            linefit=LineFitSettings.from_dict(section.get("linefit")),
            baseline=BaselineSettings.from_dict(section.get("baseline")),
        )


@dataclass
class ModelRow:
    """One row of the comparison: a network file or the baseline.

    Attributes:
        name: row name in tables and plots.
        kind: ``"network"`` or ``"baseline"``.
        threshold: classification threshold τ of the row's scores.
        path: model file of a network (empty for the baseline).
        architecture: architecture name, for ``.weights.h5`` files.
        baseline: settings of the baseline row.
    """

    name: str
    kind: str
    threshold: float
    path: str = ""
    architecture: str | None = None
    baseline: BaselineSettings | None = None
    _model: Any = field(default=None, repr=False)

    def scores(self, events: npt.NDArray[np.float32], batch_size: int) -> npt.NDArray[np.float32]:
        """Score every voxel of ``events`` (n, 12, 14, 208); float32 in [0, 1], same shape."""
        if self.kind == "baseline":
            return np.clip(baseline_scores(events, self.baseline), 0.0, 1.0)
        from .models import load_model, predict_probabilities

        if self._model is None:
            self._model = load_model(self.path, architecture=self.architecture)
        return predict_probabilities(self._model, events, batch_size)


def _threshold_value(value: Any, where: str) -> float:
    if isinstance(value, str):
        from .threshold import read_threshold

        path = Path(value)
        if not path.is_file():
            msg = f"{where}: threshold file {path} not found; give a number or an existing threshold file"
            raise FileNotFoundError(msg)
        value = read_threshold(path)
    threshold = float(value)
    if not 0.0 <= threshold < 1.0:
        msg = f"{where}: threshold {threshold} is invalid; expected a number in [0, 1)"
        raise ValueError(msg)
    return threshold


def build_rows(
    model: str | os.PathLike[str] | None,
    threshold: str | os.PathLike[str] | float | None,
    compare: Sequence[Mapping[str, Any]] = (),
    baseline: BaselineSettings | None = None,
    model_name: str = "trained",
    model_architecture: str | None = None,
) -> list[ModelRow]:
    """Return the comparison rows: the trained model, the ``compare`` entries, the baseline.

    Args:
        model: the trained model file, or None to leave it out.
        threshold: its τ, as a number or a ``threshold.txt`` path.
        compare: entries ``{name, path, architecture (optional), threshold}``;
            ``threshold`` is a number or a threshold file, and defaults to
            ``threshold.txt`` beside the model file.
        baseline: settings of the baseline row (always the last row).
        model_name: row name of the trained model.
        model_architecture: architecture of the trained model, needed when it
            is a ``.weights.h5`` file.

    Raises:
        FileNotFoundError: a model or threshold file is missing.
        ValueError: an entry lacks a name or path, or a name repeats.
    """
    rows: list[ModelRow] = []
    if model is not None:
        if threshold is None:
            msg = f"model {model} needs a threshold (a number or a threshold.txt file)"
            raise ValueError(msg)
        own = str(threshold) if isinstance(threshold, os.PathLike) else threshold
        rows.append(
            ModelRow(
                model_name,
                "network",
                _threshold_value(own, f"model {model}"),
                str(model),
                architecture=model_architecture,
            )
        )

    for position, entry in enumerate(compare):
        where = f"evaluation.compare[{position}]"
        name = str(entry.get("name") or "").strip()
        path = str(entry.get("path") or "").strip()
        if not name or not path:
            msg = f"{where} = {dict(entry)!r} is invalid; give at least 'name' and 'path'"
            raise ValueError(msg)
        if not Path(path).is_file():
            msg = f"{where}: model file {path} not found"
            raise FileNotFoundError(msg)
        value: Any = entry.get("threshold")
        if value is None:
            value = str(Path(path).parent / "threshold.txt")
        rows.append(
            ModelRow(
                name,
                "network",
                _threshold_value(value, where),
                path,
                architecture=entry.get("architecture"),
            )
        )

    settings = baseline or BaselineSettings()
    rows.append(ModelRow("baseline", "baseline", settings.amplitude_threshold, baseline=settings))

    names = [row.name for row in rows]
    for position, row in enumerate(rows[:-1]):
        if row.name in _RESERVED or row.name in names[:position]:
            msg = f"model name {row.name!r} is used twice or reserved ({sorted(_RESERVED)}); rename it in evaluation.compare"
            raise ValueError(msg)
    return rows


def dense_chunks(
    events: SparseEvents, chunk: int
) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
    """Yield dense ``(noisy, truth)`` blocks of at most ``chunk`` events.

    Yields:
        noisy float32 (m, 12, 14, 208) amplitudes and truth bool
        (m, 12, 14, 208) track voxels (all False for labeling shards).
    """
    n = events.n_events
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        lo, hi = int(events.offsets[start]), int(events.offsets[stop])
        local = np.repeat(np.arange(stop - start), np.diff(events.offsets[start : stop + 1]))
        index = events.indices[lo:hi].astype(np.int64)
        noisy = np.zeros((stop - start, N_VOXELS), dtype=np.float32)
        noisy[local, index] = events.values[lo:hi]
        truth = np.zeros((stop - start, N_VOXELS), dtype=bool)
        truth[local, index] = events.track[lo:hi]
        yield noisy.reshape(-1, *EVENT_SHAPE), truth.reshape(-1, *EVENT_SHAPE)


@dataclass(frozen=True)
class MeasuredData:
    """Measured events with hand labels and their conventional reconstruction.

    Attributes:
        noisy: folder of measured events as recorded.
        clean: folder of the same events after the conventional reconstruction.
        labels: hand label file (header, then ``name<TAB>label``).
    """

    noisy: Path
    clean: Path
    labels: Path


def find_measured_data(
    data_root: str | os.PathLike[str], labels: str | os.PathLike[str]
) -> tuple[MeasuredData | None, str]:
    """Return the measured data under ``data_root`` if complete, else None and the reason.

    ``labels`` is taken relative to ``data_root`` unless it is absolute.
    """
    root = Path(data_root)
    noisy = root / "data" / "x17" / "noisy"
    clean = root / "data" / "x17" / "clean"
    label_path = Path(labels) if Path(labels).is_absolute() else root / labels
    for folder in (noisy, clean):
        if not folder.is_dir() or not list_event_files(folder):
            return None, f"no measured events in {folder}"
    if not label_path.is_file():
        return None, f"label file {label_path} not found"
    return MeasuredData(noisy, clean, label_path), ""


class _RowAccumulator:
    """Figures of one row, accumulated over chunks of events."""

    def __init__(self, steps: int) -> None:
        self.confusion = Confusion(0, 0, 0, 0)
        self.histogram = ScoreHistogram(steps)
        self.fits: list[LineFit] = []
        self.decisions: dict[str, list[npt.NDArray[np.bool_]]] = {c: [] for c in CRITERIA}


def _concatenate_fits(parts: Sequence[LineFit]) -> LineFit:
    if not parts:
        return fit_lines(np.zeros((0, *EVENT_SHAPE), dtype=bool))
    names = [f.name for f in LineFit.__dataclass_fields__.values()]
    return LineFit(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


def _event_rates(
    decision: npt.NDArray[np.bool_], has_track: npt.NDArray[np.bool_]
) -> tuple[float, float]:
    n_tracks = int(has_track.sum())
    n_empty = int((~has_track).sum())
    efficiency = float((decision & has_track).sum() / n_tracks) if n_tracks else math.nan
    fpr = float((decision & ~has_track).sum() / n_empty) if n_empty else math.nan
    return efficiency, fpr


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _measured_columns() -> list[str]:
    columns = ["model", "kind", "threshold", "events", "labelled_tracks"]
    for label in CRITERION_LABELS.values():
        columns += [
            f"found_{label}",
            f"false_positives_{label}",
            f"efficiency_{label}",
            f"false_positive_rate_{label}",
        ]
    return columns


def _write_table(
    rows: Sequence[Mapping[str, Any]],
    csv_path: Path,
    json_path: Path | None,
    extra: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    frame = pd.DataFrame(list(rows), columns=list(columns) if columns is not None else None)
    with atomic_write(csv_path) as handle:
        frame.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")
    if json_path is not None:
        document = dict(extra or {})
        document["rows"] = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        with atomic_write(json_path) as handle:
            json.dump(document, handle, indent=2, allow_nan=False)
            handle.write("\n")


def _amplitude_histogram(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int64]:
    bins = np.clip(
        (np.asarray(values, dtype=np.float64) * _AMPLITUDE_BINS).astype(np.int64),
        0,
        _AMPLITUDE_BINS - 1,
    )
    return np.bincount(bins, minlength=_AMPLITUDE_BINS).astype(np.int64)


def _evaluate_denoising(
    rows: Sequence[ModelRow],
    shards: Sequence[int],
    data_root: str | os.PathLike[str],
    shard_format: str,
    settings: EvaluationSettings,
) -> tuple[
    dict[str, _RowAccumulator], list[LineFit], dict[str, Any], dict[str, npt.NDArray[np.int64]]
]:
    accumulators = {row.name: _RowAccumulator(settings.curve_steps) for row in rows}
    truth_fits: list[LineFit] = []
    examples: dict[str, Any] = {}
    amplitudes = {
        "track": np.zeros(_AMPLITUDE_BINS, np.int64),
        "noise": np.zeros(_AMPLITUDE_BINS, np.int64),
    }
    for index in shards:
        events = read_shard(data_root, "denoising", index, shard_format)  # type: ignore[arg-type]
        log.info("denoising shard %d: %d events", index, events.n_events)
        for noisy, truth in dense_chunks(events, settings.chunk_events):
            truth_fits.append(fit_lines(truth, settings.linefit))
            amplitudes["track"] += _amplitude_histogram(noisy[truth])
            amplitudes["noise"] += _amplitude_histogram(noisy[~truth & (noisy > 0)])
            for position, row in enumerate(rows):
                scores = row.scores(noisy, settings.batch_size)
                acc = accumulators[row.name]
                acc.confusion = acc.confusion + confusion_counts(truth, scores, row.threshold)
                acc.histogram.update(truth, scores)
                acc.fits.append(fit_lines(scores > row.threshold, settings.linefit))
                if position == 0 and not examples and settings.n_example_events > 0:
                    k = min(settings.n_example_events, len(noisy))
                    examples = {
                        "noisy": noisy[:k].copy(),
                        "truth": truth[:k].copy(),
                        "output": scores[:k].copy(),
                        "threshold": np.float64(row.threshold),
                        "model": np.array(row.name),
                        "shard": np.int64(index),
                    }
    return accumulators, truth_fits, examples, amplitudes


def _evaluate_labeling(
    rows: Sequence[ModelRow],
    shards: Sequence[int],
    data_root: str | os.PathLike[str],
    shard_format: str,
    settings: EvaluationSettings,
    accumulators: dict[str, _RowAccumulator],
) -> npt.NDArray[np.bool_]:
    labels: list[npt.NDArray[np.bool_]] = []
    for index in shards:
        events = read_shard(data_root, "labeling", index, shard_format)  # type: ignore[arg-type]
        log.info("labeling shard %d: %d events", index, events.n_events)
        labels.append(np.asarray(events.labels) > 0)
        for noisy, _ in dense_chunks(events, settings.chunk_events):
            for row in rows:
                kept = row.scores(noisy, settings.batch_size) > row.threshold
                found = recognise(kept, settings.recognition)
                for criterion in CRITERIA:
                    accumulators[row.name].decisions[criterion].append(getattr(found, criterion))
    return np.concatenate(labels) if labels else np.zeros(0, dtype=bool)


def _evaluate_measured(
    rows: Sequence[ModelRow],
    measured: MeasuredData,
    settings: EvaluationSettings,
) -> tuple[list[dict[str, Any]], dict[str, Any], npt.NDArray[np.int64]]:
    labels = select_validation_events(read_labels(measured.labels), settings.skip_first)
    files = {path.name.removesuffix(".txt"): path for path in list_event_files(measured.noisy)}
    missing = [name for name in labels if name not in files]
    if missing:
        log.warning(
            "%d labelled events have no file in %s and are left out, e.g. %s",
            len(missing),
            measured.noisy,
            missing[0],
        )
    names = [name for name in labels if name in files]
    has_track = np.array([labels[name] > 0 for name in names], dtype=bool)
    decisions: dict[str, dict[str, list[npt.NDArray[np.bool_]]]] = {
        name: {c: [] for c in CRITERIA} for name in [row.name for row in rows] + ["conventional"]
    }
    histogram = np.zeros(_AMPLITUDE_BINS, np.int64)
    n_missing_clean = 0
    for start in range(0, len(names), settings.chunk_events):
        chunk = names[start : start + settings.chunk_events]
        raw = (
            np.stack([read_event(files[name]) for name in chunk])
            if chunk
            else np.zeros((0, *EVENT_SHAPE), np.float32)
        )
        inputs = preprocess_measured(raw)
        histogram += _amplitude_histogram(inputs[inputs > 0])
        for row in rows:
            kept = classify_measured(row.scores(inputs, settings.batch_size), inputs, row.threshold)
            found = recognise(kept, settings.recognition)
            for criterion in CRITERIA:
                decisions[row.name][criterion].append(getattr(found, criterion))
        clean = np.zeros_like(raw, dtype=bool)
        for i, name in enumerate(chunk):
            path = measured.clean / f"{name}.txt"
            if path.is_file():
                clean[i] = read_event(path) > 0
            else:
                n_missing_clean += 1
        found = recognise(clean, settings.recognition)
        for criterion in CRITERIA:
            decisions["conventional"][criterion].append(getattr(found, criterion))
    if n_missing_clean:
        log.warning(
            "%d evaluated events have no file in %s; the conventional reconstruction counts them as empty",
            n_missing_clean,
            measured.clean,
        )

    n_tracks = int(has_track.sum())
    table = []
    thresholds = {row.name: (row.kind, row.threshold) for row in rows}
    thresholds["conventional"] = ("conventional", math.nan)
    for name, per_criterion in decisions.items():
        kind, threshold = thresholds[name]
        entry: dict[str, Any] = {
            "model": name,
            "kind": kind,
            "threshold": threshold,
            "events": len(names),
            "labelled_tracks": n_tracks,
        }
        for criterion, parts in per_criterion.items():
            decision = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
            found_tracks = int((decision & has_track).sum())
            false_positives = int((decision & ~has_track).sum())
            label = CRITERION_LABELS[criterion]
            entry[f"found_{label}"] = found_tracks
            entry[f"false_positives_{label}"] = false_positives
            entry[f"efficiency_{label}"] = found_tracks / n_tracks if n_tracks else math.nan
            denominator = false_positives + n_tracks
            entry[f"false_positive_rate_{label}"] = (
                false_positives / denominator if denominator else math.nan
            )
        table.append(entry)
    info = {
        "available": True,
        "noisy": str(measured.noisy),
        "clean": str(measured.clean),
        "labels": str(measured.labels),
        "skip_first": settings.skip_first,
        "events": len(names),
        "labelled_tracks": n_tracks,
        "labelled_without_file": len(missing),
        "false_positive_rate": "FP / (FP + labelled tracks)",
    }
    return table, info, histogram


def evaluate(
    rows: Sequence[ModelRow],
    *,
    data_root: str | os.PathLike[str],
    shard_format: str,
    test_shards: Sequence[int],
    labeling_shards: Sequence[int],
    output_dir: str | os.PathLike[str],
    settings: EvaluationSettings | None = None,
    measured: MeasuredData | None = None,
    measured_reason: str = "",
) -> pd.DataFrame:
    """Evaluate every row on the same events and write the result files.

    Args:
        rows: comparison rows (``build_rows``); the first one supplies the
            example events' output.
        data_root: folder holding ``data/``.
        shard_format: ``"compact"`` or ``"npy"``.
        test_shards: indices of held-out denoising shards (voxel level, line fit).
        labeling_shards: indices of labeling shards (event level).
        output_dir: folder for the result files (see the module docstring).
        settings: stage settings.
        measured: measured events with hand labels, or None.
        measured_reason: why ``measured`` is None, for the report.

    Returns:
        The metrics table, one row per model (as written to ``metrics.csv``).
    """
    settings = settings or EvaluationSettings()
    if not rows:
        msg = "no models to evaluate; give a model or evaluation.compare entries"
        raise ValueError(msg)
    if not test_shards:
        msg = "no test shards to evaluate on; set shards.test to a non-empty range"
        raise ValueError(msg)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)

    accumulators, truth_fits, examples, amplitudes = _evaluate_denoising(
        rows, test_shards, data_root, shard_format, settings
    )
    has_track = _evaluate_labeling(
        rows, labeling_shards, data_root, shard_format, settings, accumulators
    )

    metric_rows: list[dict[str, Any]] = []
    linefit_rows: list[dict[str, Any]] = []
    curve_frames: list[pd.DataFrame] = []
    for row in rows:
        acc = accumulators[row.name]
        counts = acc.confusion
        entry: dict[str, Any] = {
            "model": row.name,
            "kind": row.kind,
            "path": row.path,
            "threshold": row.threshold,
            "voxel_tp": int(counts.tp),
            "voxel_fp": int(counts.fp),
            "voxel_fn": int(counts.fn),
            "voxel_tn": int(counts.tn),
            "precision": counts.precision,
            "recall": counts.recall,
            "f1": counts.f1,
            "iou": counts.iou,
            "roc_auc": acc.histogram.roc_auc(),
            "pr_auc": acc.histogram.average_precision(),
            "labeling_events": len(has_track),
            "labeling_tracks": int(has_track.sum()),
        }
        for criterion in CRITERIA:
            parts = acc.decisions[criterion]
            decision = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
            efficiency, fpr = _event_rates(decision, has_track)
            label = CRITERION_LABELS[criterion]
            entry[f"efficiency_{label}"] = efficiency
            entry[f"false_positive_rate_{label}"] = fpr
        summary = summarise_line_fits(_concatenate_fits(acc.fits))
        for key, value in summary.items():
            entry[f"line_{key}"] = value
        metric_rows.append(entry)
        linefit_rows.append({"model": row.name, **summary})

        fpr_curve, tpr_curve = acc.histogram.roc_curve()
        recall_curve, precision_curve = acc.histogram.precision_recall_curve()
        grid = acc.histogram.thresholds
        curve_frames.append(
            pd.DataFrame(
                {
                    "model": row.name,
                    "curve": "roc",
                    "threshold": np.append(grid[::-1], np.nan),
                    "x": fpr_curve,
                    "y": tpr_curve,
                }
            )
        )
        curve_frames.append(
            pd.DataFrame(
                {
                    "model": row.name,
                    "curve": "pr",
                    "threshold": grid,
                    "x": recall_curve,
                    "y": precision_curve,
                }
            )
        )
        log.info(
            "%s (τ = %g): precision %.4f, recall %.4f, F1 %.4f, IoU %.4f, ROC AUC %.4f",
            row.name,
            row.threshold,
            counts.precision,
            counts.recall,
            counts.f1,
            counts.iou,
            entry["roc_auc"],
        )
    linefit_rows.append({"model": "truth", **summarise_line_fits(_concatenate_fits(truth_fits))})

    settings_record = {
        "data_root": str(data_root),
        "shard_format": shard_format,
        "test_shards": [int(i) for i in test_shards],
        "labeling_shards": [int(i) for i in labeling_shards],
        "curve_steps": settings.curve_steps,
        "recognition": settings.recognition.__dict__,
        "linefit": settings.linefit.__dict__,
        "baseline": settings.baseline.__dict__,
    }
    _write_table(
        metric_rows, output / "metrics.csv", output / "metrics.json", {"settings": settings_record}
    )
    _write_table(linefit_rows, output / "linefit.csv", None)
    with atomic_write(output / "curves.csv") as handle:
        pd.concat(curve_frames, ignore_index=True).to_csv(
            handle, index=False, float_format="%.6g", lineterminator="\n"
        )

    measured_histogram = np.zeros(_AMPLITUDE_BINS, np.int64)
    if measured is not None:
        measured_rows, info, measured_histogram = _evaluate_measured(rows, measured, settings)
    else:
        measured_rows, info = (
            [],
            {"available": False, "reason": measured_reason or "no measured data given"},
        )
        log.info("measured-data evaluation not available: %s", info["reason"])
    _write_table(
        measured_rows, output / "measured.csv", output / "measured.json", info, _measured_columns()
    )

    edges = np.linspace(0.0, 1.0, _AMPLITUDE_BINS + 1)
    histogram_table = pd.DataFrame(
        {
            "low": edges[:-1],
            "high": edges[1:],
            "track": amplitudes["track"],
            "noise": amplitudes["noise"],
            "measured": measured_histogram,
        }
    )
    with atomic_write(output / "amplitudes.csv") as handle:
        histogram_table.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")

    with atomic_path(output / "examples.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **(examples or {"model": np.array("")}))
    return pd.DataFrame(metric_rows)


def evaluate_stage(
    *,
    model: str | os.PathLike[str] | None,
    threshold: str | os.PathLike[str] | float | None,
    data_root: str | os.PathLike[str],
    shard_format: str,
    test_range: Sequence[int],
    labeling_range: Sequence[int],
    evaluation: Mapping[str, Any] | None,
    output_dir: str | os.PathLike[str],
    model_name: str = "trained",
    model_architecture: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Run the evaluation stage from config values (the workflow's entry point).

    Args:
        model: trained model file (``results/model/model.keras``).
        threshold: its ``threshold.txt`` or a number.
        data_root: folder holding ``data/``.
        shard_format: ``"compact"`` or ``"npy"``.
        test_range: half-open ``[first, last)`` of held-out denoising shards.
        labeling_range: half-open ``[first, last)`` of labeling shards.
        evaluation: the ``evaluation`` config section (compare, labels,
            skip_first, baseline, recognition, linefit, ...).
        output_dir: ``results/evaluation``.
        model_name: row name of the trained model.
        model_architecture: its architecture, for a ``.weights.h5`` file.
        threads: CPU threads for TensorFlow; its default (all cores) when None.
    """
    limit_tensorflow_threads(threads)
    section = dict(evaluation or {})
    settings = EvaluationSettings.from_config(section)
    rows = build_rows(
        model,
        threshold,
        section.get("compare") or [],
        settings.baseline,
        model_name,
        model_architecture,
    )
    measured, reason = find_measured_data(data_root, section.get("labels", "data/x17/labels.txt"))
    return evaluate(
        rows,
        data_root=data_root,
        shard_format=shard_format,
        test_shards=list(range(*test_range)),
        labeling_shards=list(range(*labeling_range)),
        output_dir=output_dir,
        settings=settings,
        measured=measured,
        measured_reason=reason,
    )
