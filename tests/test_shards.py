"""Shard formats: dense/compact round trips and rejection of damaged or foreign files."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from track_denoiser import constants as c
from track_denoiser.cli import main
from track_denoiser.generator import GeneratorSettings, SparseEvents, generate_shard_events
from track_denoiser.production import generate_shards
from track_denoiser.shards import (
    ShardError,
    convert_shard,
    existing_indices,
    next_free_index,
    read_compact,
    read_dense,
    read_shard,
    shard_paths,
    write_shard,
)

SEED = 5
EVENTS = 150
# float16's smallest normal number; noise amplitudes below it are stored as subnormals.
FLOAT16_TINY = float(np.finfo(np.float16).tiny)


def _has_hard_voxels(events: SparseEvents) -> bool:
    """Return whether noise that is zero in float16 overwrote any track voxel of the events."""
    return bool((events.track & (events.values == 0)).any())


@functools.cache
def hard_shard_index(mode: str) -> int:
    """Return the first shard index whose events hold a float16-zero track voxel.

    About 1 in 300 events has one, so only some small shards do. Searching
    the indices keeps the test shards small and the choice fixed. Labeling
    shards store no per-voxel target, so any of their shards will do.
    """
    if mode == "labeling":
        return 0
    settings = GeneratorSettings(mode=mode, events_per_shard=EVENTS)  # type: ignore[arg-type]
    for index in range(200):
        if _has_hard_voxels(generate_shard_events(settings, SEED, index)):
            return index
    raise AssertionError("no shard with a float16-zero track voxel among 200")


def _settings(mode: str) -> GeneratorSettings:
    return GeneratorSettings(mode=mode, events_per_shard=EVENTS)  # type: ignore[arg-type]


def test_generated_shard_has_hard_voxels() -> None:
    events = generate_shard_events(_settings("denoising"), SEED, hard_shard_index("denoising"))
    values = events.values.astype(np.float64)
    noise = ~events.track
    # Track voxels overwritten by noise that is zero in float16 are stored.
    assert _has_hard_voxels(events)
    # Subnormal noise amplitudes and noise clipped to 1.
    assert ((values[noise] > 0) & (values[noise] < FLOAT16_TINY)).any()
    assert (values[noise] == 1.0).any()
    # Non-track voxels are stored only when nonzero.
    assert (values[noise] != 0).all()


def test_labeling_shard_stores_nonzero_voxels_only(data_root: Path) -> None:
    generate_shards(data_root, _settings("labeling"), SEED, [0], "compact")
    events, _ = read_compact(shard_paths(data_root, "labeling", 0).compact, mode="labeling")

    assert not events.track.any()
    assert (events.values != 0).all()
    assert set(np.unique(events.labels).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("mode", ["denoising", "labeling"])
def test_npy_compact_npy_byte_exact(data_root: Path, mode: str) -> None:
    index = hard_shard_index(mode)
    generate_shards(data_root, _settings(mode), SEED, [index], "npy")
    paths = shard_paths(data_root, mode, index)
    original = {p.name + p.parent.name: p.read_bytes() for p in (paths.noisy, paths.clean)}

    assert main(["convert", "--to", "compact", "--mode", mode, "--root", str(data_root)]) == 0
    paths.noisy.unlink()
    paths.clean.unlink()
    assert main(["convert", "--to", "npy", "--mode", mode, "--root", str(data_root)]) == 0

    again = {p.name + p.parent.name: p.read_bytes() for p in (paths.noisy, paths.clean)}
    assert again == original


@pytest.mark.parametrize("mode", ["denoising", "labeling"])
def test_compact_npy_compact_same_events(data_root: Path, mode: str) -> None:
    index = hard_shard_index(mode)
    generate_shards(data_root, _settings(mode), SEED, [index], "compact")
    paths = shard_paths(data_root, mode, index)
    generated, record = read_compact(paths.compact, mode=mode)
    assert record["seed"] == SEED
    assert record["shard_index"] == index

    convert_shard(data_root, mode, index, "npy")
    moved = paths.compact.with_suffix(".orig")
    paths.compact.rename(moved)
    convert_shard(data_root, mode, index, "compact")
    converted, _ = read_compact(paths.compact, mode=mode)

    assert converted.labels.tobytes() == generated.labels.tobytes()
    assert np.array_equal(converted.offsets, generated.offsets)
    assert np.array_equal(converted.indices, generated.indices)
    assert converted.values.tobytes() == generated.values.tobytes()
    assert np.array_equal(converted.track, generated.track)


@pytest.mark.parametrize("mode", ["denoising", "labeling"])
def test_formats_hold_same_shard(tmp_path: Path, mode: str) -> None:
    index = hard_shard_index(mode)
    generate_shards(tmp_path / "a", _settings(mode), SEED, [index], "npy")
    generate_shards(tmp_path / "b", _settings(mode), SEED, [index], "compact")
    convert_shard(tmp_path / "b", mode, index, "npy")
    for kind in ("noisy", "clean"):
        relative = f"data/{'simulated' if mode == 'denoising' else 'labeling'}/{kind}/{index}.npy"
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_dense_clean_keeps_overwritten_track_voxel(data_root: Path) -> None:
    index = hard_shard_index("denoising")
    generate_shards(data_root, _settings("denoising"), SEED, [index], "compact")
    events = read_shard(data_root, "denoising", index, "compact")
    hard = events.track & (events.values == 0)
    event = events.event_ids()[hard][0]
    x, y, z = np.unravel_index(int(events.indices[hard][0]), c.EVENT_SHAPE)
    assert events.clean_dense()[event, x, y, z] == 1
    assert events.noisy_dense()[event, x, y, z] == 0


# ---------------------------------------------------------------------------
# Damaged and foreign files


@pytest.fixture
def compact_shard(data_root: Path) -> Path:
    generate_shards(data_root, GeneratorSettings(events_per_shard=20), SEED, [0], "compact")
    return shard_paths(data_root, "denoising", 0).compact


@pytest.fixture
def dense_shard(data_root: Path) -> tuple[Path, Path]:
    generate_shards(data_root, GeneratorSettings(events_per_shard=20), SEED, [0], "npy")
    paths = shard_paths(data_root, "denoising", 0)
    return paths.noisy, paths.clean


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_truncated_compact_rejected(compact_shard: Path, keep: float) -> None:
    _truncate(compact_shard, keep)
    with pytest.raises(ShardError, match=str(compact_shard)):
        read_compact(compact_shard)


def test_foreign_npz_rejected(data_root: Path) -> None:
    path = shard_paths(data_root, "denoising", 0).compact
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, weights=np.zeros(3), bias=np.ones(2))
    with pytest.raises(ShardError, match="not a compact shard") as info:
        read_shard(data_root, "denoising", 0, "compact")
    assert str(path) in str(info.value)


def test_pickled_npz_rejected(data_root: Path) -> None:
    path = data_root / "objects.npz"
    with path.open("wb") as handle:
        np.savez(handle, offsets=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ShardError, match=str(path)):
        read_compact(path)


def test_compact_from_other_settings_rejected(compact_shard: Path) -> None:
    events, record = read_compact(compact_shard, settings={"entry": "paper", "seed": SEED})
    assert events.n_events == 20
    assert record["entry"] == "paper"

    with pytest.raises(ShardError) as info:
        read_compact(compact_shard, settings={"entry": "all-faces"})
    message = str(info.value)
    assert str(compact_shard) in message
    assert "entry='paper'" in message
    assert "entry='all-faces'" in message

    with pytest.raises(ShardError, match="seed=5"):
        read_compact(compact_shard, settings={"seed": 6})


def test_compact_of_other_mode_rejected(compact_shard: Path) -> None:
    with pytest.raises(ShardError, match="denoising events, expected labeling"):
        read_compact(compact_shard, mode="labeling")


@pytest.mark.parametrize("which", ["noisy", "clean"])
@pytest.mark.parametrize("keep", [0.0, 0.00003, 0.05, 0.5, 0.999])
def test_truncated_npy_rejected(dense_shard: tuple[Path, Path], which: str, keep: float) -> None:
    path = dense_shard[0] if which == "noisy" else dense_shard[1]
    _truncate(path, keep)
    with pytest.raises(ShardError, match=str(path)):
        read_dense(*dense_shard, mode="denoising")


def test_mismatched_npy_pair_rejected(dense_shard: tuple[Path, Path]) -> None:
    noisy, clean = dense_shard
    np.save(clean, np.zeros((19, *c.EVENT_SHAPE), dtype=np.float16))
    with pytest.raises(ShardError, match=str(clean)):
        read_dense(noisy, clean, mode="denoising")


def test_missing_shard_names_convert_command(
    dense_shard: tuple[Path, Path], data_root: Path
) -> None:
    with pytest.raises(FileNotFoundError) as info:
        read_shard(data_root, "denoising", 0, "compact")
    message = str(info.value)
    assert str(shard_paths(data_root, "denoising", 0).compact) in message
    assert "track-denoiser convert --to compact --mode denoising" in message
    assert "--first-index 0 -n 1" in message


def test_missing_compact_shard_names_npy_conversion(compact_shard: Path, data_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="convert --to npy"):
        read_shard(data_root, "denoising", 0, "npy")


def test_missing_shard_in_both_formats(data_root: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        read_shard(data_root, "denoising", 4, "npy")
    assert "4.npy" in str(info.value)
    assert "convert" not in str(info.value)


# ---------------------------------------------------------------------------
# Writing and indices


def test_write_refuses_existing_shard(data_root: Path) -> None:
    events = generate_shard_events(GeneratorSettings(events_per_shard=5), SEED, 0)
    write_shard(events, data_root, "denoising", 0, "compact")
    path = shard_paths(data_root, "denoising", 0).compact
    before = path.read_bytes()
    other = generate_shard_events(GeneratorSettings(events_per_shard=5), SEED, 1)
    with pytest.raises(FileExistsError, match=str(path)):
        write_shard(other, data_root, "denoising", 0, "compact")
    assert path.read_bytes() == before
    write_shard(other, data_root, "denoising", 0, "compact", overwrite=True)
    assert path.read_bytes() != before


def test_convert_refuses_existing_target(dense_shard: tuple[Path, Path], data_root: Path) -> None:
    convert_shard(data_root, "denoising", 0, "compact")
    with pytest.raises(FileExistsError):
        convert_shard(data_root, "denoising", 0, "compact")
    convert_shard(data_root, "denoising", 0, "compact", overwrite=True)


def test_existing_and_next_indices(data_root: Path) -> None:
    settings = GeneratorSettings(events_per_shard=2)
    generate_shards(data_root, settings, SEED, [0, 3], "npy")
    generate_shards(data_root, settings, SEED, [7], "compact")
    (data_root / "data/simulated/noisy/notes.npy.txt").write_text("")
    assert existing_indices(data_root, "denoising", "npy") == [0, 3]
    assert existing_indices(data_root, "denoising", "compact") == [7]
    assert next_free_index(data_root, "denoising") == 8
    assert next_free_index(data_root, "labeling") == 0


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    generate_shards(tmp_path, GeneratorSettings(events_per_shard=3), SEED, [0, 1], "npy")
    generate_shards(tmp_path, GeneratorSettings(events_per_shard=3), SEED, [2], "compact")
    hidden = [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert hidden == []
