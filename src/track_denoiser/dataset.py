"""tf.data input pipeline over denoising shards in both storage formats.

A ``ShardDataset`` feeds ``(noisy, clean)`` batches, both float32 of shape
(n, 12, 14, 208, 1), from a list of shards:

- dense ``.npy`` pairs are memory-mapped; a batch reads only its events;
- compact ``.npz`` shards (about 1 kB per event) are loaded when the epoch
  reaches them and dropped once their last event is fed, so at most the
  shards of one shuffle window are in memory. Each batch is densified by a
  scatter inside the tf.data graph, so no dense shard is ever held in memory.

Both formats give identical batches for the same events. Every shard is
checked before the first batch (shape, dtype, truncation, a noisy/clean pair
that disagrees), and a bad shard raises ``ShardError`` naming its file.

Order: each epoch visits every event exactly once. Without shuffling, shards
and events come in the given order. With shuffling, the shard order is
permuted, consecutive shards are grouped into windows of at least
``shuffle_buffer`` events, and the events of a window are permuted together,
so events mix across and within shards. The order depends only on the seed
and the epoch number, so a resumed training run gets the same order as an
uninterrupted one. The last batch of an epoch may be smaller.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .constants import EVENT_SHAPE, N_VOXELS
from .generator import SparseEvents
from .shards import ShardError, ShardFormat, read_compact, read_dense, shard_paths

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DataLoader",
    "Shard",
    "ShardDataset",
    "find_shards",
    "open_shards",
    "shard_range_files",
]

log = logging.getLogger(__name__)

_MODE = "denoising"


@dataclass(frozen=True)
class Shard:
    """One checked denoising shard.

    Attributes:
        fmt: ``"npy"`` (``noisy`` and ``clean`` set) or ``"compact"`` (``compact`` set).
        n_events: number of events.
        noisy: dense noisy file, float16 (n, 12, 14, 208).
        clean: dense clean target file, float16 (n, 12, 14, 208).
        compact: compact ``.npz`` file.
    """

    fmt: ShardFormat
    n_events: int
    noisy: Path | None = None
    clean: Path | None = None
    compact: Path | None = None

    @property
    def name(self) -> str:
        """The file that identifies the shard in messages."""
        return str(self.compact if self.fmt == "compact" else self.noisy)


def _check_dense(noisy_path: Path, clean_path: Path) -> Shard:
    noisy, clean = read_dense(noisy_path, clean_path, _MODE)
    for path, array in ((noisy_path, noisy), (clean_path, clean)):
        if array.dtype != np.float16:
            msg = f"{path}: dtype {array.dtype} is invalid; shards store float16, regenerate it"
            raise ShardError(msg)
    return Shard(fmt="npy", n_events=int(noisy.shape[0]), noisy=noisy_path, clean=clean_path)


def _check_compact(path: Path) -> Shard:
    events, _ = read_compact(path, mode=_MODE)
    return Shard(fmt="compact", n_events=events.n_events, compact=path)


def open_shards(files: Sequence[str | os.PathLike[str]]) -> list[Shard]:
    """Check shard files and return the shards they make up, in the given order.

    Args:
        files: compact ``.npz`` files and/or dense ``.npy`` files. A dense
            shard may be given by its noisy file, its clean file or both;
            the partner is found by the original layout
            (``.../noisy/<INDEX>.npy`` beside ``.../clean/<INDEX>.npy``).

    Raises:
        FileNotFoundError: a file or the partner of a dense file is missing.
        ShardError: a file is truncated, damaged, of another mode or dtype,
            or a noisy/clean pair disagrees in shape.
    """
    shards: list[Shard] = []
    seen: set[Path] = set()
    for item in files:
        path = Path(item)
        if path.suffix == ".npz":
            needed = [path]
        elif path.suffix == ".npy" and path.parent.name in ("noisy", "clean"):
            needed = [path.parent.parent / kind / path.name for kind in ("noisy", "clean")]
        else:
            msg = (
                f"{path}: not a shard file; expected a compact <INDEX>.npz or a dense "
                "noisy/<INDEX>.npy or clean/<INDEX>.npy"
            )
            raise ShardError(msg)
        if needed[0] in seen:
            continue
        seen.add(needed[0])
        for file in needed:
            if not file.is_file():
                msg = f"shard file {file} not found"
                raise FileNotFoundError(msg)
        shards.append(_check_compact(path) if len(needed) == 1 else _check_dense(*needed))
    if not shards:
        msg = "no shard files given"
        raise ValueError(msg)
    return shards


def shard_range_files(
    root: str | os.PathLike[str], first: int, last: int, fmt: ShardFormat
) -> list[Path]:
    """Return one file per denoising shard ``first`` … ``last - 1`` under ``root``.

    That is the compact file, or the noisy file of a dense pair; ``open_shards``
    accepts the list.
    """
    if not 0 <= first < last:
        msg = f"shard range [{first}, {last}) is invalid; expected 0 <= first < last"
        raise ValueError(msg)
    return [shard_paths(root, _MODE, index).for_format(fmt)[0] for index in range(first, last)]


def find_shards(
    root: str | os.PathLike[str], first: int, last: int, fmt: ShardFormat
) -> list[Shard]:
    """Check and return denoising shards ``first`` … ``last - 1`` under data root ``root``."""
    return open_shards(shard_range_files(root, first, last, fmt))


# ---------------------------------------------------------------------------
# Reading events of a batch


def _gather_sparse(
    events: SparseEvents, wanted: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float16], npt.NDArray[np.bool_]]:
    """Collect the stored voxels of events ``wanted``, placed at batch ``rows``.

    Returns:
        ``(flat, values, track)``: int64 index into the flattened batch
        (row * 34,944 + voxel), float16 noisy amplitude, bool track flag.
    """
    starts = events.offsets[wanted]
    counts = events.offsets[wanted + 1] - starts
    total = int(counts.sum())
    first_of_event = np.cumsum(counts) - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(first_of_event, counts)
    position = np.repeat(starts, counts) + within
    flat = np.repeat(rows * N_VOXELS, counts) + events.indices[position].astype(np.int64)
    return flat, events.values[position], events.track[position]


class _CompactCache:
    """Keeps a compact shard loaded while the epoch still has events of it to feed."""

    def __init__(self, shards: Sequence[Shard], plan_shard: npt.NDArray[np.int64]) -> None:
        self._shards = shards
        self._remaining = np.bincount(plan_shard, minlength=len(shards))
        self._loaded: dict[int, SparseEvents] = {}

    def get(self, position: int) -> SparseEvents:
        if position not in self._loaded:
            shard = self._shards[position]
            assert shard.compact is not None
            self._loaded[position] = read_compact(shard.compact, mode=_MODE)[0]
        return self._loaded[position]

    def consumed(self, position: int, count: int) -> None:
        self._remaining[position] -= count
        if self._remaining[position] == 0:
            self._loaded.pop(position, None)


class ShardDataset:
    """Batches of (noisy, clean) events from checked shards, as numpy or tf.data.

    Args:
        shards: shards from ``open_shards`` or ``find_shards``, all of one format.
        batch_size: events per batch.
        shuffle: mix the events every epoch (training) or keep the stored
            order (validation, evaluation).
        seed: base seed of the shuffling.
        shuffle_buffer: events mixed at a time, rounded up to whole shards.
    """

    def __init__(
        self,
        shards: Sequence[Shard],
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer: int = 10_000,
    ) -> None:
        if not shards:
            msg = "no shards given; a dataset needs at least one shard"
            raise ValueError(msg)
        formats = {shard.fmt for shard in shards}
        if len(formats) > 1:
            msg = f"shards mix the formats {sorted(formats)}; convert them to one format"
            raise ValueError(msg)
        if int(batch_size) < 1:
            msg = f"batch size {batch_size} is invalid; expected a positive integer"
            raise ValueError(msg)
        self.shards = list(shards)
        self.fmt: ShardFormat = self.shards[0].fmt
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.shuffle_buffer = max(0, int(shuffle_buffer))
        self.sizes = np.array([shard.n_events for shard in self.shards], dtype=np.int64)
        self._next_epoch = 0

    @property
    def n_events(self) -> int:
        """Events per epoch."""
        return int(self.sizes.sum())

    @property
    def n_batches(self) -> int:
        """Batches per epoch."""
        return -(-self.n_events // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass over the data use the order of ``epoch``.

        Without a call, each pass uses the next epoch number, starting at 0.
        """
        self._next_epoch = int(epoch)

    def event_order(self, epoch: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return the order in which epoch ``epoch`` feeds the events.

        Returns:
            ``(shard, event)``: int64 arrays of length ``n_events``; entry i
            is the position of the shard in ``shards`` and the event index
            within it of the i-th event fed.
        """
        if not self.shuffle:
            shard_of = np.repeat(np.arange(len(self.shards), dtype=np.int64), self.sizes)
            event_of = np.concatenate([np.arange(size, dtype=np.int64) for size in self.sizes])
            return shard_of, event_of

        rng = np.random.default_rng([self.seed, int(epoch)])
        order = rng.permutation(len(self.shards))
        shard_parts: list[npt.NDArray[np.int64]] = []
        event_parts: list[npt.NDArray[np.int64]] = []
        window: list[int] = []
        filled = 0
        for position, shard in enumerate(order):
            window.append(int(shard))
            filled += int(self.sizes[shard])
            if filled < self.shuffle_buffer and position + 1 < len(order):
                continue
            shard_of = np.repeat(np.array(window, dtype=np.int64), self.sizes[window])
            event_of = np.concatenate([np.arange(self.sizes[s], dtype=np.int64) for s in window])
            mix = rng.permutation(len(shard_of))
            shard_parts.append(shard_of[mix])
            event_parts.append(event_of[mix])
            window, filled = [], 0
        return np.concatenate(shard_parts), np.concatenate(event_parts)

    def _take_epoch(self) -> int:
        epoch = self._next_epoch
        self._next_epoch += 1
        return epoch

    def _sparse_batches(
        self, epoch: int
    ) -> Iterator[
        tuple[npt.NDArray[np.int64], npt.NDArray[np.float16], npt.NDArray[np.int64], np.int64]
    ]:
        """Yield ``(flat, values, track_flat, count)`` per batch of compact shards."""
        shard_of, event_of = self.event_order(epoch)
        cache = _CompactCache(self.shards, shard_of)
        for start in range(0, len(shard_of), self.batch_size):
            batch_shards = shard_of[start : start + self.batch_size]
            batch_events = event_of[start : start + self.batch_size]
            flats, values, tracks = [], [], []
            for position in map(int, np.unique(batch_shards)):
                rows = np.flatnonzero(batch_shards == position)
                flat, value, track = _gather_sparse(cache.get(position), batch_events[rows], rows)
                flats.append(flat)
                values.append(value)
                tracks.append(track)
                cache.consumed(position, len(rows))
            flat = np.concatenate(flats)
            track = np.concatenate(tracks)
            yield flat, np.concatenate(values), flat[track], np.int64(len(batch_shards))

    def _dense_batches(
        self, epoch: int
    ) -> Iterator[tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]]:
        """Yield float16 ``(noisy, clean)`` of shape (n, 12, 14, 208) per batch of dense shards."""
        shard_of, event_of = self.event_order(epoch)
        maps: dict[int, tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]] = {}
        for start in range(0, len(shard_of), self.batch_size):
            batch_shards = shard_of[start : start + self.batch_size]
            batch_events = event_of[start : start + self.batch_size]
            noisy = np.empty((len(batch_shards), *EVENT_SHAPE), dtype=np.float16)
            clean = np.empty((len(batch_shards), *EVENT_SHAPE), dtype=np.float16)
            for position in map(int, np.unique(batch_shards)):
                if position not in maps:
                    shard = self.shards[position]
                    assert shard.noisy is not None
                    assert shard.clean is not None
                    maps[position] = read_dense(shard.noisy, shard.clean, _MODE)
                rows = np.flatnonzero(batch_shards == position)
                # Reading the memory map in increasing event order keeps disk access sequential.
                sort = np.argsort(batch_events[rows], kind="stable")
                noisy_map, clean_map = maps[position]
                noisy[rows[sort]] = noisy_map[batch_events[rows][sort]]
                clean[rows[sort]] = clean_map[batch_events[rows][sort]]
            yield noisy, clean

    def numpy_batches(
        self, epoch: int | None = None
    ) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """Yield float32 ``(noisy, clean)`` batches of shape (n, 12, 14, 208, 1) without TensorFlow.

        This is the reference for what ``tf_dataset`` feeds; it is slower.
        """
        epoch = self._take_epoch() if epoch is None else epoch
        if self.fmt == "npy":
            for noisy, clean in self._dense_batches(epoch):
                yield noisy.astype(np.float32)[..., None], clean.astype(np.float32)[..., None]
            return
        for flat, values, track_flat, count in self._sparse_batches(epoch):
            noisy32 = np.zeros(int(count) * N_VOXELS, dtype=np.float32)
            clean32 = np.zeros(int(count) * N_VOXELS, dtype=np.float32)
            noisy32[flat] = values
            clean32[track_flat] = 1.0
            shape = (int(count), *EVENT_SHAPE, 1)
            yield noisy32.reshape(shape), clean32.reshape(shape)

    def tf_dataset(self, prefetch: int | None = None) -> tf.data.Dataset:
        """Return a tf.data pipeline of float32 ``(noisy, clean)`` batches, (n, 12, 14, 208, 1).

        Each iteration over the dataset is one epoch; it uses the epoch
        number set by ``set_epoch`` or else the next one.

        Args:
            prefetch: batches prepared ahead; default: tuned by tf.data.
        """
        import tensorflow as tf

        event_spec = tf.TensorSpec((None, *EVENT_SHAPE), tf.float16)
        if self.fmt == "npy":
            dataset = tf.data.Dataset.from_generator(
                lambda: self._dense_batches(self._take_epoch()),
                output_signature=(event_spec, event_spec),
            )
            dataset = dataset.map(_widen_dense, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            dataset = tf.data.Dataset.from_generator(
                lambda: self._sparse_batches(self._take_epoch()),
                output_signature=(
                    tf.TensorSpec((None,), tf.int64),
                    tf.TensorSpec((None,), tf.float16),
                    tf.TensorSpec((None,), tf.int64),
                    tf.TensorSpec((), tf.int64),
                ),
            )
            # The generator passes only the stored voxels; the dense batch is
            # built in the tf.data graph, in parallel and without the GIL.
            dataset = dataset.prefetch(4).map(_densify, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.n_batches))
        options = tf.data.Options()
        options.deterministic = True
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
        return dataset.prefetch(tf.data.AUTOTUNE if prefetch is None else prefetch)


def _widen_dense(noisy: Any, clean: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    return tf.cast(noisy, tf.float32)[..., None], tf.cast(clean, tf.float32)[..., None]


def _densify(flat: Any, values: Any, track_flat: Any, count: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    size = count * N_VOXELS
    noisy = tf.raw_ops.SparseToDense(
        sparse_indices=flat,
        output_shape=tf.reshape(size, (1,)),
        sparse_values=tf.cast(values, tf.float32),
        default_value=tf.constant(0.0, tf.float32),
        validate_indices=False,
    )
    clean = tf.raw_ops.SparseToDense(
        sparse_indices=track_flat,
        output_shape=tf.reshape(size, (1,)),
        sparse_values=tf.constant(1.0, tf.float32),
        default_value=tf.constant(0.0, tf.float32),
        validate_indices=False,
    )
    shape = (-1, *EVENT_SHAPE, 1)
    return tf.reshape(noisy, shape), tf.reshape(clean, shape)


class DataLoader:
    """Denoising shards of a data root as a tf.data pipeline, for users of the original code.

    Args:
        root: data root holding ``data/simulated/{noisy,clean}/<INDEX>.npy``.
        fmt: shard format, ``"npy"`` (the original layout) or ``"compact"``.
    """

    def __init__(self, root: str | os.PathLike[str] = ".", fmt: ShardFormat = "npy") -> None:
        self.root = Path(root)
        self.fmt: ShardFormat = fmt

    # The camel-case name is the interface of the original code.
    def getDataset(
        self,
        low: int,
        high: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 10_000,
    ) -> tf.data.Dataset:
        """Return float32 (noisy, clean) batches of shards ``low`` … ``high - 1``.

        Each iteration over the returned dataset is one epoch, every event
        exactly once; with ``shuffle`` the order changes from epoch to epoch.
        """
        shards = find_shards(self.root, low, high, self.fmt)
        dataset = ShardDataset(
            shards, batch_size, shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer
        )
        return dataset.tf_dataset()
