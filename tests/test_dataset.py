"""The tf.data input pipeline over dense and compact shards."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from track_denoiser.dataset import (
    DataLoader,
    ShardDataset,
    find_shards,
    open_shards,
    shard_range_files,
)
from track_denoiser.generator import GeneratorSettings
from track_denoiser.production import generate_shards
from track_denoiser.shards import ShardError, convert_shard, shard_paths

# Shards of different sizes: the pipeline must not assume equal shards.
SIZES = (23, 9, 31)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root with denoising shards 0-2 in both formats (sizes SIZES)."""
    root = tmp_path_factory.mktemp("shards")
    for index, size in enumerate(SIZES):
        settings = GeneratorSettings(events_per_shard=size)
        generate_shards(root, settings, seed=4, indices=[index], fmt="npy", progress=False)
        convert_shard(root, "denoising", index, "compact")
    return root


def _dense_events(root: Path) -> tuple[np.ndarray, np.ndarray]:
    noisy = [np.load(shard_paths(root, "denoising", i).noisy) for i in range(len(SIZES))]
    clean = [np.load(shard_paths(root, "denoising", i).clean) for i in range(len(SIZES))]
    return np.concatenate(noisy), np.concatenate(clean)


def _digest(noisy: np.ndarray, clean: np.ndarray) -> str:
    return hashlib.sha1(noisy.tobytes() + clean.tobytes()).hexdigest()


def _epoch_digests(dataset) -> Counter:
    seen: Counter = Counter()
    for noisy, clean in dataset:
        noisy, clean = np.asarray(noisy), np.asarray(clean)
        for i in range(len(noisy)):
            seen[_digest(noisy[i], clean[i])] += 1
    return seen


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_every_event_once_per_epoch(root, fmt):
    noisy, clean = _dense_events(root)
    expected = Counter(
        _digest(noisy[i].astype(np.float32)[..., None], clean[i].astype(np.float32)[..., None])
        for i in range(len(noisy))
    )
    data = ShardDataset(find_shards(root, 0, 3, fmt), 8, shuffle=True, seed=1, shuffle_buffer=30)
    pipeline = data.tf_dataset()

    first = _epoch_digests(pipeline)
    second = _epoch_digests(pipeline)
    assert first == expected
    assert second == expected


def test_event_order_covers_each_event_once(root):
    data = ShardDataset(find_shards(root, 0, 3, "compact"), 8, shuffle=True, seed=1)
    everything = sorted((s, e) for s, size in enumerate(SIZES) for e in range(size))

    for epoch in range(3):
        shard, event = data.event_order(epoch)
        assert sorted(zip(shard.tolist(), event.tolist(), strict=True)) == everything


def test_shuffle_depends_on_seed_and_epoch(root):
    shards = find_shards(root, 0, 3, "compact")
    a = ShardDataset(shards, 8, shuffle=True, seed=1)
    b = ShardDataset(shards, 8, shuffle=True, seed=1)
    c = ShardDataset(shards, 8, shuffle=True, seed=2)

    np.testing.assert_array_equal(a.event_order(0)[1], b.event_order(0)[1])
    assert not np.array_equal(a.event_order(0)[1], a.event_order(1)[1])
    assert not np.array_equal(a.event_order(0)[1], c.event_order(0)[1])


def test_shuffle_mixes_across_and_within_shards(root):
    shards = find_shards(root, 0, 3, "compact")
    mixed = ShardDataset(shards, 8, shuffle=True, seed=1, shuffle_buffer=100)
    shard, event = mixed.event_order(0)

    # Within the first eight events more than one shard appears ...
    assert len(set(shard[:8].tolist())) > 1
    # ... and no shard is read in its stored order.
    for s in range(len(SIZES)):
        assert not np.array_equal(event[shard == s], np.arange(SIZES[s]))


def test_small_buffer_keeps_shards_apart(root):
    shards = find_shards(root, 0, 3, "compact")
    separate = ShardDataset(shards, 8, shuffle=True, seed=1, shuffle_buffer=0)
    shard, _ = separate.event_order(0)

    # With one shard per window each shard's events are contiguous.
    changes = np.count_nonzero(np.diff(shard))
    assert changes == len(SIZES) - 1


