"""``track-denoiser denoise``: denoise a folder of measured events."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``denoise`` parser."""
    parser = subparsers.add_parser(
        "denoise",
        help="denoise a folder of measured events with a trained network",
        description=(
            "Read measured events (track<N>.txt) in natural order, remove chimneys, normalise, "
            "classify every voxel with the network and write the kept voxels with their measured "
            "amplitudes under the same file names, plus summary.csv (one row per event). "
            "summary.csv is written last, so it is present only after a complete run; event files "
            "of an earlier run are replaced, and ones without an input are kept and reported."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        help="network file: .keras, .h5, or .weights.h5 with --architecture",
    )
    parser.add_argument("--input", required=True, help="folder of measured track<N>.txt events")
    parser.add_argument(
        "--output", required=True, help="folder for the denoised events and summary.csv"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="classification threshold in (0, 1) (default: threshold.txt beside the model)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="events read and predicted together (default: 64)",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip malformed files and list them in skipped.csv (default: stop at the first one)",
    )
    parser.add_argument(
        "--architecture",
        default=None,
        help="architecture of a .weights.h5 model: paper, wide or deep",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: only on an interactive terminal)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Denoise the input folder; return 0 on success."""
    from ..denoise import denoise_folder

    result = denoise_folder(
        args.model,
        args.input,
        args.output,
        threshold=args.threshold,
        batch_size=args.batch_size,
        skip_invalid=args.skip_invalid,
        architecture=args.architecture,
        progress=args.progress,
    )
    log.info("wrote %d denoised events and %s", result.denoised, result.summary)
    if result.skipped:
        log.warning(
            "skipped %d malformed files, listed in %s", len(result.skipped), result.skipped_file
        )
    return 0
