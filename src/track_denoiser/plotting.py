"""Figures of the evaluation, as PNG files (matplotlib, Agg backend).

- ``plot_example_event``: one event as noisy input, truth, network output and
  classified voxels, each in 3D and in the xz and yz projections.
- ``plot_curves``: ROC and precision-recall curves of every model, with each
  model's operating point at its threshold τ.
- ``plot_training_history``: loss (and any other columns) per epoch.
- ``plot_amplitudes``: amplitude histograms of track and noise voxels of the
  synthetic test events, and of the preprocessed measured events.
- ``plot_results``: all of the above from the evaluation folder.

Every figure is written to a temporary name and renamed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from .atomic import atomic_path
from .constants import EVENT_SHAPE

__all__ = [
    "PLOT_FILES",
    "example_file_names",
    "plot_amplitudes",
    "plot_curves",
    "plot_example_event",
    "plot_results",
    "plot_training_history",
]

log = logging.getLogger(__name__)

# Figures that plot_results always writes, besides example_<i>.png.
PLOT_FILES: tuple[str, ...] = ("roc.png", "pr.png", "training.png", "amplitudes.png")

_DPI = 110


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def example_file_names(n: int) -> list[str]:
    """Return the file names of ``n`` example-event figures."""
    return [f"example_{i}.png" for i in range(n)]


def plot_example_event(
    noisy: npt.ArrayLike,
    truth: npt.ArrayLike,
    output: npt.ArrayLike,
    threshold: float,
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Draw one event four times: noisy input, truth, network output, classified.

    Args:
        noisy: input amplitudes (12, 14, 208).
        truth: track voxels (12, 14, 208), nonzero on the track.
        output: network output (12, 14, 208), probabilities in [0, 1].
        threshold: τ; classified voxels are those with output above it.
        path: PNG file to write.
        title: figure title.

    Returns:
        ``path``. Each row shows a 3D scatter of the voxels above 1 % of the
        panel's maximum (colour = value) and the maximum over y (xz) and over
        x (yz) as images.
    """
    panels = [
        ("noisy input", np.asarray(noisy, dtype=np.float32), "viridis"),
        ("truth", np.asarray(truth, dtype=np.float32), "Greens"),
        ("network output", np.asarray(output, dtype=np.float32), "magma"),
        (
            f"classified (output > {threshold:g})",
            (np.asarray(output) > threshold).astype(np.float32),
            "Reds",
        ),
    ]
    for name, values, _ in panels:
        if values.shape != EVENT_SHAPE:
            msg = f"{name} has shape {values.shape}; expected {EVENT_SHAPE}"
            raise ValueError(msg)

    fig = plt.figure(figsize=(13, 12))
    grid = fig.add_gridspec(len(panels), 3, width_ratios=[1.0, 1.4, 1.4])
    for row, (name, values, cmap) in enumerate(panels):
        top = float(values.max()) if values.max() > 0 else 1.0
        ax3d = fig.add_subplot(grid[row, 0], projection="3d")
        # The network output is nowhere exactly 0; the 3D view hides values below 1 %.
        xs, ys, zs = np.nonzero(values > 0.01 * top)
        ax3d.scatter(
            xs, ys, zs, c=values[xs, ys, zs], cmap=cmap, vmin=0, vmax=top, s=6, depthshade=False
        )
        ax3d.set_xlim(0, EVENT_SHAPE[0] - 1)
        ax3d.set_ylim(0, EVENT_SHAPE[1] - 1)
        ax3d.set_zlim(0, EVENT_SHAPE[2] - 1)
        ax3d.set_box_aspect((1.0, 1.0, 1.6))
        ax3d.set_xticks([0, 5, 10])
        ax3d.set_yticks([0, 5, 10])
        ax3d.set_zticks([0, 100, 200])
        ax3d.set_xlabel("x (pad)")
        ax3d.set_ylabel("y (pad)")
        ax3d.set_zlabel("z (time bin)")
        ax3d.set_title(name, fontsize=10)
        for column, (axis, label) in enumerate(((1, "x (pad)"), (0, "y (pad)")), start=1):
            ax = fig.add_subplot(grid[row, column])
            projection = values.max(axis=axis)
            image = ax.imshow(
                projection,
                aspect="auto",
                origin="lower",
                cmap=cmap,
                vmin=0,
                vmax=top,
                interpolation="nearest",
            )
            ax.set_xlabel("z (time bin)")
            ax.set_ylabel(label)
            ax.set_title(f"{name}, {'xz' if axis == 1 else 'yz'} projection (max)", fontsize=10)
            fig.colorbar(image, ax=ax, fraction=0.03)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.03, right=0.97, top=0.94, bottom=0.05, hspace=0.45, wspace=0.25)
    return _save(fig, path)


