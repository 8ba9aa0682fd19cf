"""``track-denoiser convert``: convert shards between the dense and compact formats."""

from __future__ import annotations

import argparse
import logging
import sys

from tqdm import tqdm

from ..shards import FORMATS, ShardFormat, convert_shard, existing_indices
from .options import add_root_option

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` parser."""
    parser = subparsers.add_parser(
        "convert",
        help="convert shards between the npy and compact formats",
        description=(
            "Convert shards between the original dense .npy pairs and compact .npz files. "
            "The conversion is byte-exact in both directions; the source files are kept."
        ),
    )
    parser.add_argument(
        "--to", dest="target", choices=FORMATS, required=True, help="format to write"
    )
    parser.add_argument(
        "--mode",
        choices=("denoising", "labeling"),
        default="denoising",
        help="which shards: denoising (data/simulated, default) or labeling (data/labeling)",
    )
    add_root_option(parser)
    parser.add_argument(
        "--first-index", type=int, default=None, help="first shard to convert (default: all)"
    )
    parser.add_argument(
        "-n", dest="count", type=int, default=None, help="number of shards from --first-index"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace shards that exist in the target format (default: keep them and convert the rest)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert the selected shards."""
    source: ShardFormat = "npy" if args.target == "compact" else "compact"
    available = existing_indices(args.root, args.mode, source)
    if args.first_index is not None:
        last = args.first_index + args.count if args.count is not None else None
        selected = [i for i in available if i >= args.first_index and (last is None or i < last)]
        wanted = set(range(args.first_index, last)) if last is not None else set()
        missing = sorted(wanted - set(selected))
        if missing:
            msg = (
                f"shard {missing[0]} not found as {source} under {args.root}; nothing was converted"
            )
            raise FileNotFoundError(msg)
    else:
        selected = available
    if not selected:
        msg = f"no {args.mode} shards in {source} format under {args.root}; nothing to convert"
        raise FileNotFoundError(msg)

    # Shards already in the target format are kept unless --overwrite, so that
    # converting a folder twice, or one that contains both formats, just works.
    if not args.overwrite:
        present = set(existing_indices(args.root, args.mode, args.target))
        skipped = [index for index in selected if index in present]
        selected = [index for index in selected if index not in present]
        if skipped:
            log.info(
                "%d shard(s) already exist as %s and are kept (--overwrite replaces them)",
                len(skipped),
                args.target,
            )
    for index in tqdm(selected, desc="convert", unit="shard", disable=not sys.stderr.isatty()):
        convert_shard(args.root, args.mode, index, args.target, overwrite=args.overwrite)
    log.info("converted %d %s shard(s) to %s", len(selected), args.mode, args.target)
    return 0
