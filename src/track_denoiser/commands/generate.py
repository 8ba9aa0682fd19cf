"""``track-denoiser generate``: synthetic event shards.

Keeps the original generator's flags: ``-n`` number of shards, ``-l`` 0
denoising or 1 labeling, ``-m`` noise mode 0, 1 or 2.
"""

from __future__ import annotations

import argparse
import logging

from ..constants import EVENTS_PER_SHARD, SATURATION_ADC
from ..generator import GeneratorSettings
from ..production import generate_shards
from ..shards import FORMATS, next_free_index
from .options import add_root_option

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` parser."""
    parser = subparsers.add_parser(
        "generate",
        help="generate synthetic event shards",
        description=(
            "Generate synthetic TPC event shards. A shard's bytes depend only on the "
            "settings, the seed and the shard index."
        ),
    )
    parser.add_argument(
        "-n", dest="shards", type=int, required=True, help="number of shards to generate"
    )
    parser.add_argument(
        "-l",
        dest="labeling",
        type=int,
        choices=(0, 1),
        default=0,
        help="0: denoising shards with a clean target (default); 1: labeling shards with event labels",
    )
    parser.add_argument(
        "-m",
        dest="noise",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="noise: 0 synthetic (default), 1 measured, 2 one of the two per event",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    parser.add_argument(
        "--first-index",
        type=int,
        default=None,
        help="index of the first shard (default: one past the highest existing index)",
    )
    parser.add_argument(
        "--events-per-shard",
        type=int,
        default=EVENTS_PER_SHARD,
        help=f"events per shard (default: {EVENTS_PER_SHARD})",
    )
    add_root_option(parser)
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="npy",
        help="npy: the original dense .npy pair (default); compact: one sparse .npz per shard",
    )
    parser.add_argument(
        "--entry",
        choices=("paper", "all-faces"),
        default="paper",
        help="track entry rule: paper (as published, default) or all-faces (corrected)",
    )
    parser.add_argument(
        "--background-scale",
        type=float,
        default=SATURATION_ADC,
        help=(
            f"divide measured noise (ADC counts) by this before adding it "
            f"(default: {SATURATION_ADC:g}, the saturation amplitude; 1 adds it unscaled)"
        ),
    )
    parser.add_argument(
        "--accumulate-swaps",
        action="store_true",
        help="let measured-noise pad swaps pile up from event to event, as the original does",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing shards")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: only on an interactive terminal)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the requested shards."""
    if args.shards < 1:
        msg = f"-n {args.shards} is invalid; give the number of shards to generate (1 or more)"
        raise ValueError(msg)
    settings = GeneratorSettings(
        mode="labeling" if args.labeling else "denoising",
        noise=args.noise,
        entry=args.entry,
        events_per_shard=args.events_per_shard,
        background_scale=args.background_scale,
        accumulate_swaps=args.accumulate_swaps,
    )
    first = (
        args.first_index
        if args.first_index is not None
        else next_free_index(args.root, settings.mode)
    )
    if first < 0:
        msg = f"--first-index {first} is invalid; expected 0 or more"
        raise ValueError(msg)
    indices = list(range(first, first + args.shards))
    written = generate_shards(
        args.root,
        settings,
        args.seed,
        indices,
        args.fmt,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    log.info(
        "generated %d %s shards %d..%d (%d events each, %d files)",
        len(indices),
        settings.mode,
        indices[0],
        indices[-1],
        settings.events_per_shard,
        len(written),
    )
    return 0
