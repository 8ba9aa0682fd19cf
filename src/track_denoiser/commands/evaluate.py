"""``track-denoiser evaluate``: judge models on held-out shards (and labelled measured events)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .options import add_format_option, add_root_option, add_shard_range_option

log = logging.getLogger(__name__)


def _threshold(text: str) -> float | str:
    # A number is the threshold itself; anything else names a threshold file.
    try:
        return float(text)
    except ValueError:
        return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` parser."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate models and the baseline on held-out shards",
        description=(
            "Evaluate a trained model, any compared models and the classical baseline on the same "
            "held-out synthetic shards (voxel metrics, ROC and precision-recall curves, event-level "
            "recognition, line fits) and, when data/x17/noisy, data/x17/clean and the label file are "
            "present, on hand-labelled measured events. Writes metrics.csv/json and the other result "
            "files to --output."
        ),
    )
    parser.add_argument("--model", required=True, help="trained model (.keras, .h5 or .weights.h5)")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="its threshold: a number in [0, 1) or a threshold file (default: threshold.txt beside the model)",
    )
    parser.add_argument(
        "--name", default="trained", help="row name of the model (default: trained)"
    )
    parser.add_argument(
        "--architecture",
        default=None,
        help="architecture of a .weights.h5 model: paper, wide or deep",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH[@THRESHOLD]",
        help="another model to compare; THRESHOLD is a number or a file (default: threshold.txt beside it); repeatable",
    )
    add_root_option(parser)
    add_format_option(parser)
    add_shard_range_option(parser, "--test", "held-out denoising shards")
    add_shard_range_option(
        parser,
        "--labeling",
        "labeling shards for the event-level figures (default: none)",
        required=False,
    )
    parser.add_argument(
        "--config",
        default=None,
        help="YAML file whose 'evaluation' section sets the baseline, criteria, line fit and labels",
    )
    parser.add_argument("--output", required=True, help="folder for the result files")
    parser.add_argument(
        "--report",
        default=None,
        help="also draw the figures into plots/ beside this HTML file and write the report there",
    )
    parser.set_defaults(func=run)


def _compare_entries(values: list[str]) -> list[dict[str, Any]]:
    entries = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            msg = f"--compare {value!r} is invalid; expected NAME=PATH or NAME=PATH@THRESHOLD"
            raise ValueError(msg)
        path, at, threshold = rest.partition("@")
        entry: dict[str, Any] = {"name": name, "path": path}
        if at:
            entry["threshold"] = _threshold(threshold)
        entries.append(entry)
    return entries


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the result files (and the report when asked)."""
    import yaml

    from ..evaluation import evaluate_stage

    section: dict[str, Any] = {}
    if args.config is not None:
        with open(args.config, encoding="utf-8") as handle:
            section = dict((yaml.safe_load(handle) or {}).get("evaluation") or {})
    section["compare"] = list(section.get("compare") or []) + _compare_entries(args.compare)

    threshold = args.threshold
    if threshold is None:
        threshold = str(Path(args.model).parent / "threshold.txt")
    labeling = args.labeling or (0, 0)
    metrics = evaluate_stage(
        model=args.model,
        threshold=threshold,
        data_root=args.root,
        shard_format=args.fmt,
        test_range=args.test,
        labeling_range=labeling,
        evaluation=section,
        output_dir=args.output,
        model_name=args.name,
        model_architecture=args.architecture,
    )
    for _, row in metrics.iterrows():
        log.info(
            "%-12s F1 %.4f  IoU %.4f  ROC AUC %.4f",
            row["model"],
            row["f1"],
            row["iou"],
            row["roc_auc"],
        )

    if args.report is not None:
        from ..plotting import plot_results
        from ..report import build_report

        report = Path(args.report)
        plots = plot_results(args.output, report.parent / "plots")
        build_report(args.output, plots, report)
        log.info("wrote %s", report)
    return 0
