"""Unit tests of the generator's parts: Landau amplitudes, noise waveforms,
track entry and validity, noise overwriting, reproducibility and labels."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

import oracle
from track_denoiser import constants as c
from track_denoiser.generator import (
    GeneratorSettings,
    _synthetic_noise,
    generate_events,
    generate_shard_events,
    load_background,
    sample_directions,
    sample_entries,
    sample_landau,
    shard_rng,
    trace_tracks,
)
from track_denoiser.production import generate_shards
from track_denoiser.shards import read_shard

ALPHA = 1e-3


# ---------------------------------------------------------------------------
# Landau amplitudes


def _landau_cdf(amplitude: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """CDF of the documented Landau amplitude on [0, 1], integrated numerically."""
    grid = np.linspace(0.0, 1.0, 200_001)
    x = (grid - c.LANDAU_OFFSET) / c.LANDAU_SIGMA
    density = np.exp(-(x + np.exp(-x)) / 2.0)
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2.0)])
    return np.interp(amplitude, grid, cumulative / cumulative[-1])


def test_landau_offset_value() -> None:
    offset = c.LANDAU_OFFSET
    assert offset == pytest.approx(0.2 + 0.1 * math.log(0.05) / math.pi)
    assert offset == pytest.approx(0.1046, abs=1e-4)


def test_landau_range_and_mode() -> None:
    samples = sample_landau(np.random.default_rng(1), 400_000)

    assert samples.shape == (400_000,)
    assert samples.min() >= 0.0
    assert samples.max() <= 1.0

    # Mode: vertex of a parabola fitted to the log histogram around the peak.
    counts, edges = np.histogram(samples, bins=120, range=(0.0, 0.3))
    centers = (edges[1:] + edges[:-1]) / 2
    near_peak = np.abs(centers - centers[np.argmax(counts)]) < 0.04
    a, b, _ = np.polyfit(centers[near_peak], np.log(counts[near_peak]), 2)
    mode = -b / (2 * a)
    assert mode == pytest.approx(c.LANDAU_OFFSET, abs=0.004)


def test_landau_matches_density() -> None:
    samples = sample_landau(np.random.default_rng(2), 100_000)
    assert stats.ks_1samp(samples, _landau_cdf).pvalue > ALPHA


def test_landau_oracle_matches_density() -> None:
    rng = np.random.default_rng(3)
    samples = np.array([oracle.landau(rng) for _ in range(20_000)])
    assert stats.ks_1samp(samples, _landau_cdf).pvalue > ALPHA


# ---------------------------------------------------------------------------
# Synthetic noise waveforms


def _waveforms(n_events: int, seed: int) -> tuple[npt.NDArray[np.int64], ...]:
    """Split synthetic noise into waveforms; return (global pad, z0, length) per waveform.

    ``_synthetic_noise`` lists the voxels waveform by waveform with z rising,
    so a waveform starts where the pad changes or z does not follow the
    previous z. Two waveforms of one pad merge only when the second starts
    right after the first ends, which is rare enough to ignore here.
    """
    event, flat, _ = _synthetic_noise(np.random.default_rng(seed), n_events)
    pad = event * (c.N_X * c.N_Y) + flat // c.N_Z
    z = flat % c.N_Z
    starts = np.ones(len(z), dtype=bool)
    starts[1:] = (pad[1:] != pad[:-1]) | (z[1:] != z[:-1] + 1)
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, len(z)))
    return pad[first], z[first], lengths


def test_noise_waveform_lengths() -> None:
    _, z0, lengths = _waveforms(2000, seed=4)

    # A waveform covers z0 ... min(z0 + L, 207), L ~ Poisson(6).
    assert (z0 + lengths <= c.N_Z).all()
    assert (lengths >= 1).all()
    max_length = int(lengths.max())
    values = np.arange(1, max_length + 1)
    expected = np.zeros(max_length)
    for start, room in zip(*np.unique(z0, return_counts=True), strict=True):
        limit = c.N_Z - start
        pmf = stats.poisson.pmf(values - 1, c.NOISE_LENGTH_MEAN)
        pmf[values == limit] = stats.poisson.sf(limit - 2, c.NOISE_LENGTH_MEAN)
        pmf[values > limit] = 0.0
        expected += room * pmf
    observed = np.bincount(lengths, minlength=max_length + 1)[1:]

    # Pool the tail (lengths of 14 or more) into one bin.
    observed = np.append(observed[:13], observed[13:].sum())
    expected = np.append(expected[:13], expected[13:].sum())
    expected *= observed.sum() / expected.sum()
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_noise_waveform_lengths_clipped_at_last_bin() -> None:
    _, z0, lengths = _waveforms(2000, seed=5)
    late = z0 >= c.N_Z - 3
    assert late.sum() > 50
    assert (z0[late] + lengths[late] - 1 <= c.N_Z - 1).all()
    # L >= 2 has probability 0.98, so most late waveforms run into the last bin.
    reaching_end = z0[late] + lengths[late] == c.N_Z
    assert reaching_end.mean() > 0.9


def test_noise_waveforms_per_pad() -> None:
    n_events = 2000
    pad, _, _ = _waveforms(n_events, seed=6)
    per_pad = np.bincount(pad, minlength=n_events * c.N_X * c.N_Y)
    observed = np.bincount(per_pad, minlength=4)
    observed = np.append(observed[:3], observed[3:].sum())
    binomial = stats.binom(c.N_Z, c.NOISE_WAVEFORM_PROBABILITY)
    probabilities = np.append(binomial.pmf([0, 1, 2]), binomial.sf(2))
    assert stats.chisquare(observed, probabilities * len(per_pad)).pvalue > ALPHA


# ---------------------------------------------------------------------------
# Track entry and validity

LOW = np.array([0, 0, c.TRACK_Z_MIN])
HIGH = np.array([c.N_X - 1, c.N_Y - 1, c.TRACK_Z_MAX])


def _candidates(entry: str, n: int = 20_000, seed: int = 7):
    rng = np.random.default_rng(seed)
    directions = sample_directions(rng, n)
    starts = sample_entries(rng, directions, entry)  # type: ignore[arg-type]
    return directions, starts, trace_tracks(starts, directions)


def _check_face_coordinates(starts: npt.NDArray[np.float64]) -> None:
    assert (starts == np.round(starts)).all()
    assert (starts[:, 0] >= 0).all()
    assert (starts[:, 0] < c.N_X).all()
    assert (starts[:, 1] >= 0).all()
    assert (starts[:, 1] < c.N_Y).all()
    assert (starts[:, 2] >= c.TRACK_Z_MIN).all()
    assert (starts[:, 2] <= c.TRACK_Z_MAX).all()


def test_directions_uniform_on_sphere() -> None:
    directions = sample_directions(np.random.default_rng(8), 50_000)
    assert np.allclose(np.linalg.norm(directions, axis=1), 1.0)
    # Each component of a uniform unit vector is uniform on [-1, 1].
    for axis in range(3):
        assert stats.kstest(directions[:, axis], "uniform", args=(-1, 2)).pvalue > ALPHA


def test_paper_entry_faces() -> None:
    directions, starts, batch = _candidates("paper")
    _check_face_coordinates(starts)

    on_low_face = (starts[:, 0] == 0) | (starts[:, 1] == 0) | (starts[:, 2] == c.TRACK_Z_MIN)
    assert on_low_face.all()

    # The face is the one of the largest signed component.
    axis = np.argmax(directions, axis=1)
    rows = np.arange(len(axis))
    valid = batch.valid
    assert (starts[rows, axis] == LOW[axis]).all()
    for face in range(3):
        assert (valid & (axis == face)).sum() > 1000

    # With every component negative the track points out of its entry face.
    # Pointing out by 0.25 or more, it leaves within 20 steps, too few for
    # 3 units, so it is rejected. Tracks nearly parallel to the face can
    # still cross 3 pads inside the region; they are a few percent of the
    # accepted tracks.
    backwards = (directions < 0).all(axis=1)
    steep = backwards & (np.abs(directions[rows, axis]) >= 0.25)
    assert steep.sum() > 500
    assert not valid[steep].any()
    assert (valid & backwards).sum() < 0.05 * valid.sum()


def test_all_faces_entry() -> None:
    directions, starts, batch = _candidates("all-faces")
    _check_face_coordinates(starts)

    axis = np.argmax(np.abs(directions), axis=1)
    rows = np.arange(len(axis))
    forward = directions[rows, axis] > 0
    expected = np.where(forward, LOW[axis], HIGH[axis])
    assert (starts[rows, axis] == expected).all()

    # All six faces occur among accepted tracks.
    valid = batch.valid
    for face in range(3):
        for side in (True, False):
            assert (valid & (axis == face) & (forward == side)).sum() > 500


def _units(start: npt.NDArray[np.float64], voxels: npt.NDArray[np.int64]) -> int:
    """Validity counter in twentieths of a pad, from the entry voxel and the filled voxels."""
    path = np.vstack([start.astype(np.int64)[None, :], voxels])
    moved = path[1:] != path[:-1]
    return int(20 * (moved[:, 0] | moved[:, 1]).sum() + moved[:, 2].sum())


@pytest.mark.parametrize("entry", ["paper", "all-faces"])
def test_trace_matches_oracle(entry: str) -> None:
    directions, starts, batch = _candidates(entry, n=3000, seed=9)
    for i in range(len(starts)):
        voxels = batch.voxel[batch.track == i]
        expected, counter = oracle.trace_track(tuple(starts[i]), tuple(directions[i]))
        assert [tuple(v) for v in voxels.tolist()] == expected, f"track {i}"
        assert batch.valid[i] == (counter >= 60), f"track {i}"
        assert _units(starts[i], voxels) == counter, f"track {i}"


def test_accepted_tracks_reach_three_pads() -> None:
    _, starts, batch = _candidates("paper", n=3000, seed=10)
    assert batch.valid.sum() > 1000
    for i in np.flatnonzero(batch.valid):
        assert _units(starts[i], batch.voxel[batch.track == i]) >= 60


R = 1 / math.sqrt(2)
TRACK_CASES = [
    # start, direction, filled voxels, valid
    ((5, 5, 110), (0, 0, 1), 60, True),  # 60 z changes = 3 pads exactly
    ((5, 5, 111), (0, 0, 1), 59, False),  # 59 z changes
    ((8, 5, 100), (1, 0, 0), 3, True),  # x = 9, 10, 11
    ((9, 5, 100), (1, 0, 0), 2, False),  # x = 10, 11, then out
    ((9, 5, 150), (R, 0, R), 20, True),  # 2 x changes + 20 z changes
    ((9, 5, 151), (R, 0, R), 19, False),  # 2 x changes + 19 z changes
    ((0, 0, 50), (-R, -R, 0), 0, False),  # leaves at once
    ((3, 0, 165), (0, 0.6, 0.8), 5, False),  # z = 166 ... 170 within one pad
]


@pytest.mark.parametrize(("start", "direction", "n_filled", "valid"), TRACK_CASES)
def test_trace_hand_made_tracks(
    start: tuple[int, int, int], direction: tuple[float, ...], n_filled: int, valid: bool
) -> None:
    batch = trace_tracks(np.array([start], dtype=float), np.array([direction], dtype=float))
    assert len(batch.voxel) == n_filled
    assert bool(batch.valid[0]) is valid
    # The entry voxel itself is never filled.
    assert not (batch.voxel == np.array(start)).all(axis=1).any()


# ---------------------------------------------------------------------------
# Events


def test_noise_overwrites_track_amplitude() -> None:
    settings = GeneratorSettings(events_per_shard=2000)
    zero_track_voxels = 0
    for index in range(10):
        events = generate_shard_events(settings, 11, index)
        # Overwritten, not added: Landau plus noise would exceed 1 now and then.
        assert events.values.max() <= 1.0

        # A Landau amplitude never rounds to 0 in float16, a noise amplitude does.
        overwritten = events.track & (events.values == 0)
        zero_track_voxels += int(overwritten.sum())
        if overwritten.any():
            event_of_voxel = events.event_ids()[overwritten]
            x, y, z = np.unravel_index(events.indices[overwritten].astype(np.int64), c.EVENT_SHAPE)
            assert (events.clean_dense()[event_of_voxel, x, y, z] == 1).all()
            assert (events.noisy_dense()[event_of_voxel, x, y, z] == 0).all()
    assert zero_track_voxels >= 10


def test_measured_noise_scaled_and_first_hundred(data_root: Path, write_backgrounds) -> None:
    folder = write_backgrounds(data_root / "data/x17/gauge_backgrounds", 105, 10)
    background = load_background(folder)
    assert background.n_events == c.BACKGROUND_POOL_SIZE
    assert background.value.max() == 10 + 99  # track0 ... track99 in numeric order

    settings = GeneratorSettings(noise=1, events_per_shard=300)
    events = generate_shard_events(settings, 12, 0, background)
    noise_values = events.values[~events.track].astype(np.float64)
    allowed = (np.arange(10, 110) / c.SATURATION_ADC).astype(np.float16).astype(np.float64)
    assert np.isin(noise_values, allowed).all()
    counts = np.diff(events.offsets) - np.bincount(
        events.event_ids()[events.track], minlength=events.n_events
    )
    assert counts.max() == c.N_X * c.N_Y


def test_measured_noise_added_to_track(data_root: Path, write_backgrounds) -> None:
    folder = write_backgrounds(data_root / "data/x17/gauge_backgrounds", 20, 10)
    settings = GeneratorSettings(noise=1, events_per_shard=300, background_scale=1.0)
    events = generate_shard_events(settings, 15, 0, load_background(folder))

    # Unscaled background voxels are whole ADC counts of 10 or more.
    noise_values = events.values[~events.track].astype(np.float64)
    assert (noise_values >= 10).all()
    assert (noise_values == np.round(noise_values)).all()

    # Where a background voxel meets the track it adds to the Landau amplitude.
    track_values = events.values[events.track].astype(np.float64)
    covered = track_values[track_values > 1.0]
    assert len(covered) > 20
    assert (covered >= 10).all()
    assert (covered != np.round(covered)).mean() > 0.5


def test_labeling_labels_and_track_voxels() -> None:
    settings = GeneratorSettings(mode="labeling", events_per_shard=400)
    events = generate_shard_events(settings, 13, 0)
    assert events.labels.dtype == np.float16
    assert set(np.unique(events.labels).tolist()) == {0.0, 1.0}
    track_voxels = np.bincount(events.event_ids()[events.track], minlength=events.n_events)
    assert (track_voxels[events.labels == 0] == 0).all()
    assert (track_voxels[events.labels == 1] > 0).all()


def test_labeling_dense_clean_is_label_vector(data_root: Path) -> None:
    settings = GeneratorSettings(mode="labeling", events_per_shard=40)
    noisy_path, clean_path = generate_shards(data_root, settings, 14, [0], "npy")
    labels = np.load(clean_path)
    assert labels.dtype == np.float16
    assert labels.shape == (40,)
    assert set(np.unique(labels).tolist()) <= {0.0, 1.0}
    assert np.load(noisy_path).shape == (40, *c.EVENT_SHAPE)


# ---------------------------------------------------------------------------
# Reproducibility


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


SMALL = GeneratorSettings(events_per_shard=30)


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_rerun_is_byte_identical(tmp_path: Path, fmt: str) -> None:
    generate_shards(tmp_path / "a", SMALL, 7, [0, 1], fmt)  # type: ignore[arg-type]
    generate_shards(tmp_path / "b", SMALL, 7, [0, 1], fmt)  # type: ignore[arg-type]
    first, second = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
    assert len(first) == (4 if fmt == "npy" else 2)
    assert first == second


@pytest.mark.parametrize("fmt", ["npy", "compact"])
def test_shards_independent_of_order(tmp_path: Path, fmt: str) -> None:
    together, apart = tmp_path / "together", tmp_path / "apart"
    generate_shards(together, SMALL, 7, [1, 2, 3], fmt)  # type: ignore[arg-type]

    # Shard 3 in a separate process, then 1 and 2 in separate calls.
    command = [
        sys.executable, "-m", "track_denoiser.cli", "-q", "generate",
        "-n", "1", "--first-index", "3", "--seed", "7", "--events-per-shard", "30",
        "--root", str(apart), "--format", fmt,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    generate_shards(apart, SMALL, 7, [1], fmt)  # type: ignore[arg-type]
    generate_shards(apart, SMALL, 7, [2], fmt)  # type: ignore[arg-type]

    assert _file_bytes(together) == _file_bytes(apart)


def test_different_seeds_differ(tmp_path: Path) -> None:
    generate_shards(tmp_path / "a", SMALL, 7, [0], "npy")
    generate_shards(tmp_path / "b", SMALL, 8, [0], "npy")
    noisy = "data/simulated/noisy/0.npy"
    assert (tmp_path / "a" / noisy).read_bytes() != (tmp_path / "b" / noisy).read_bytes()


def test_shard_indices_differ() -> None:
    first = generate_shard_events(SMALL, 7, 0)
    second = generate_shard_events(SMALL, 7, 1)
    assert not np.array_equal(first.indices, second.indices)


def test_denoising_and_labeling_streams_differ(tmp_path: Path) -> None:
    denoising = shard_rng(7, 0, "denoising").random(8)
    labeling = shard_rng(7, 0, "labeling").random(8)
    assert not np.array_equal(denoising, labeling)

    # The labeling shard's events with a track are not the denoising shard's tracks.
    labeled = generate_shard_events(GeneratorSettings(mode="labeling", events_per_shard=30), 7, 0)
    plain = generate_shard_events(SMALL, 7, 0)
    first_labeled = int(np.flatnonzero(labeled.labels == 1)[0])

    def track_voxels(events, i):
        part = slice(events.offsets[i], events.offsets[i + 1])
        return events.indices[part][events.track[part]]

    assert not np.array_equal(track_voxels(labeled, first_labeled), track_voxels(plain, 0))


def test_generated_shard_reads_back(data_root: Path) -> None:
    generate_shards(data_root, SMALL, 7, [0], "npy")
    events = read_shard(data_root, "denoising", 0, "npy")
    expected = generate_events(shard_rng(7, 0), 30, SMALL)
    assert np.array_equal(events.noisy_dense(), expected.noisy_dense())
    assert np.array_equal(events.clean_dense(), expected.clean_dense())
