"""The ``track-denoiser`` command line.

Each subcommand lives in ``track_denoiser.commands.<name>`` and provides
``register(subparsers)``, which adds its parser and sets ``func`` to a
function that takes the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main"]

# Subcommand modules under track_denoiser.commands, in help order.
COMMANDS: tuple[str, ...] = (
    "init",
    "generate",
    "convert",
    "train",
    "threshold",
    "evaluate",
    "denoise",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="track-denoiser",
        description="Denoise and recognise tracks in TPC events with 3D convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log debug messages too; info messages are shown by default",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"track_denoiser.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO
    if args.quiet:
        level = logging.WARNING
    elif args.verbose:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # Expected user errors: one clear line, no traceback.
        logging.getLogger("track_denoiser").error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
