"""Generate shards to disk: the library side of ``track-denoiser generate``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .generator import Background, GeneratorSettings, generate_shard_events, load_background
from .layout import background_folder, init_layout
from .shards import ShardFormat, shard_paths, write_shard

__all__ = ["generate_shards", "settings_record"]

log = logging.getLogger(__name__)


def settings_record(settings: GeneratorSettings, seed: int, index: int) -> dict[str, object]:
    """Return what a compact shard records about how it was made."""
    record = settings.to_dict()
    record.update(seed=int(seed), shard_index=int(index))
    return record


def generate_shards(
    root: str | os.PathLike[str],
    settings: GeneratorSettings,
    seed: int,
    indices: Sequence[int],
    fmt: ShardFormat = "npy",
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    background: Background | None = None,
) -> list[Path]:
    """Generate shards ``indices`` under data root ``root``.

    Args:
        root: data root; the data folders are created when missing.
        settings: generator settings.
        seed: base seed; shard i draws from ``shard_rng(seed, i, mode)``.
        indices: shard indices to generate.
        fmt: ``"npy"`` (original dense pair) or ``"compact"``.
        overwrite: replace existing shards instead of stopping.
        progress: show a progress bar; by default only on an interactive terminal.
        background: measured noise pool; read from ``root/data/x17/gauge_backgrounds``
            when the noise mode needs it and none is given.

    Returns:
        The files written.

    Raises:
        FileExistsError: a shard exists and ``overwrite`` is not set; nothing
            is generated then.
    """
    init_layout(root)
    if not overwrite:
        for index in indices:
            for path in shard_paths(root, settings.mode, index).for_format(fmt):
                if path.exists():
                    msg = (
                        f"shard file {path} already exists; choose another index "
                        "(--first-index) or pass --overwrite to replace it"
                    )
                    raise FileExistsError(msg)
    if settings.needs_background and background is None:
        background = load_background(background_folder(root))
        log.info("measured noise: %d events from %s", background.n_events, background.source)

    show = sys.stderr.isatty() if progress is None else progress
    written: list[Path] = []
    for index in tqdm(indices, desc="shards", unit="shard", disable=not show):
        events = generate_shard_events(settings, seed, index, background)
        written += write_shard(
            events,
            root,
            settings.mode,
            index,
            fmt,
            settings=settings_record(settings, seed, index),
            overwrite=overwrite,
        )
        log.debug("wrote shard %d (%d events, %s)", index, events.n_events, fmt)
    return written
