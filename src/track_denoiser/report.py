"""One HTML page with the evaluation's tables and figures.

The page shows the models and their thresholds, the voxel-level and
event-level figures on synthetic events, the line-fit summary, the
measured-data figures (or why they are not available), and the PNG figures
of ``track_denoiser.plotting``. Figures are embedded as base64 data by
default, so the page can be copied on its own; with ``embed_images=False``
they are linked by paths relative to the page.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .atomic import atomic_write
from .evaluation import CRITERION_LABELS
from .recognition import RecognitionSettings

__all__ = ["build_report"]

log = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
p.note { color: #555; font-size: 0.9em; max-width: 60em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _criterion_names(recognition: dict[str, Any]) -> dict[str, str]:
    """Return a readable name of each criterion with its configured numbers."""
    settings = RecognitionSettings(**recognition) if recognition else RecognitionSettings()
    return {
        "count": f"count (≥ {settings.min_pads} pads or ≥ {settings.min_voxels} voxels)",
        "count_strict": f"strict count (≥ {settings.min_pads} pads or ≥ {settings.strict_min_voxels} voxels)",
        "cluster": (
            f"clusters (one ≥ {settings.cluster_single_pads} pads or two ≥ {settings.cluster_pair_pads} pads)"
        ),
    }


_FIGURE_CAPTIONS = {
    "roc.png": "Voxel ROC curves on the synthetic test events; dots mark each model's threshold τ.",
    "pr.png": "Voxel precision-recall curves on the synthetic test events; dots mark each model's τ.",
    "training.png": "Training history of the trained model.",
    "amplitudes.png": "Amplitude histograms of track and noise voxels (synthetic) and of measured voxels.",
}


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, escape=True, na_rep="n/a", float_format=lambda v: f"{v:.4g}", border=0
    )


def _image_source(path: Path, page: Path, embed: bool) -> str:
    if embed:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"data:image/png;base64,{data}"
    return html.escape(Path(os.path.relpath(path, page.parent)).as_posix())


def _event_table(metrics: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    table = metrics[["model", "labeling_events", "labeling_tracks"]].rename(
        columns={"labeling_events": "events", "labeling_tracks": "events with a track"}
    )
    for label in CRITERION_LABELS.values():
        name = names[label]
        table[f"efficiency, {name}"] = metrics[f"efficiency_{label}"]
        table[f"false-positive rate, {name}"] = metrics[f"false_positive_rate_{label}"]
    return table


def _measured_section(evaluation: Path, names: dict[str, str]) -> str:
    info_path = evaluation / "measured.json"
    info: dict[str, Any] = (
        json.loads(info_path.read_text()) if info_path.is_file() else {"available": False}
    )
    if not info.get("available"):
        reason = info.get("reason", "no measured data")
        return f"<p>Not available: {html.escape(str(reason))}.</p>"
    measured = pd.read_csv(evaluation / "measured.csv")
    table = measured[["model", "kind", "threshold", "events", "labelled_tracks"]].rename(
        columns={"labelled_tracks": "labelled tracks"}
    )
    for label in CRITERION_LABELS.values():
        name = names[label]
        table[f"efficiency, {name}"] = measured[f"efficiency_{label}"]
        table[f"false-positive rate, {name}"] = measured[f"false_positive_rate_{label}"]
    note = (
        f"{int(info['events'])} labelled measured events ({int(info['labelled_tracks'])} with a track), "
        f"after leaving out the first {int(info['skip_first'])} calibration events. "
        "Efficiency = labelled tracks found / labelled tracks; false-positive rate = FP / (FP + labelled "
        "tracks), the form the reference analysis reports. The conventional row is the conventional "
        "reconstruction of the same events."
    )
    return f'<p class="note">{html.escape(note)}</p>\n{_table(table)}'


_SMALL_RUN_NOTE = (
    "A small run, such as the default configuration (about a thousand training events and a "
    "few CPU epochs), shows the pipeline working; it is not expected to reach the published "
    "network's accuracy, nor to beat the classical baseline on synthetic noise. "
    "config/paper.yaml sets up a paper-scale run (a million events, a GPU)."
)


def _run_section(run_settings: Mapping[str, Any] | None) -> list[str]:
    """Return the HTML of the run-settings table, or nothing without settings."""
    if not run_settings:
        return []
    rows = pd.DataFrame(
        {"setting": list(run_settings), "value": [str(v) for v in run_settings.values()]}
    )
    return [
        "<h2>Run</h2>",
        _table(rows),
        f'<p class="note">{html.escape(_SMALL_RUN_NOTE)}</p>',
    ]


def build_report(
    evaluation_dir: str | os.PathLike[str],
    plot_files: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    embed_images: bool = True,
    title: str = "track-denoiser evaluation",
    run_settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write the HTML report.

    Args:
        evaluation_dir: folder written by the evaluation stage
            (``metrics.csv``, ``linefit.csv``, ``measured.json``, ...).
        plot_files: PNG figures to show, in this order (example events last).
        output: the HTML file, usually ``results/report.html``.
        embed_images: embed the figures as base64 data; otherwise link them
            relative to the page.
        title: page title.
        run_settings: settings of the run shown in a table at the top, for
            example the training events, epochs and network.

    Returns:
        ``output``.
    """
    evaluation = Path(evaluation_dir)
    page = Path(output)
    metrics = pd.read_csv(evaluation / "metrics.csv", keep_default_na=False, na_values=[""])
    linefit = pd.read_csv(evaluation / "linefit.csv")
    settings = json.loads((evaluation / "metrics.json").read_text()).get("settings", {})
    names = _criterion_names(settings.get("recognition", {}))

    models = metrics[["model", "kind", "threshold", "path"]]
    voxel = metrics[
        [
            "model",
            "threshold",
            "precision",
            "recall",
            "f1",
            "iou",
            "roc_auc",
            "pr_auc",
            "voxel_tp",
            "voxel_fp",
            "voxel_fn",
        ]
    ].rename(
        columns={
            "f1": "F1",
            "iou": "IoU",
            "roc_auc": "ROC AUC",
            "pr_auc": "PR AUC (AP)",
            "voxel_tp": "TP voxels",
            "voxel_fp": "FP voxels",
            "voxel_fn": "FN voxels",
        }
    )
    linefit_table = linefit.rename(
        columns={
            "fitted_events": "fitted events",
            "outlier_share": "outlier share",
            "mean_distance": "mean distance (pad widths)",
            "missed": "missed voxels per event",
            "missed_share": "missed share",
        }
    )

    linefit_settings = settings.get("linefit", {})
    source = (
        f"track-denoiser {__version__}; synthetic test shards {settings.get('test_shards', '?')}, "
        f"labeling shards {settings.get('labeling_shards', '?')} ({settings.get('shard_format', '?')} "
        f"format, data root {settings.get('data_root', '?')})."
    )
    voxel_note = (
        "A voxel is track when the model's score exceeds its threshold τ. Precision = TP / (TP + FP), "
        "recall = TP / (TP + FN), F1 = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN). ROC AUC and "
        "PR AUC (average precision) come from score histograms on a grid of thresholds."
    )
    event_note = (
        "Efficiency = events with a track in which the criterion finds one / events with a track; "
        "false-positive rate = events without a track in which it finds one / events without a track."
    )
    linefit_note = (
        "Per event with at least two kept voxels: a total-least-squares line in the frame "
        f"(x, y, {linefit_settings.get('z_scale', 0.1)} z), in pad widths. Outliers lie farther than "
        f"{linefit_settings.get('outlier_distance', 1.0)} pad widths from the line; missed voxels are "
        "voxels the fitted segment crosses that were not kept. The truth row fits the true track voxels."
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{html.escape(source)}</p>',
        *_run_section(run_settings),
        "<h2>Models</h2>",
        _table(models),
        "<h2>Voxel level (synthetic test events)</h2>",
        f'<p class="note">{html.escape(voxel_note)}</p>',
        _table(voxel),
        "<h2>Event level (synthetic labeling events)</h2>",
        f'<p class="note">{html.escape(event_note)}</p>',
        _table(_event_table(metrics, names)),
        "<h2>Straight-line fit of the kept voxels (synthetic test events)</h2>",
        f'<p class="note">{html.escape(linefit_note)}</p>',
        _table(linefit_table),
        "<h2>Measured events with hand labels</h2>",
        _measured_section(evaluation, names),
        "<h2>Figures</h2>",
    ]

    for figure in plot_files:
        path = Path(figure)
        if not path.is_file():
            parts.append(f"<p>Figure {html.escape(path.name)} is missing.</p>")
            continue
        caption = _FIGURE_CAPTIONS.get(
            path.name,
            f"Example test event {path.stem.removeprefix('example_')}: noisy input, truth, network output, classified voxels.",
        )
        parts.append(
            f'<figure><img src="{_image_source(path, page, embed_images)}" alt="{html.escape(path.stem)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")

    with atomic_write(page) as handle:
        handle.write("\n".join(parts) + "\n")
    log.info("wrote report %s", page)
    return page
