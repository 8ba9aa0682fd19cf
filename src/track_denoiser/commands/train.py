"""``track-denoiser train``: train the denoising network on shards of a data root."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..dataset import shard_range_files
from ..models import ARCHITECTURES
from ..training import GpuUnavailableError, TrainingSettings, train
from .options import add_format_option, add_root_option, add_shard_range_option

log = logging.getLogger(__name__)

_DEFAULTS = TrainingSettings()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="train the denoising network",
        description=(
            "Train a denoising network on synthetic shards. Writes model.keras (the epoch with "
            "the lowest validation loss), history.csv and history.json to the output folder. "
            "A killed run started again with the same arguments continues after its last "
            "finished epoch."
        ),
    )
    add_root_option(parser)
    add_shard_range_option(parser, "--train", "training shards")
    add_shard_range_option(parser, "--validation", "validation shards")
    add_format_option(parser)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("results/model"),
        help="folder of the outputs (default: results/model)",
    )
    parser.add_argument(
        "--backup-dir",
        type=Path,
        default=None,
        help="folder of the resumable state (default: OUTPUT_DIR/backup)",
    )
    parser.add_argument(
        "--architecture",
        choices=sorted(ARCHITECTURES),
        default=_DEFAULTS.architecture,
        help=f"network (default: {_DEFAULTS.architecture})",
    )
    parser.add_argument(
        "--loss",
        choices=("paper", "bce"),
        default=_DEFAULTS.loss,
        help=f"loss: paper (voxel BCE plus BCE pooled over 8 time bins) or bce (default: {_DEFAULTS.loss})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=_DEFAULTS.epochs,
        help=f"maximum epochs (default: {_DEFAULTS.epochs})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS.batch_size,
        help=f"events per step (default: {_DEFAULTS.batch_size})",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=_DEFAULTS.learning_rate,
        help=f"Adam learning rate (default: {_DEFAULTS.learning_rate:g})",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=_DEFAULTS.patience,
        help=f"epochs without a lower validation loss before stopping (default: {_DEFAULTS.patience})",
    )
    parser.add_argument(
        "--shuffle-buffer",
        type=int,
        default=_DEFAULTS.shuffle_buffer,
        help=f"events shuffled together (default: {_DEFAULTS.shuffle_buffer})",
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="compute in float16 on a GPU (ignored on the CPU)",
    )
    parser.add_argument(
        "--seed", type=int, default=_DEFAULTS.seed, help=f"seed (default: {_DEFAULTS.seed})"
    )
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        help="stop at once when no GPU is visible to TensorFlow",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for TensorFlow (default: all)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train with the given arguments."""
    settings = TrainingSettings(
        architecture=args.architecture,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        shuffle_buffer=args.shuffle_buffer,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
        require_gpu=args.require_gpu,
    )
    output = args.output_dir
    try:
        result = train(
            shard_range_files(args.root, args.train[0], args.train[1], args.fmt),
            shard_range_files(args.root, args.validation[0], args.validation[1], args.fmt),
            output / "model.keras",
            output / "history.csv",
            output / "history.json",
            settings,
            backup_dir=args.backup_dir,
            threads=args.threads,
        )
    except GpuUnavailableError as error:
        log.error("%s", error)
        return 3
    log.info("model written to %s (best epoch %d)", result.model_path, result.best_epoch)
    return 0