def test_order_without_shuffle(root):
    data = ShardDataset(find_shards(root, 0, 3, "npy"), 8)
    shard, event = data.event_order(5)

    assert shard.tolist() == [s for s, size in enumerate(SIZES) for _ in range(size)]
    assert event.tolist() == [e for size in SIZES for e in range(size)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_formats_give_identical_batches(root, shuffle):
    dense = ShardDataset(
        find_shards(root, 0, 3, "npy"), 10, shuffle=shuffle, seed=9, shuffle_buffer=20
    )
    compact = ShardDataset(
        find_shards(root, 0, 3, "compact"), 10, shuffle=shuffle, seed=9, shuffle_buffer=20
    )

    n_batches = 0
    for (x_dense, y_dense), (x_compact, y_compact) in zip(
        dense.tf_dataset(), compact.tf_dataset(), strict=True
    ):
        assert x_dense.dtype == x_compact.dtype == "float32"
        np.testing.assert_array_equal(x_dense.numpy(), x_compact.numpy())
        np.testing.assert_array_equal(y_dense.numpy(), y_compact.numpy())
        n_batches += 1
    assert n_batches == dense.n_batches == compact.n_batches == -(-sum(SIZES) // 10)


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_batches_shapes_and_values(root, fmt):
    data = ShardDataset(find_shards(root, 0, 3, fmt), 16)
    noisy, clean = _dense_events(root)

    batches = list(data.tf_dataset())
    assert [int(x.shape[0]) for x, _ in batches] == [16, 16, 16, 15]
    x, y = batches[0]
    assert x.shape == y.shape == (16, 12, 14, 208, 1)
    np.testing.assert_array_equal(x.numpy()[..., 0], noisy[:16].astype(np.float32))
    np.testing.assert_array_equal(y.numpy()[..., 0], clean[:16].astype(np.float32))
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_numpy_batches_match_tf_batches(root, fmt):
    data = ShardDataset(find_shards(root, 0, 3, fmt), 12, shuffle=True, seed=3, shuffle_buffer=5)

    data.set_epoch(2)
    for (x_tf, y_tf), (x_np, y_np) in zip(
        data.tf_dataset(), data.numpy_batches(epoch=2), strict=True
    ):
        np.testing.assert_array_equal(x_tf.numpy(), x_np)
        np.testing.assert_array_equal(y_tf.numpy(), y_np)


def test_open_shards_accepts_pairs_and_either_file(root):
    paths = [shard_paths(root, "denoising", i) for i in range(2)]

    from_pairs = open_shards([paths[0].noisy, paths[0].clean, paths[1].noisy, paths[1].clean])
    from_clean = open_shards([paths[0].clean, paths[1].clean])
    assert (
        [s.noisy for s in from_pairs] == [s.noisy for s in from_clean] == [p.noisy for p in paths]
    )
    assert [s.n_events for s in from_pairs] == list(SIZES[:2])


def _copy_shards(root: Path, target: Path, fmt: str) -> list[Path]:
    files = []
    for index in range(len(SIZES)):
        for source in shard_paths(root, "denoising", index).for_format(fmt):
            destination = target / source.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read_bytes())
            files.append(destination)
    return files


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_truncated_shard_named_before_first_batch(root, tmp_path, fmt):
    _copy_shards(root, tmp_path, fmt)
    victim = shard_paths(tmp_path, "denoising", 2).for_format(fmt)[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

    with pytest.raises(ShardError, match=str(victim)):
        find_shards(tmp_path, 0, 3, fmt)


def test_mismatched_pair_named(root, tmp_path):
    _copy_shards(root, tmp_path, "npy")
    clean_1 = shard_paths(tmp_path, "denoising", 1).clean
    # Shard 1's clean file replaced by shard 0's, which contains another number of events.
    clean_1.write_bytes(shard_paths(root, "denoising", 0).clean.read_bytes())

    with pytest.raises(ShardError, match=rf"{clean_1}: shape \(23, 12, 14, 208\) does not match"):
        find_shards(tmp_path, 0, 3, "npy")


def test_missing_partner_file(root, tmp_path):
    _copy_shards(root, tmp_path, "npy")
    clean_0 = shard_paths(tmp_path, "denoising", 0).clean
    clean_0.unlink()

    with pytest.raises(FileNotFoundError, match=str(clean_0)):
        open_shards([shard_paths(tmp_path, "denoising", 0).noisy])


def test_float32_dense_shard_rejected(tmp_path):
    paths = shard_paths(tmp_path, "denoising", 0)
    paths.noisy.parent.mkdir(parents=True)
    paths.clean.parent.mkdir(parents=True)
    np.save(paths.noisy, np.zeros((2, 12, 14, 208), dtype=np.float32))
    np.save(paths.clean, np.zeros((2, 12, 14, 208), dtype=np.float16))

    with pytest.raises(ShardError, match=r"0\.npy: dtype float32 is invalid"):
        open_shards([paths.noisy])


def test_labeling_shard_rejected(tmp_path):
    settings = GeneratorSettings(mode="labeling", events_per_shard=4)
    files = generate_shards(tmp_path, settings, seed=1, indices=[0], fmt="compact", progress=False)

    with pytest.raises(ShardError, match="labeling events, expected denoising"):
        open_shards(files)


def test_invalid_inputs(root, tmp_path):
    odd = tmp_path / "events.txt"
    odd.write_text("")
    with pytest.raises(ShardError, match="not a shard file"):
        open_shards([odd])
    with pytest.raises(ValueError, match="no shard files"):
        open_shards([])
    with pytest.raises(ValueError, match=r"range \[3, 3\) is invalid"):
        shard_range_files(root, 3, 3, "npy")
    mixed = find_shards(root, 0, 1, "npy") + find_shards(root, 1, 2, "compact")
    with pytest.raises(ValueError, match="mix the formats"):
        ShardDataset(mixed, 4)
    with pytest.raises(ValueError, match="batch size 0 is invalid"):
        ShardDataset(mixed[:1], 0)


def test_data_loader_get_dataset(root):
    dataset = DataLoader(root).getDataset(0, 2, 8)

    n_events = sum(int(x.shape[0]) for x, _ in dataset)
    assert n_events == SIZES[0] + SIZES[1]
    x, y = next(iter(dataset))
    assert x.dtype == y.dtype == "float32"
    assert x.shape[1:] == (12, 14, 208, 1)


def test_data_loader_missing_shard_names_file(root):
    with pytest.raises(FileNotFoundError, match=r"noisy/5\.npy not found"):
        DataLoader(root).getDataset(5, 8, 8)
