"""``track-denoiser select-threshold``: choose the classification threshold on validation shards."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..dataset import shard_range_files
from ..metrics import THRESHOLD_METRICS
from ..threshold import select_threshold
from .options import add_format_option, add_root_option, add_shard_range_option

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``select-threshold`` parser."""
    parser = subparsers.add_parser(
        "select-threshold",
        help="choose the threshold tau on validation shards",
        description=(
            "Score every voxel of the validation shards with a trained model, scan the threshold "
            "tau over k / STEPS, and write the best tau (by --metric) to a threshold file and the "
            "whole scan as CSV."
        ),
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="trained model (.keras, .h5 or .weights.h5)"
    )
    parser.add_argument(
        "--architecture",
        default=None,
        help="architecture of a .weights.h5 model: paper (default), wide or deep",
    )
    add_root_option(parser)
    add_shard_range_option(parser, "--validation", "validation shards")
    add_format_option(parser)
    parser.add_argument(
        "--metric",
        choices=THRESHOLD_METRICS,
        default="f1",
        help="f1: maximal F1 (default); balanced: precision equal to recall; youden: maximal recall minus false positive rate",
    )
    parser.add_argument(
        "--steps", type=int, default=1000, help="tau is scanned over k / STEPS (default: 1000)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="events per forward pass (default: 32)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="threshold file (default: threshold.txt beside the model)",
    )
    parser.add_argument(
        "--scan",
        type=Path,
        default=None,
        help="scan CSV (default: threshold_scan.csv beside the model)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Select and write the threshold."""
    selection = select_threshold(
        args.model,
        shard_range_files(args.root, args.validation[0], args.validation[1], args.fmt),
        args.output or args.model.parent / "threshold.txt",
        args.scan or args.model.parent / "threshold_scan.csv",
        metric=args.metric,
        steps=args.steps,
        batch_size=args.batch_size,
        architecture=args.architecture,
    )
    print(selection.threshold)
    return 0
