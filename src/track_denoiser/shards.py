"""Shard storage: the original dense ``.npy`` pairs and the compact ``.npz`` format.

Dense (the original layout, read by users of the original code)::

    data/<simulated|labeling>/noisy/<INDEX>.npy   float16 (n, 12, 14, 208)
    data/<simulated|labeling>/clean/<INDEX>.npy   float16 (n, 12, 14, 208) target,
                                                  or float16 (n,) labels

Compact (one file per shard, about 1 kB per event)::

    data/<simulated|labeling>/compact/<INDEX>.npz

A compact file is an uncompressed ``.npz`` without pickles. It contains
``format_version``, ``event_shape``, ``mode``, ``settings`` (JSON text),
``offsets`` (int64, n + 1), ``indices`` (uint16 flat voxel index of every
stored voxel), ``values`` (float16 noisy amplitude), ``track`` (bool, the
clean target over the stored voxels) and ``labels`` (float16, labeling only).
Every nonzero noisy voxel and every track voxel is stored, so a dense shard
converts to compact and back byte for byte.

A data root may contain both formats. Each reader names the format it wants
and reports a shard missing in that format with the command that converts it.
Files are written to a temporary name and renamed, and an existing shard is
kept unless ``overwrite`` is set.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .atomic import atomic_path
from .constants import EVENT_SHAPE, N_VOXELS
from .generator import SparseEvents
from .layout import mode_folder

__all__ = [
    "COMPACT_VERSION",
    "FORMATS",
    "ShardError",
    "ShardFormat",
    "ShardPaths",
    "dense_to_sparse",
    "existing_indices",
    "next_free_index",
    "read_compact",
    "read_dense",
    "read_shard",
    "shard_paths",
    "write_compact",
    "write_dense",
    "write_shard",
]

ShardFormat = Literal["npy", "compact"]
FORMATS: tuple[str, ...] = ("npy", "compact")
COMPACT_VERSION = 1

_INDEX_NAME = re.compile(r"^(\d+)\.(npy|npz)$")


class ShardError(ValueError):
    """A shard file that is missing, truncated, or from other settings."""


@dataclass(frozen=True)
class ShardPaths:
    """Files of one shard. Dense shards use ``noisy`` and ``clean``, compact ``compact``."""

    noisy: Path
    clean: Path
    compact: Path

    def for_format(self, fmt: ShardFormat) -> list[Path]:
        """Return the files that make up the shard in format ``fmt``."""
        return [self.compact] if fmt == "compact" else [self.noisy, self.clean]


def shard_paths(root: str | os.PathLike[str], mode: str, index: int) -> ShardPaths:
    """Return the file names of shard ``index`` in both formats under data root ``root``."""
    base = Path(root) / "data" / mode_folder(mode)
    return ShardPaths(
        noisy=base / "noisy" / f"{index}.npy",
        clean=base / "clean" / f"{index}.npy",
        compact=base / "compact" / f"{index}.npz",
    )


def existing_indices(root: str | os.PathLike[str], mode: str, fmt: ShardFormat) -> list[int]:
    """List the shard indices present under ``root`` in format ``fmt``, sorted."""
    base = Path(root) / "data" / mode_folder(mode)
    folder = base / ("compact" if fmt == "compact" else "noisy")
    suffix = "npz" if fmt == "compact" else "npy"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _INDEX_NAME.match(path.name)
        if match and match.group(2) == suffix:
            found.append(int(match.group(1)))
    return sorted(found)


def next_free_index(root: str | os.PathLike[str], mode: str) -> int:
    """Return one past the highest shard index of ``mode`` in either format (0 when none)."""
    indices = existing_indices(root, mode, "npy") + existing_indices(root, mode, "compact")
    return max(indices) + 1 if indices else 0


# ---------------------------------------------------------------------------
# Writing


def _reject_existing(paths: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        msg = (
            f"shard file {existing[0]} already exists; choose another index "
            "(--first-index) or pass --overwrite to replace it"
        )
        raise FileExistsError(msg)


def write_dense(
    events: SparseEvents,
    noisy_path: Path,
    clean_path: Path,
    *,
    mode: str,
    overwrite: bool = False,
) -> None:
    """Write a shard as the original dense ``.npy`` pair.

    The clean file contains the float16 target (n, 12, 14, 208) for denoising
    shards, or the float16 labels (n,) for labeling shards.
    """
    _reject_existing([noisy_path, clean_path], overwrite)
    clean = events.labels if mode == "labeling" else events.clean_dense()
    # Clean first: a shard counts as present when its noisy file exists.
    with atomic_path(clean_path) as tmp:
        np.save(tmp, clean)
    with atomic_path(noisy_path) as tmp:
        np.save(tmp, events.noisy_dense())


def write_compact(
    events: SparseEvents,
    path: Path,
    *,
    mode: str,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Write a shard as one compact ``.npz`` file (see the module docstring).

    Labeling shards are written without the per-voxel target, like their
    dense form, so the two formats convert into each other exactly.
    """
    _reject_existing([path], overwrite)
    if mode == "labeling":
        events = events.without_target()
    arrays: dict[str, Any] = {
        "format_version": np.array(COMPACT_VERSION, dtype=np.int64),
        "event_shape": np.array(EVENT_SHAPE, dtype=np.int64),
        "mode": np.array(mode),
        "settings": np.array(json.dumps(settings or {}, sort_keys=True)),
        "offsets": events.offsets.astype(np.int64),
        "indices": events.indices.astype(np.uint16),
        "values": events.values.astype(np.float16),
        "track": events.track.astype(bool),
        "labels": events.labels.astype(np.float16),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def write_shard(
    events: SparseEvents,
    root: str | os.PathLike[str],
    mode: str,
    index: int,
    fmt: ShardFormat,
    *,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write shard ``index`` under data root ``root`` in format ``fmt``; return its files."""
    paths = shard_paths(root, mode, index)
    if fmt == "compact":
        write_compact(events, paths.compact, mode=mode, settings=settings, overwrite=overwrite)
    elif fmt == "npy":
        write_dense(events, paths.noisy, paths.clean, mode=mode, overwrite=overwrite)
    else:
        msg = f"shard format {fmt!r} is invalid; expected one of {FORMATS}"
        raise ValueError(msg)
    return paths.for_format(fmt)


# ---------------------------------------------------------------------------
# Reading


def read_compact(
    path: str | os.PathLike[str],
    *,
    mode: str | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[SparseEvents, dict[str, Any]]:
    """Read and check a compact shard.

    Args:
        path: the ``.npz`` file.
        mode: expected generator mode; a shard of the other mode is rejected.
        settings: expected generator settings; a shard whose recorded
            settings differ in any of these keys is rejected.

    Returns:
        The events and the settings recorded in the file.

    Raises:
        ShardError: the file is truncated, not a compact shard, of another
            version, shape or mode, or from other settings.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        msg = f"{path}: not a readable compact shard ({error}); regenerate or reconvert it"
        raise ShardError(msg) from error

    required = {
        "format_version",
        "event_shape",
        "mode",
        "settings",
        "offsets",
        "indices",
        "values",
        "track",
        "labels",
    }
    missing = sorted(required - arrays.keys())
    if missing:
        msg = f"{path}: not a compact shard, missing fields {missing}"
        raise ShardError(msg)
    version = int(arrays["format_version"])
    if version != COMPACT_VERSION:
        msg = (
            f"{path}: compact format version {version} is not supported; expected {COMPACT_VERSION}"
        )
        raise ShardError(msg)
    shape = tuple(int(v) for v in arrays["event_shape"])
    if shape != EVENT_SHAPE:
        msg = f"{path}: event shape {shape} differs from the detector's {EVENT_SHAPE}"
        raise ShardError(msg)
    file_mode = str(arrays["mode"])
    if mode is not None and file_mode != mode:
        msg = f"{path}: shard holds {file_mode} events, expected {mode}"
        raise ShardError(msg)
    recorded = json.loads(str(arrays["settings"]))
    if settings:
        for key, expected in settings.items():
            if key in recorded and recorded[key] != expected:
                msg = (
                    f"{path}: generated with {key}={recorded[key]!r}, but the current settings "
                    f"have {key}={expected!r}; regenerate the shard or change the settings"
                )
                raise ShardError(msg)

    offsets = arrays["offsets"].astype(np.int64)
    indices, values, track = arrays["indices"], arrays["values"], arrays["track"]
    n_stored = len(indices)
    consistent = (
        offsets.ndim == 1
        and len(offsets) >= 1
        and offsets[0] == 0
        and offsets[-1] == n_stored
        and bool(np.all(np.diff(offsets) >= 0))
        and len(values) == n_stored
        and len(track) == n_stored
        and indices.dtype == np.uint16
        and values.dtype == np.float16
        and (n_stored == 0 or int(indices.max()) < N_VOXELS)
    )
    if not consistent:
        msg = f"{path}: compact shard arrays are inconsistent (truncated or damaged); regenerate it"
        raise ShardError(msg)
    labels = arrays["labels"].astype(np.float16)
    if file_mode == "labeling" and len(labels) != len(offsets) - 1:
        msg = f"{path}: {len(labels)} labels for {len(offsets) - 1} events; regenerate it"
        raise ShardError(msg)
    events = SparseEvents(
        offsets=offsets, indices=indices, values=values, track=track.astype(bool), labels=labels
    )
    return events, recorded


def _load_npy(path: Path) -> npt.NDArray[Any]:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as error:
        msg = f"{path}: not a readable .npy shard ({error}); it may be truncated, regenerate it"
        raise ShardError(msg) from error


def read_dense(
    noisy_path: str | os.PathLike[str], clean_path: str | os.PathLike[str], mode: str
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]:
    """Memory-map a dense shard pair and check that it is consistent.

    Returns:
        ``(noisy, clean)`` read-only memory maps: noisy float16 (n, 12, 14, 208);
        clean float16 (n, 12, 14, 208) for denoising or (n,) labels for labeling.

    Raises:
        ShardError: a file is truncated, has the wrong shape or dtype, or the
            pair disagrees in the number of events.
    """
    noisy_path, clean_path = Path(noisy_path), Path(clean_path)
    noisy = _load_npy(noisy_path)
    clean = _load_npy(clean_path)
    if noisy.ndim != 4 or noisy.shape[1:] != EVENT_SHAPE:
        msg = f"{noisy_path}: shape {noisy.shape} is not (n, {', '.join(map(str, EVENT_SHAPE))})"
        raise ShardError(msg)
    expected_clean = (noisy.shape[0],) if mode == "labeling" else noisy.shape
    if clean.shape != expected_clean:
        msg = (
            f"{clean_path}: shape {clean.shape} does not match its noisy shard "
            f"{noisy_path} of shape {noisy.shape}; expected {expected_clean}"
        )
        raise ShardError(msg)
    return noisy, clean


def dense_to_sparse(noisy: npt.NDArray[Any], clean: npt.NDArray[Any], mode: str) -> SparseEvents:
    """Convert dense arrays of a shard into sparse events (the compact content).

    Stored voxels are the nonzero noisy voxels plus the track voxels (clean
    target nonzero), so the conversion back to dense gives the same bytes.
    """
    n = noisy.shape[0]
    flat_noisy = np.asarray(noisy, dtype=np.float16).reshape(n, N_VOXELS)
    if mode == "labeling":
        labels = np.asarray(clean, dtype=np.float16)
        track_mask = np.zeros_like(flat_noisy, dtype=bool)
    else:
        labels = np.zeros(0, dtype=np.float16)
        track_mask = np.asarray(clean).reshape(n, N_VOXELS) != 0
    stored = (flat_noisy != 0) | track_mask
    event, index = np.nonzero(stored)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(event, minlength=n), out=offsets[1:])
    return SparseEvents(
        offsets=offsets,
        indices=index.astype(np.uint16),
        values=flat_noisy[event, index],
        track=track_mask[event, index],
        labels=labels,
    )


def read_shard(
    root: str | os.PathLike[str],
    mode: str,
    index: int,
    fmt: ShardFormat,
    *,
    settings: dict[str, Any] | None = None,
) -> SparseEvents:
    """Read shard ``index`` in format ``fmt`` into sparse events.

    Evaluation and threshold selection read shards through this function, so
    they accept both formats. A missing shard raises ``FileNotFoundError``
    that names the file and, when the other format exists, the conversion
    command.
    """
    paths = shard_paths(root, mode, index)
    missing = [p for p in paths.for_format(fmt) if not p.exists()]
    if missing:
        other: ShardFormat = "npy" if fmt == "compact" else "compact"
        hint = ""
        if all(p.exists() for p in paths.for_format(other)):
            hint = (
                f"; shard {index} exists as {other}: convert it with "
                f"'track-denoiser convert --to {fmt} --mode {mode} --root {root} --first-index {index} -n 1'"
            )
        msg = f"shard file {missing[0]} not found{hint}"
        raise FileNotFoundError(msg)
    if fmt == "compact":
        events, _ = read_compact(paths.compact, mode=mode, settings=settings)
        return events
    noisy, clean = read_dense(paths.noisy, paths.clean, mode)
    return dense_to_sparse(noisy, clean, mode)


def convert_shard(
    root: str | os.PathLike[str],
    mode: str,
    index: int,
    target: ShardFormat,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Convert shard ``index`` into format ``target``; the source files are kept.

    The events convert byte for byte. A compact shard made from dense files
    records no generator settings, because the dense files carry none.
    """
    source: ShardFormat = "npy" if target == "compact" else "compact"
    events = read_shard(root, mode, index, source)
    paths = shard_paths(root, mode, index)
    settings: dict[str, Any] = {}
    if source == "compact":
        _, settings = read_compact(paths.compact, mode=mode)
    return write_shard(events, root, mode, index, target, settings=settings, overwrite=overwrite)
