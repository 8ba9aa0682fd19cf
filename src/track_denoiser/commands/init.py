"""``track-denoiser init``: create the data folder layout."""

from __future__ import annotations

import argparse
import logging

from ..layout import DATA_FOLDERS, init_layout

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``init`` parser."""
    parser = subparsers.add_parser(
        "init",
        help="create the data folder layout",
        description="Create the data folders of the original layout under ROOT; existing folders are kept.",
    )
    parser.add_argument("root", nargs="?", default=".", help="data root (default: current folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create the layout and log what was created."""
    created = init_layout(args.root)
    for folder in created:
        log.info("created %s", folder)
    log.info(
        "data layout ready under %s (%d folders, %d new)",
        args.root,
        len(DATA_FOLDERS),
        len(created),
    )
    return 0
