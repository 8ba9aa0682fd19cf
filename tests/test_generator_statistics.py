"""The vectorised generator against the per-event loop oracle, statistically.

Both implementations draw events at fixed seeds. Per-event statistics (track
voxels, pads, z extent, noise voxels) are compared with a two-sample
chi-square test on their histograms, and amplitudes with a two-sample
Kolmogorov-Smirnov test. A test fails when p < ALPHA. The sensitivity tests
at the end perturb the oracle (longer noise waveforms, the other entry rule,
a lower validity threshold, another track share, accumulated pad swaps). The
same comparisons reject each perturbed oracle, so a real deviation of the
generator would fail these tests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

import oracle
from track_denoiser import constants as c
from track_denoiser.generator import GeneratorSettings, generate_shard_events, load_background

ALPHA = 1e-3
SEED = 20250117
ORACLE_EVENTS = 3000
GENERATOR_EVENTS = 8000
CHUNK = 500

ENTRIES = ("paper", "all-faces")


# ---------------------------------------------------------------------------
# Per-event statistics from dense events


@dataclass
class Sample:
    """Statistics of a set of events; per-event arrays have one entry per event."""

    track_voxels: npt.NDArray[np.int64]
    track_pads: npt.NDArray[np.int64]
    z_extent: npt.NDArray[np.int64]
    noise_voxels: npt.NDArray[np.int64]
    has_track: npt.NDArray[np.bool_]
    fixed_pads: npt.NDArray[np.int64]
    background_amplitude: npt.NDArray[np.float64]
    track_amplitudes: npt.NDArray[np.float64]
    noise_amplitudes: npt.NDArray[np.float64]

    @property
    def n_events(self) -> int:
        return len(self.track_voxels)


# Pad number x * 14 + y of every voxel, and its time bin, for the pad-tagged backgrounds.
_PAD_NUMBER = (np.arange(c.N_X)[:, None] * c.N_Y + np.arange(c.N_Y)[None, :])[:, :, None]
_Z = np.arange(c.N_Z)[None, None, :]


def _summarize_chunk(noisy: npt.NDArray[np.float16], clean: npt.NDArray[np.float16]) -> dict:
    track = clean != 0
    noise = (noisy != 0) & ~track
    track_z = track.any(axis=(1, 2))
    has_track = track_z.any(axis=1)
    z_first = np.argmax(track_z, axis=1)
    z_last = c.N_Z - 1 - np.argmax(track_z[:, ::-1], axis=1)
    noise_values = np.where(noise, noisy, np.float16(0))
    return {
        "track_voxels": track.sum(axis=(1, 2, 3)),
        "track_pads": track.any(axis=3).sum(axis=(1, 2)),
        "z_extent": np.where(has_track, z_last - z_first + 1, 0),
        "noise_voxels": noise.sum(axis=(1, 2, 3)),
        "has_track": has_track,
        "fixed_pads": (noise & (_PAD_NUMBER == _Z)).sum(axis=(1, 2, 3)),
        "background_amplitude": noise_values.max(axis=(1, 2, 3)).astype(np.float64),
        "track_amplitudes": noisy[track].astype(np.float64),
        "noise_amplitudes": noisy[noise].astype(np.float64),
    }


def summarize(chunks: Iterable[tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]]) -> Sample:
    """Collect the statistics of chunks of dense (noisy, clean) events (n, 12, 14, 208)."""
    parts = [_summarize_chunk(noisy, clean) for noisy, clean in chunks]
    return Sample(**{key: np.concatenate([p[key] for p in parts]) for key in parts[0]})


def oracle_chunks(
    n_events: int, model: oracle.OracleModel, folder: str | None
) -> Iterable[tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]]:
    """Yield oracle events in chunks of CHUNK, like generator shards of CHUNK events.

    Accumulated pad swaps last for one shard in the generator, so each chunk
    starts from a freshly read background pool.
    """
    for index in range(n_events // CHUNK):
        pool = oracle.MeasuredNoisePool(Path(folder)) if folder else None
        events = list(oracle.generate_events(SEED + index, CHUNK, model, pool))
        yield np.stack([e.noisy for e in events]), np.stack([e.clean for e in events])


def generator_chunks(
    settings: GeneratorSettings, seed: int, n_events: int, background_folder: str | None
) -> Iterable[tuple[npt.NDArray[np.float16], npt.NDArray[np.float16]]]:
    background = load_background(background_folder) if background_folder else None
    chunk_settings = GeneratorSettings(**{**settings.to_dict(), "events_per_shard": CHUNK})
    for index in range(n_events // CHUNK):
        events = generate_shard_events(chunk_settings, seed, index, background)
        yield events.noisy_dense(), events.clean_dense()


@functools.cache
def oracle_sample(model: oracle.OracleModel, n_events: int, folder: str | None = None) -> Sample:
    return summarize(oracle_chunks(n_events, model, folder))


@functools.cache
def generator_sample(
    settings: GeneratorSettings, n_events: int, folder: str | None = None
) -> Sample:
    return summarize(generator_chunks(settings, SEED, n_events, folder))


# ---------------------------------------------------------------------------
# Two-sample tests


def chi2_two_sample(a: npt.ArrayLike, b: npt.ArrayLike, min_count: int = 20) -> float:
    """Return the p-value of a chi-square test that two integer samples share a distribution.

    Neighbouring values are merged into bins holding at least ``min_count``
    observations of both samples together, so that no expected count is tiny.
    """
    a, b = np.asarray(a), np.asarray(b)
    values = np.union1d(a, b)
    count_a = np.array([np.count_nonzero(a == v) for v in values])
    count_b = np.array([np.count_nonzero(b == v) for v in values])
    bins_a, bins_b, acc_a, acc_b = [], [], 0, 0
    for ca, cb in zip(count_a, count_b, strict=True):
        acc_a, acc_b = acc_a + ca, acc_b + cb
        if acc_a + acc_b >= min_count:
            bins_a.append(acc_a)
            bins_b.append(acc_b)
            acc_a, acc_b = 0, 0
    if bins_a:
        bins_a[-1] += acc_a
        bins_b[-1] += acc_b
    if len(bins_a) < 2:
        # A single bin contains everything, so the samples agree trivially.
        return 1.0
    return float(stats.chi2_contingency(np.array([bins_a, bins_b])).pvalue)


def ks_two_sample(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Return the p-value of a two-sample Kolmogorov-Smirnov test."""
    return float(stats.ks_2samp(a, b).pvalue)


