"""Command-line options that several subcommands share, defined once."""

from __future__ import annotations

import argparse

from ..shards import FORMATS

__all__ = ["add_format_option", "add_root_option", "add_shard_range_option"]


def add_root_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--root``, the data root that contains ``data/``."""
    parser.add_argument(
        "--root", default=".", help="data root holding data/ (default: current folder)"
    )


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--format`` (stored as ``fmt``), the shard format to read, npy by default."""
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="npy",
        help="shard format: npy (the original dense pair, default, as for generate) or compact",
    )


def add_shard_range_option(
    parser: argparse.ArgumentParser, flag: str, what: str, *, required: bool = True
) -> None:
    """Add an option that takes a half-open range of shard indices, ``FIRST LAST``."""
    parser.add_argument(
        flag,
        nargs=2,
        type=int,
        metavar=("FIRST", "LAST"),
        required=required,
        default=None,
        help=f"{what}: shard indices FIRST ... LAST-1",
    )