def plot_curves(
    curves: pd.DataFrame,
    metrics: pd.DataFrame,
    roc_path: str | os.PathLike[str],
    pr_path: str | os.PathLike[str],
) -> tuple[Path, Path]:
    """Draw ROC and precision-recall curves of every model.

    Args:
        curves: ``curves.csv`` of the evaluation (model, curve, threshold, x, y).
        metrics: ``metrics.csv`` of the evaluation; its precision, recall and
            voxel counts mark each model's operating point.
        roc_path: PNG file of the ROC curves (false positive rate on a log axis,
            because nearly all voxels are noise or empty).
        pr_path: PNG file of the precision-recall curves.
    """
    fig_roc, ax_roc = plt.subplots(figsize=(6.5, 5))
    fig_pr, ax_pr = plt.subplots(figsize=(6.5, 5))
    for position, (_, row) in enumerate(metrics.iterrows()):
        name = str(row["model"])
        colour = f"C{position % 10}"
        roc = curves[(curves["model"] == name) & (curves["curve"] == "roc")]
        pr = curves[(curves["model"] == name) & (curves["curve"] == "pr")]
        ax_roc.plot(roc["x"], roc["y"], color=colour, label=f"{name} (AUC {row['roc_auc']:.4f})")
        ax_pr.plot(pr["x"], pr["y"], color=colour, label=f"{name} (AP {row['pr_auc']:.4f})")
        negatives = row["voxel_fp"] + row["voxel_tn"]
        fpr = row["voxel_fp"] / negatives if negatives else np.nan
        ax_roc.plot([fpr], [row["recall"]], "o", color=colour)
        ax_pr.plot([row["recall"]], [row["precision"]], "o", color=colour)
    ax_roc.set_xscale("log")
    ax_roc.set_xlim(1e-6, 1.0)
    ax_roc.set_ylim(0.0, 1.02)
    ax_roc.set_xlabel("false positive rate (noise and empty voxels kept)")
    ax_roc.set_ylabel("true positive rate (recall)")
    ax_roc.set_title("Voxel ROC; dots: operating point at τ")
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_roc.grid(alpha=0.3)
    ax_pr.set_xlim(0.0, 1.0)
    ax_pr.set_ylim(0.0, 1.02)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("Voxel precision-recall; dots: operating point at τ")
    ax_pr.legend(loc="lower left", fontsize=8)
    ax_pr.grid(alpha=0.3)
    return _save(fig_roc, roc_path), _save(fig_pr, pr_path)


def plot_training_history(history: pd.DataFrame | None, path: str | os.PathLike[str]) -> Path:
    """Draw the training history: one line per numeric column, per epoch.

    Args:
        history: ``history.csv`` of the training (an ``epoch`` column is
            used as x when present), or None when there is none.
        path: PNG file to write. Loss columns (names containing ``loss``)
            share a log axis; the metrics go on a second panel (epoch
            durations are left out).
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    if history is None or history.empty:
        for ax in axes:
            ax.text(
                0.5, 0.5, "no training history", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_axis_off()
        return _save(fig, path)
    x = history["epoch"] if "epoch" in history else pd.Series(range(1, len(history) + 1))
    numeric = [
        c for c in history.columns if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])
    ]
    losses = [c for c in numeric if "loss" in c]
    # Epoch durations (seconds) would flatten the metrics in [0, 1].
    others = [c for c in numeric if c not in losses and c != "seconds"]
    for column in losses:
        axes[0].plot(x, history[column], marker=".", label=column)
    if losses and (history[losses] > 0).all().all():
        axes[0].set_yscale("log")
    axes[0].set_title("loss")
    for column in others:
        axes[1].plot(x, history[column], marker=".", label=column)
    axes[1].set_title(
        "metrics (precision and recall at output > 0.5)" if others else "no other figures recorded"
    )
    for ax in axes:
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_amplitudes(amplitudes: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Draw amplitude histograms from ``amplitudes.csv`` (log counts).

    Synthetic test events: track voxels and nonzero noise voxels (amplitudes
    as stored, the last bin holding everything above its lower edge).
    Measured events, when present: nonzero voxels after chimney removal and
    normalisation.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    edges = np.append(amplitudes["low"].to_numpy(), amplitudes["high"].to_numpy()[-1])
    labels = {
        "track": "synthetic track voxels",
        "noise": "synthetic noise voxels",
        "measured": "measured voxels (preprocessed)",
    }
    for column, label in labels.items():
        if column in amplitudes and amplitudes[column].sum() > 0:
            ax.stairs(amplitudes[column].to_numpy(), edges, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("amplitude (normalised)")
    ax.set_ylabel("voxels per bin")
    ax.set_title("Amplitude histograms")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_results(
    evaluation_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    history: str | os.PathLike[str] | None = None,
    n_examples: int | None = None,
) -> list[Path]:
    """Write every figure of the evaluation into ``output_dir``.

    Args:
        evaluation_dir: folder written by the evaluation stage.
        output_dir: folder for the PNG files (``PLOT_FILES`` and
            ``example_<i>.png``).
        history: ``history.csv`` of the training, if any.
        n_examples: example figures to draw; all stored examples by default.
            When fewer examples are stored, the remaining files show a note.

    Returns:
        The files written.
    """
    evaluation = Path(evaluation_dir)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    metrics = pd.read_csv(evaluation / "metrics.csv")
    curves = pd.read_csv(evaluation / "curves.csv")
    written = list(plot_curves(curves, metrics, output / "roc.png", output / "pr.png"))

    frame = pd.read_csv(history) if history is not None and Path(history).is_file() else None
    written.append(plot_training_history(frame, output / "training.png"))
    written.append(
        plot_amplitudes(pd.read_csv(evaluation / "amplitudes.csv"), output / "amplitudes.png")
    )

    with np.load(evaluation / "examples.npz", allow_pickle=False) as data:
        examples: dict[str, Any] = {key: data[key] for key in data.files}
    stored = len(examples["noisy"]) if "noisy" in examples else 0
    wanted = stored if n_examples is None else int(n_examples)
    for i, name in enumerate(example_file_names(wanted)):
        if i < stored:
            title = f"test event {i} of shard {int(examples['shard'])}, model {examples['model']}"
            written.append(
                plot_example_event(
                    examples["noisy"][i],
                    examples["truth"][i],
                    examples["output"][i],
                    float(examples["threshold"]),
                    output / name,
                    title,
                )
            )
        else:
            fig, ax = plt.subplots(figsize=(4, 2))
            ax.text(
                0.5,
                0.5,
                f"example {i} not available\n({stored} test events stored)",
                ha="center",
                va="center",
            )
            ax.set_axis_off()
            written.append(_save(fig, output / name))
    log.info("wrote %d figures to %s", len(written), output)
    return written
