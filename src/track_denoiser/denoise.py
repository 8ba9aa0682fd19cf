"""Denoise folders of measured events: the library side of ``track-denoiser denoise``.

The ``track<N>.txt`` events of the input folder are read in batches, in
natural order. Each batch is preprocessed (chimney removal, then division by
the event's maximum) and classified by the network, and each event is written
to the output folder under the same file name in the same text format. A voxel is kept when the network
output exceeds the threshold τ and the voxel is nonzero in the preprocessed
input; it is written with its amplitude from the input file (ADC counts).
Voxels that chimney removal zeroed are never kept.

Beside the events the output folder gets ``summary.csv``, one row per
denoised event (see ``SUMMARY_COLUMNS``), and, with ``skip_invalid``,
``skipped.csv`` (``file``, ``reason``) listing the input files that were
skipped as malformed.

Files and reruns:

- Every file is written to a temporary name and renamed, so no file is ever
  half-written.
- ``summary.csv`` and ``skipped.csv`` of an earlier run are deleted when a
  run starts and written when it ends, so ``summary.csv`` is present only
  after a complete run, and it lists exactly the events of that run.
- An output event of an earlier run is replaced when its input is denoised
  again. With ``skip_invalid``, an earlier output whose input is now skipped
  is deleted. Output events of an earlier run without a matching input file
  are left in place and named in a warning; they are not in ``summary.csv``.
- A run that stops on a malformed file keeps the event files of the batches
  it finished, but writes no ``summary.csv``.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from .atomic import atomic_write
from .events import EventFormatError, list_event_files, read_event, write_event
from .linefit import LineFitSettings, fit_lines
from .preprocessing import preprocess_measured
from .recognition import RecognitionSettings, recognise

__all__ = [
    "SKIPPED_COLUMNS",
    "SUMMARY_COLUMNS",
    "DenoiseResult",
    "classify_measured",
    "denoise_folder",
    "limit_tensorflow_threads",
    "read_event_checked",
    "resolve_threshold",
]

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.csv"
SKIPPED_FILE = "skipped.csv"

# Columns of summary.csv. Track decisions are 0/1; line-fit distances are in
# pad widths with z scaled by the line fit's z_scale (see track_denoiser.linefit).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "name",
    "input_voxels",
    "chimney_voxels",
    "kept_voxels",
    "pads",
    "largest_cluster_pads",
    "track_count",
    "track_count_strict",
    "track_cluster",
    "line_outliers",
    "line_outlier_share",
    "line_mean_distance",
    "line_crossed",
    "line_missed",
    "line_missed_share",
)
SKIPPED_COLUMNS: tuple[str, ...] = ("file", "reason")


@dataclass
class DenoiseResult:
    """Outcome of ``denoise_folder``.

    Attributes:
        denoised: number of events written.
        skipped: ``(file name, reason)`` of each skipped input file.
        summary: path of ``summary.csv``.
        skipped_file: path of ``skipped.csv``, or None without ``skip_invalid``.
        threshold: the threshold τ that was applied.
        stale: output event files of an earlier run that have no input now.
    """

    denoised: int
    skipped: list[tuple[str, str]]
    summary: Path
    skipped_file: Path | None
    threshold: float
    stale: list[Path] = field(default_factory=list)


def limit_tensorflow_threads(threads: int | None) -> None:
    """Let TensorFlow use at most ``threads`` CPU threads per thread pool (None: its default).

    It must run before TensorFlow executes its first operation; later calls
    leave the pools as they are and log that at debug level.
    """
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:
        log.debug("TensorFlow is already initialised; keeping its thread pools")


def resolve_threshold(model: str | os.PathLike[str], threshold: float | None) -> float:
    """Return ``threshold``, or τ from ``threshold.txt`` beside the model file.

    Raises:
        FileNotFoundError: no threshold was given and none lies beside the model.
        ValueError: the threshold is not in (0, 1).
    """
    if threshold is None:
        from .threshold import read_threshold

        path = Path(model).parent / "threshold.txt"
        if not path.is_file():
            msg = (
                f"threshold file {path} not found beside the model; "
                "pass --threshold T (the published analysis uses 0.42)"
            )
            raise FileNotFoundError(msg)
        threshold = read_threshold(path)
    value = float(threshold)
    if not 0.0 < value < 1.0:
        msg = f"threshold {value} is invalid; expected a number in (0, 1)"
        raise ValueError(msg)
    return value


def read_event_checked(path: Path) -> npt.NDArray[np.float32]:
    """Read one text event; a file that is not UTF-8 text counts as malformed.

    Raises:
        EventFormatError: the file is malformed (names the file and line).
    """
    try:
        return read_event(path)
    except UnicodeDecodeError as error:
        msg = f"not a text file (byte {error.start} is not UTF-8); expected lines 'x, y, z, E'"
        raise EventFormatError(path, None, msg) from None


def classify_measured(
    probabilities: npt.NDArray[np.floating[Any]],
    inputs: npt.NDArray[np.floating[Any]],
    threshold: float,
) -> npt.NDArray[np.bool_]:
    """Return the kept voxels of measured events: output above τ and input nonzero.

    Args:
        probabilities: network output, shape (n, 12, 14, 208).
        inputs: preprocessed network input of the same shape.
        threshold: classification threshold τ.

    Returns:
        bool (n, 12, 14, 208).
    """
    return (probabilities > threshold) & (inputs > 0)


def _summary_rows(
    names: Sequence[str],
    raw: npt.NDArray[np.float32],
    inputs: npt.NDArray[np.float32],
    kept: npt.NDArray[np.bool_],
    recognition: RecognitionSettings,
    linefit: LineFitSettings,
) -> list[dict[str, Any]]:
    n = len(names)
    input_voxels = np.count_nonzero(raw.reshape(n, -1), axis=1)
    chimney = input_voxels - np.count_nonzero(inputs.reshape(n, -1), axis=1)
    found = recognise(kept, recognition)
    fit = fit_lines(kept, linefit)
    rows = []
    for i, name in enumerate(names):
        rows.append(
            {
                "name": name,
                "input_voxels": int(input_voxels[i]),
                "chimney_voxels": int(chimney[i]),
                "kept_voxels": int(found.voxels[i]),
                "pads": int(found.pads[i]),
                "largest_cluster_pads": int(found.largest_cluster_pads[i]),
                "track_count": int(found.track_count[i]),
                "track_count_strict": int(found.track_count_strict[i]),
                "track_cluster": int(found.track_cluster[i]),
                "line_outliers": int(fit.outliers[i]),
                "line_outlier_share": _csv_float(fit.outlier_share[i]),
                "line_mean_distance": _csv_float(fit.mean_distance[i]),
                "line_crossed": int(fit.crossed[i]),
                "line_missed": int(fit.missed[i]),
                "line_missed_share": _csv_float(fit.missed_share[i]),
            }
        )
    return rows


def _csv_float(value: float) -> str:
    # Empty cell for a missing figure (no line fit), six significant digits otherwise.
    return "" if not np.isfinite(value) else f"{float(value):.6g}"


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _check_folders(input_dir: Path, output_dir: Path) -> list[Path]:
    files = list_event_files(input_dir)
    if not files:
        msg = f"no track<N>.txt event files in {input_dir}; nothing to denoise"
        raise FileNotFoundError(msg)
    if output_dir.exists() and not output_dir.is_dir():
        msg = f"output {output_dir} exists and is not a folder; choose another --output"
        raise FileExistsError(msg)
    if output_dir.resolve() == input_dir.resolve():
        msg = f"output folder {output_dir} is the input folder; choose another --output so the measured events are kept"
        raise ValueError(msg)
    return files


def denoise_folder(
    model: str | os.PathLike[str],
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    batch_size: int = 64,
    skip_invalid: bool = False,
    architecture: str | None = None,
    progress: bool | None = None,
    recognition: RecognitionSettings | None = None,
    linefit: LineFitSettings | None = None,
    threads: int | None = None,
) -> DenoiseResult:
    """Denoise every event file of a folder (see the module docstring).

    Args:
        model: ``.keras``, ``.h5`` or ``.weights.h5`` file of the network.
        input_dir: folder of measured ``track<N>.txt`` events.
        output_dir: folder for the denoised events, ``summary.csv`` and
            ``skipped.csv``; created when missing. Must differ from ``input_dir``.
        threshold: classification threshold τ; by default read from
            ``threshold.txt`` beside the model file.
        batch_size: events read, predicted and written together.
        skip_invalid: skip malformed input files and list them in
            ``skipped.csv`` instead of stopping at the first one.
        architecture: model architecture name, needed for ``.weights.h5``.
        progress: show a progress bar; by default only on an interactive terminal.
        recognition: recognition criteria for the summary.
        linefit: line-fit settings for the summary.
        threads: CPU threads for TensorFlow; its default (all cores) when None.

    Returns:
        What was written.

    Raises:
        EventFormatError: an input file is malformed and ``skip_invalid`` is
            not set; the message names the file and the line.
        FileNotFoundError: the input folder, its events or the threshold file
            are missing.
    """
    from .models import load_model, predict_probabilities

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if int(batch_size) < 1:
        msg = f"batch size {batch_size} is invalid; expected a positive integer"
        raise ValueError(msg)
    files = _check_folders(input_dir, output_dir)
    tau = resolve_threshold(model, threshold)
    recognition = recognition or RecognitionSettings()
    linefit = linefit or LineFitSettings()
    limit_tensorflow_threads(threads)
    network = load_model(model, architecture=architecture)
    log.info(
        "denoising %d events from %s with %s (threshold %g)", len(files), input_dir, model, tau
    )

    output_dir.mkdir(parents=True, exist_ok=True)
    summary_path = output_dir / SUMMARY_FILE
    skipped_path = output_dir / SKIPPED_FILE
    # Without summary.csv the folder does not look complete until this run ends.
    summary_path.unlink(missing_ok=True)
    skipped_path.unlink(missing_ok=True)

    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(files), desc="denoise", unit="event", disable=not show) as bar:
        for first in range(0, len(files), batch_size):
            batch_files = files[first : first + batch_size]
            names: list[str] = []
            raw_events: list[npt.NDArray[np.float32]] = []
            for path in batch_files:
                try:
                    raw_events.append(read_event_checked(path))
                except EventFormatError as error:
                    if not skip_invalid:
                        raise
                    reason = f"line {error.line}: {error.problem}" if error.line else error.problem
                    skipped.append((path.name, reason))
                    log.warning("skipped %s: %s", path, reason)
                    stale = output_dir / path.name
                    if stale.exists():
                        stale.unlink()
                        log.info("removed %s of an earlier run: its input is malformed now", stale)
                    continue
                names.append(path.name)
            if names:
                raw = np.stack(raw_events)
                inputs = preprocess_measured(raw)
                probabilities = predict_probabilities(network, inputs, batch_size)
                kept = classify_measured(probabilities, inputs, tau)
                for i, name in enumerate(names):
                    write_event(output_dir / name, np.where(kept[i], raw[i], 0.0))
                event_names = [name.removesuffix(".txt") for name in names]
                rows += _summary_rows(event_names, raw, inputs, kept, recognition, linefit)
            bar.update(len(batch_files))

    written = {path.name for path in files} - {name for name, _ in skipped}
    stale_files = [path for path in list_event_files(output_dir) if path.name not in written]
    if stale_files:
        log.warning(
            "%d event files in %s have no input in %s (from an earlier run?) and are not in %s, e.g. %s",
            len(stale_files),
            output_dir,
            input_dir,
            SUMMARY_FILE,
            stale_files[0].name,
        )

    if skip_invalid:
        _write_csv(skipped_path, SKIPPED_COLUMNS, [{"file": n, "reason": r} for n, r in skipped])
    _write_csv(summary_path, SUMMARY_COLUMNS, rows)
    log.info(
        "denoised %d events into %s (%d skipped); tracks found: %d by count, %d by clusters",
        len(rows),
        output_dir,
        len(skipped),
        sum(r["track_count"] for r in rows),
        sum(r["track_cluster"] for r in rows),
    )
    return DenoiseResult(
        denoised=len(rows),
        skipped=skipped,
        summary=summary_path,
        skipped_file=skipped_path if skip_invalid else None,
        threshold=tau,
        stale=stale_files,
    )