def _settings(entry: str = "paper", **kwargs: object) -> GeneratorSettings:
    return GeneratorSettings(entry=entry, events_per_shard=CHUNK, **kwargs)  # type: ignore[arg-type]


def denoising_pair(entry: str) -> tuple[Sample, Sample]:
    generated = generator_sample(_settings(entry), GENERATOR_EVENTS)
    expected = oracle_sample(oracle.OracleModel(entry=entry), ORACLE_EVENTS)
    return generated, expected


# ---------------------------------------------------------------------------
# Denoising mode, synthetic noise, both entry rules


@pytest.mark.parametrize("entry", ENTRIES)
def test_track_voxels_per_event(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert generated.has_track.all()
    assert expected.has_track.all()
    assert chi2_two_sample(generated.track_voxels, expected.track_voxels) > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_pads_per_track(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert generated.track_pads.min() >= 1
    assert chi2_two_sample(generated.track_pads, expected.track_pads) > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_track_z_extent(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert generated.z_extent.max() <= c.TRACK_Z_MAX - c.TRACK_Z_MIN + 1
    assert chi2_two_sample(generated.z_extent, expected.z_extent) > ALPHA


def near_validity_threshold(sample: Sample) -> npt.NDArray[np.bool_]:
    """Flag tracks that barely pass the 3-pad validity rule.

    ``20 * pads + z extent`` follows the validity counter in twentieths of a
    pad (at least 60 for an accepted track). Below 80 it marks the short
    tracks whose share moves first when the threshold changes.
    """
    return 20 * sample.track_pads + sample.z_extent < 80


def share_p_value(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    """Return the p-value of Fisher's exact test that two flags have the same share."""
    table = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
    return float(stats.fisher_exact(table).pvalue)


@pytest.mark.parametrize("entry", ENTRIES)
def test_tracks_near_validity_threshold(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    near_generated = near_validity_threshold(generated)
    assert near_generated.any()
    assert share_p_value(near_generated, near_validity_threshold(expected)) > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_noise_voxels_per_event(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert chi2_two_sample(generated.noise_voxels, expected.noise_voxels) > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_track_amplitudes(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert generated.track_amplitudes.min() >= 0.0
    assert generated.track_amplitudes.max() <= 1.0
    assert ks_two_sample(generated.track_amplitudes, expected.track_amplitudes) > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_noise_amplitudes(entry: str) -> None:
    generated, expected = denoising_pair(entry)
    assert generated.noise_amplitudes.min() > 0.0
    assert generated.noise_amplitudes.max() <= 1.0
    assert ks_two_sample(generated.noise_amplitudes, expected.noise_amplitudes) > ALPHA


# ---------------------------------------------------------------------------
# Labeling mode


LABELING_ORACLE_EVENTS = 2000
LABELING_GENERATOR_EVENTS = 6000


def labeling_pair(entry: str) -> tuple[Sample, Sample]:
    generated = generator_sample(_settings(entry, mode="labeling"), LABELING_GENERATOR_EVENTS)
    expected = oracle_sample(
        oracle.OracleModel(mode="labeling", entry=entry), LABELING_ORACLE_EVENTS
    )
    return generated, expected


@pytest.mark.parametrize("entry", ENTRIES)
def test_labeling_track_share(entry: str) -> None:
    generated, expected = labeling_pair(entry)
    n_generated = int(generated.has_track.sum())
    n_expected = int(expected.has_track.sum())
    assert stats.binomtest(n_generated, generated.n_events, 0.5).pvalue > ALPHA
    assert stats.binomtest(n_expected, expected.n_events, 0.5).pvalue > ALPHA
    table = [
        [n_generated, generated.n_events - n_generated],
        [n_expected, expected.n_events - n_expected],
    ]
    assert stats.chi2_contingency(table).pvalue > ALPHA


@pytest.mark.parametrize("entry", ENTRIES)
def test_labeling_track_voxels(entry: str) -> None:
    generated, expected = labeling_pair(entry)
    assert (generated.track_voxels[~generated.has_track] == 0).all()
    with_track = generated.track_voxels[generated.has_track]
    assert chi2_two_sample(with_track, expected.track_voxels[expected.has_track]) > ALPHA
    assert chi2_two_sample(generated.noise_voxels, expected.noise_voxels) > ALPHA


# ---------------------------------------------------------------------------
# Measured noise from fake pad-tagged background events


MEASURED_ORACLE_EVENTS = 1500
MEASURED_GENERATOR_EVENTS = 3000
# More files than the pool holds: only track0 ... track99 (numeric order) may be drawn.
N_BACKGROUND_FILES = 105
# Background event k has amplitude FIRST_AMPLITUDE + k; added unscaled it
# exceeds every synthetic amplitude (at most 1).
FIRST_AMPLITUDE = 10


@pytest.fixture(scope="module")
def background_folder(tmp_path_factory: pytest.TempPathFactory, write_backgrounds) -> str:
    folder = tmp_path_factory.mktemp("measured") / "data" / "x17" / "gauge_backgrounds"
    return str(write_backgrounds(folder, N_BACKGROUND_FILES, FIRST_AMPLITUDE))


def measured_pair(folder: str, noise: int, accumulate: bool) -> tuple[Sample, Sample]:
    settings = _settings(noise=noise, background_scale=1.0, accumulate_swaps=accumulate)
    model = oracle.OracleModel(noise=noise, background_scale=1.0, accumulate_swaps=accumulate)
    generated = generator_sample(settings, MEASURED_GENERATOR_EVENTS, folder)
    expected = oracle_sample(model, MEASURED_ORACLE_EVENTS, folder)
    return generated, expected


@pytest.mark.parametrize("accumulate", [False, True], ids=["fresh-swaps", "accumulated-swaps"])
def test_measured_noise_pad_swaps(background_folder: str, accumulate: bool) -> None:
    generated, expected = measured_pair(background_folder, 1, accumulate)

    # Every pad contains one background voxel unless a track voxel covers it.
    assert generated.noise_voxels.max() == c.N_X * c.N_Y
    assert chi2_two_sample(generated.noise_voxels, expected.noise_voxels) > ALPHA

    # Pads left in place by the swaps.
    assert chi2_two_sample(generated.fixed_pads, expected.fixed_pads) > ALPHA


def test_measured_noise_background_choice(background_folder: str) -> None:
    generated, expected = measured_pair(background_folder, 1, False)
    drawn = generated.background_amplitude.astype(np.int64) - FIRST_AMPLITUDE
    assert drawn.min() >= 0
    assert drawn.max() < c.BACKGROUND_POOL_SIZE
    assert stats.chisquare(np.bincount(drawn, minlength=c.BACKGROUND_POOL_SIZE)).pvalue > ALPHA
    expected_drawn = expected.background_amplitude.astype(np.int64) - FIRST_AMPLITUDE
    assert chi2_two_sample(drawn, expected_drawn) > ALPHA


def test_mixed_noise_share(background_folder: str) -> None:
    generated, expected = measured_pair(background_folder, 2, False)
    measured = generated.background_amplitude >= FIRST_AMPLITUDE
    assert stats.binomtest(int(measured.sum()), generated.n_events, 0.5).pvalue > ALPHA
    assert chi2_two_sample(generated.noise_voxels, expected.noise_voxels) > ALPHA
    assert chi2_two_sample(generated.fixed_pads, expected.fixed_pads) > ALPHA


# ---------------------------------------------------------------------------
# Sensitivity: the comparisons reject a perturbed oracle

PERTURBED_EVENTS = 1000


def test_flags_longer_noise_waveforms() -> None:
    generated = generator_sample(_settings("paper"), GENERATOR_EVENTS)
    perturbed = oracle_sample(oracle.OracleModel(noise_length_mean=7.0), PERTURBED_EVENTS)
    assert chi2_two_sample(generated.noise_voxels, perturbed.noise_voxels) < ALPHA


def test_flags_other_entry_rule() -> None:
    # The two entry rules give similar tracks; pads per track tell them apart.
    generated = generator_sample(_settings("paper"), GENERATOR_EVENTS)
    perturbed = oracle_sample(oracle.OracleModel(entry="all-faces"), 2 * PERTURBED_EVENTS)
    assert chi2_two_sample(generated.track_pads, perturbed.track_pads) < ALPHA


def test_flags_lower_validity_threshold() -> None:
    generated = generator_sample(_settings("paper"), GENERATOR_EVENTS)
    perturbed = oracle_sample(oracle.OracleModel(valid_twentieths=40), PERTURBED_EVENTS)
    assert chi2_two_sample(generated.track_pads, perturbed.track_pads) < ALPHA


def test_flags_slightly_lower_validity_threshold() -> None:
    # 2.75 pads in place of 3 changes little but the share of short tracks.
    generated = generator_sample(_settings("paper"), GENERATOR_EVENTS)
    perturbed = oracle_sample(oracle.OracleModel(valid_twentieths=55), PERTURBED_EVENTS)
    near = near_validity_threshold
    assert share_p_value(near(generated), near(perturbed)) < ALPHA


def test_flags_other_track_share() -> None:
    perturbed = oracle_sample(
        oracle.OracleModel(mode="labeling", track_probability=0.57), LABELING_ORACLE_EVENTS
    )
    n_tracks = int(perturbed.has_track.sum())
    assert stats.binomtest(n_tracks, perturbed.n_events, 0.5).pvalue < ALPHA


def test_flags_accumulated_swaps(background_folder: str) -> None:
    settings = _settings(noise=1, background_scale=1.0)
    generated = generator_sample(settings, MEASURED_GENERATOR_EVENTS, background_folder)
    perturbed = oracle_sample(
        oracle.OracleModel(noise=1, background_scale=1.0, accumulate_swaps=True),
        PERTURBED_EVENTS,
        background_folder,
    )
    assert chi2_two_sample(generated.fixed_pads, perturbed.fixed_pads) < ALPHA
