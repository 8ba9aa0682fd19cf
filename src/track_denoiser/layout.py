"""The data folder layout of the original method.

::

    data/x17/noisy/              measured events as recorded (text)
    data/x17/clean/              the same after conventional reconstruction (text)
    data/x17/gauge_backgrounds/  measured noise-only events (text)
    data/simulated/{noisy,clean}/<INDEX>.npy  denoising shards
    data/labeling/{noisy,clean}/<INDEX>.npy   labeling shards
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_FOLDERS", "background_folder", "init_layout", "mode_folder", "shard_folder"]

DATA_FOLDERS: tuple[str, ...] = (
    "data/x17/noisy",
    "data/x17/clean",
    "data/x17/gauge_backgrounds",
    "data/simulated/noisy",
    "data/simulated/clean",
    "data/labeling/noisy",
    "data/labeling/clean",
)

_MODE_FOLDERS = {"denoising": "simulated", "labeling": "labeling"}


def init_layout(root: str | os.PathLike[str] = ".") -> list[Path]:
    """Create the data folder tree under ``root``; existing folders are kept.

    Returns:
        The folders that were created by this call (empty when all existed).
    """
    created = []
    for relative in DATA_FOLDERS:
        folder = Path(root) / relative
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            created.append(folder)
    return created


def mode_folder(mode: str) -> str:
    """Return the data subfolder of a generator mode: ``simulated`` or ``labeling``."""
    try:
        return _MODE_FOLDERS[mode]
    except KeyError:
        msg = f"unknown generator mode {mode!r}; expected one of {sorted(_MODE_FOLDERS)}"
        raise ValueError(msg) from None


def shard_folder(root: str | os.PathLike[str], mode: str, kind: str) -> Path:
    """Return ``root/data/<simulated|labeling>/<noisy|clean>``."""
    if kind not in ("noisy", "clean"):
        msg = f"unknown shard kind {kind!r}; expected 'noisy' or 'clean'"
        raise ValueError(msg)
    return Path(root) / "data" / mode_folder(mode) / kind


def background_folder(root: str | os.PathLike[str] = ".") -> Path:
    """Return ``root/data/x17/gauge_backgrounds``."""
    return Path(root) / "data" / "x17" / "gauge_backgrounds"
