"""Vectorised generator of synthetic TPC events.

The event model follows M. Gajdoš et al., Computer Physics Communications
(2025), doi:10.1016/j.cpc.2025.109608: one straight track per event with
Landau amplitudes, then noise, either synthetic waveforms with Gamma
amplitudes or a measured noise-only event with shuffled pads.

Every random draw of a shard comes from one ``numpy.random.Generator`` seeded
by ``SeedSequence(base_seed, spawn_key=(mode number, shard_index))``. A
shard's bytes therefore depend only on the settings, the base seed and the
shard index. They never depend on the order in which shards are generated or
on how many run in parallel.

Events are built in a sparse form (flat voxel index and amplitude per nonzero
voxel) and only densified when a dense shard is written.

Choices where the reference implementation behaves oddly (all documented in
the README):

- ``entry="paper"`` (default) reproduces the reference's track entry: the
  entry face is the one of the largest *signed* direction component, always
  on the low side (x = 0, y = 0 or z = 50). Most tracks whose direction
  points out of that face leave at once and are redrawn. The few that run
  nearly parallel to the face pass the validity rule (about 3.6 % of
  accepted tracks). ``entry="all-faces"`` picks the face of the largest
  absolute component, on the side the track enters from.
- Measured noise: pad swaps start afresh for every event unless
  ``accumulate_swaps`` is set. The reference swaps its cached background in
  place, so its swaps pile up from event to event within a run. With the
  flag they pile up within a shard. The background is divided by
  ``background_scale`` before it is added: 800 (the saturation amplitude in
  ADC counts) by default, while 1 reproduces the reference's unscaled
  addition.
- The track validity counter is kept in integer units (20 per x/y change,
  1 per z change, 60 needed), so 60 z changes count exactly as 3 pads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import constants as c
from .events import list_event_files, read_event

__all__ = [
    "Background",
    "GeneratorSettings",
    "SparseEvents",
    "TrackBatch",
    "generate_events",
    "generate_shard_events",
    "load_background",
    "sample_directions",
    "sample_entries",
    "sample_landau",
    "shard_rng",
    "trace_tracks",
]

log = logging.getLogger(__name__)

Mode = Literal["denoising", "labeling"]
Entry = Literal["paper", "all-faces"]

# A track leaves the box within 140 * sqrt(3) < 243 steps (the slowest axis,
# y, spans 14 voxels at 0.1 voxel per step along a component of at least
# 1/sqrt(3)); 256 steps is a safe bound.
_MAX_STEPS = 256
# Steps traced at once; most tracks leave within a few blocks.
_STEP_BLOCK = 32

_LOW = np.array([0.0, 0.0, c.TRACK_Z_MIN])
_HIGH = np.array([c.N_X - 1.0, c.N_Y - 1.0, float(c.TRACK_Z_MAX)])
_STEP = np.array(c.TRACK_STEP)


@dataclass(frozen=True)
class GeneratorSettings:
    """Settings that, with a base seed and a shard index, fix a shard's bytes.

    Attributes:
        mode: ``"denoising"`` (clean target per voxel) or ``"labeling"``
            (one label per event, a track in half of the events).
        noise: 0 synthetic noise, 1 measured noise, 2 one of the two at random
            (1:1) per event.
        entry: track entry rule, ``"paper"`` or ``"all-faces"``.
        events_per_shard: events in one shard.
        background_scale: measured noise is divided by this before it is
            added (ADC counts per unit amplitude); 1.0 adds it unscaled.
        accumulate_swaps: let pad swaps of a measured noise event pile up
            from event to event within a shard, as the reference does.
    """

    mode: Mode = "denoising"
    noise: int = 0
    entry: Entry = "paper"
    events_per_shard: int = c.EVENTS_PER_SHARD
    background_scale: float = c.SATURATION_ADC
    accumulate_swaps: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("denoising", "labeling"):
            msg = f"generator mode {self.mode!r} is invalid; expected 'denoising' or 'labeling'"
            raise ValueError(msg)
        if self.noise not in (0, 1, 2):
            msg = f"noise mode {self.noise!r} is invalid; expected 0 (synthetic), 1 (measured) or 2 (mixed)"
            raise ValueError(msg)
        if self.entry not in ("paper", "all-faces"):
            msg = f"track entry {self.entry!r} is invalid; expected 'paper' or 'all-faces'"
            raise ValueError(msg)
        if int(self.events_per_shard) < 1:
            msg = (
                f"events per shard {self.events_per_shard} is invalid; expected a positive integer"
            )
            raise ValueError(msg)
        if not self.background_scale > 0:
            msg = f"background scale {self.background_scale} is invalid; expected a positive number"
            raise ValueError(msg)

    @property
    def needs_background(self) -> bool:
        """Whether this noise mode draws measured noise events."""
        return self.noise in (1, 2)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-compatible values."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Background:
    """Measured noise-only events in sparse form, the pool for measured noise.

    Attributes:
        pad: int64 (n,) pad index ``x * 14 + y`` of each nonzero voxel.
        z: int64 (n,) time bin of each nonzero voxel.
        value: float64 (n,) amplitude in ADC counts.
        offsets: int64 (n_events + 1,) start of each event in the arrays above.
        source: the folder the events were read from.
    """

    pad: npt.NDArray[np.int64]
    z: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]
    source: str = ""

    @property
    def n_events(self) -> int:
        """Number of background events in the pool."""
        return len(self.offsets) - 1


@dataclass(frozen=True)
class TrackBatch:
    """Traced tracks in sparse form.

    Attributes:
        track: int64 (n,) index of the track each voxel belongs to.
        voxel: int64 (n, 3) x, y, z of each filled voxel, in tracking order.
        valid: bool (n_tracks,) whether the track passed the validity rule.
    """

    track: npt.NDArray[np.int64]
    voxel: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SparseEvents:
    """A block of events stored as their nonzero voxels.

    Attributes:
        offsets: int64 (n_events + 1,); event i owns entries
            ``offsets[i]:offsets[i + 1]``.
        indices: uint16 (n,) flat voxel index in C order of (12, 14, 208),
            increasing within an event.
        values: float16 (n,) noisy amplitude. Every nonzero voxel of the noisy
            event is stored. Track voxels are stored too, even where noise
            replaced their amplitude by a value that is zero in float16.
        track: bool (n,) whether the voxel belongs to the track (clean target
            1). Labeling shards on disk have no per-voxel target, so events
            read from them have no track voxels.
        labels: float16 (n_events,) 1 for an event with a track, 0 without.
    """

    offsets: npt.NDArray[np.int64]
    indices: npt.NDArray[np.uint16]
    values: npt.NDArray[np.float16]
    track: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.float16] = field(default_factory=lambda: np.zeros(0, dtype=np.float16))

    @property
    def n_events(self) -> int:
        """Number of events."""
        return len(self.offsets) - 1

    def without_target(self) -> SparseEvents:
        """Return the events with the per-voxel target dropped.

        Only the nonzero noisy voxels remain, which is all a dense labeling
        shard holds; the labels are kept.
        """
        keep = self.values != 0
        counts = np.bincount(self.event_ids()[keep], minlength=self.n_events)
        offsets = np.zeros(self.n_events + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return SparseEvents(
            offsets=offsets,
            indices=self.indices[keep],
            values=self.values[keep],
            track=np.zeros(int(keep.sum()), dtype=bool),
            labels=self.labels,
        )

    def event_ids(self) -> npt.NDArray[np.int64]:
        """Return the event index of every stored voxel, int64 (n,)."""
        return np.repeat(np.arange(self.n_events, dtype=np.int64), np.diff(self.offsets))

    def noisy_dense(self) -> npt.NDArray[np.float16]:
        """Return the noisy events as float16 (n_events, 12, 14, 208)."""
        dense = np.zeros((self.n_events, c.N_VOXELS), dtype=np.float16)
        dense[self.event_ids(), self.indices] = self.values
        return dense.reshape(self.n_events, *c.EVENT_SHAPE)

    def clean_dense(self) -> npt.NDArray[np.float16]:
        """Return the clean targets as float16 (n_events, 12, 14, 208), 1 on track voxels."""
        dense = np.zeros((self.n_events, c.N_VOXELS), dtype=np.float16)
        keep = self.track
        dense[self.event_ids()[keep], self.indices[keep]] = 1.0
        return dense.reshape(self.n_events, *c.EVENT_SHAPE)


_MODE_KEYS = {"denoising": 0, "labeling": 1}


def shard_rng(base_seed: int, shard_index: int, mode: str = "denoising") -> np.random.Generator:
    """Return the random generator of one shard.

    The stream depends only on ``(base_seed, mode, shard_index)``. It is the
    child of ``SeedSequence(base_seed)`` with spawn key ``(mode number,
    shard_index)`` (denoising 0, labeling 1). Shards can thus be generated in
    any order, and denoising and labeling shards of the same index draw
    independent streams.
    """
    if base_seed < 0 or shard_index < 0:
        msg = f"seed {base_seed} and shard index {shard_index} must be non-negative integers"
        raise ValueError(msg)
    sequence = np.random.SeedSequence(entropy=base_seed, spawn_key=(_MODE_KEYS[mode], shard_index))
    return np.random.Generator(np.random.PCG64(sequence))


# ---------------------------------------------------------------------------
# Track model


def sample_landau(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Draw ``n`` Landau amplitudes in [0, 1] by rejection sampling.

    x is drawn uniformly on the interval that ``sigma * x + offset`` maps to
    [0, 1] and accepted with probability f(x) / f(0), where
    f(x) = exp(-(x + exp(-x)) / 2) / sqrt(2 pi) peaks at x = 0. The mode of
    the amplitude is therefore ``offset`` (about 0.105).

    Returns:
        float64 array of shape (n,).
    """
    low = (0.0 - c.LANDAU_OFFSET) / c.LANDAU_SIGMA
    high = (1.0 - c.LANDAU_OFFSET) / c.LANDAU_SIGMA
    f_max = np.exp(-0.5)  # f(0) * sqrt(2 pi); the constant cancels in the ratio
    out = np.empty(n, dtype=np.float64)
    filled = 0
    while filled < n:
        # Acceptance is about 1/8.2 on this interval; draw a little more than needed.
        batch = max(64, int((n - filled) * 9))
        x = rng.uniform(low, high, batch)
        u = rng.uniform(0.0, f_max, batch)
        accepted = x[u < np.exp(-0.5 * (x + np.exp(-x)))]
        take = min(len(accepted), n - filled)
        out[filled : filled + take] = accepted[:take]
        filled += take
    return np.clip(c.LANDAU_SIGMA * out + c.LANDAU_OFFSET, 0.0, 1.0)


def sample_directions(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Draw ``n`` directions uniform on the unit sphere, float64 (n, 3)."""
    d = rng.standard_normal((n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def sample_entries(
    rng: np.random.Generator, directions: npt.NDArray[np.float64], entry: Entry
) -> npt.NDArray[np.float64]:
    """Draw an entry voxel on a face of the track region for each direction.

    The two coordinates along the face are uniform integers: x in [0, 12),
    y in [0, 14), z in [50, 170). The third is fixed by the face.

    Args:
        directions: float64 (n, 3) unit vectors.
        entry: ``"paper"``: face of the largest signed component, low side;
            ``"all-faces"``: face of the largest absolute component, on the
            side the direction enters from.

    Returns:
        float64 (n, 3) entry coordinates in voxels (integers).
    """
    n = len(directions)
    start = np.column_stack(
        [
            rng.integers(0, c.N_X, n),
            rng.integers(0, c.N_Y, n),
            rng.integers(c.TRACK_Z_MIN, c.TRACK_Z_MAX, n),
        ]
    ).astype(np.float64)
    rows = np.arange(n)
    if entry == "paper":
        axis = np.argmax(directions, axis=1)
        start[rows, axis] = _LOW[axis]
    else:
        axis = np.argmax(np.abs(directions), axis=1)
        forward = directions[rows, axis] > 0
        start[rows, axis] = np.where(forward, _LOW[axis], _HIGH[axis])
    return start


def trace_tracks(
    starts: npt.NDArray[np.float64], directions: npt.NDArray[np.float64]
) -> TrackBatch:
    """Step tracks through the track region and apply the validity rule.

    Each step adds ``direction * (0.1, 0.1, 1.0)`` to the position and rounds
    it to the nearest voxel (half to even). When the voxel changes, the track
    stops if the voxel lies outside x in [0, 12), y in [0, 14), z in [50, 170];
    otherwise the voxel is filled. The entry voxel is not filled. A track is
    valid when its filled steps reach 3 validity units (1 per x or y change,
    0.05 per z change).

    Args:
        starts: float64 (n, 3) entry coordinates.
        directions: float64 (n, 3) unit vectors.
    """
    n = len(starts)
    step = directions * _STEP
    position = starts.astype(np.float64, copy=True)
    voxel = np.rint(position)
    units = np.zeros(n, dtype=np.int64)
    alive = np.arange(n)
    tracks: list[npt.NDArray[np.int64]] = []
    voxels: list[npt.NDArray[np.float64]] = []
    order: list[npt.NDArray[np.int64]] = []
    done_steps = 0

    # Trace in blocks of steps; only tracks still inside go on to the next block.
    while len(alive):
        if done_steps >= _MAX_STEPS:
            msg = "a track did not leave the track region within the step limit; this is a bug"
            raise RuntimeError(msg)
        block = _STEP_BLOCK
        increments = np.broadcast_to(step[alive][:, None, :], (len(alive), block, 3))
        # cumsum adds step after step: the same float operations as a loop.
        path = np.cumsum(np.concatenate([position[alive][:, None, :], increments], axis=1), axis=1)
        rounded = np.rint(path)  # (m, block + 1, 3); column 0 is the current voxel
        rounded[:, 0] = voxel[alive]
        moved = rounded[:, 1:] != rounded[:, :-1]
        changed = moved.any(axis=2)
        current = rounded[:, 1:]
        outside = ((current < _LOW) | (current > _HIGH)).any(axis=2)
        leaving = changed & outside
        left = leaving.any(axis=1)
        stop = np.where(left, np.argmax(leaving, axis=1), block)
        filled = changed & (np.arange(block)[None, :] < stop[:, None])

        units[alive] += c.TRACK_VALIDITY_XY_UNITS * ((moved[..., 0] | moved[..., 1]) & filled).sum(
            axis=1
        ) + c.TRACK_VALIDITY_Z_UNITS * (moved[..., 2] & filled).sum(axis=1)
        row, column = np.nonzero(filled)
        tracks.append(alive[row])
        voxels.append(current[row, column])
        order.append(done_steps + column)

        position[alive] = path[:, -1]
        voxel[alive] = rounded[:, -1]
        alive = alive[~left]
        done_steps += block

    track = np.concatenate(tracks)
    step_number = np.concatenate(order)
    sort = np.lexsort((step_number, track))
    return TrackBatch(
        track=track[sort].astype(np.int64),
        voxel=np.concatenate(voxels)[sort].astype(np.int64),
        valid=units >= c.TRACK_VALIDITY_THRESHOLD_UNITS,
    )


def _generate_tracks(
    rng: np.random.Generator, n_tracks: int, entry: Entry
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Draw ``n_tracks`` valid tracks, redrawing rejected ones.

    Returns:
        ``(track, flat)``: int64 arrays with the track number (0..n_tracks-1)
        and the flat voxel index of every filled voxel.
    """
    tracks: list[npt.NDArray[np.int64]] = []
    flats: list[npt.NDArray[np.int64]] = []
    found = 0
    while found < n_tracks:
        # About 75 % of paper-entry candidates (86 % for all faces) are valid.
        n_candidates = 32 + int(1.4 * (n_tracks - found))
        directions = sample_directions(rng, n_candidates)
        starts = sample_entries(rng, directions, entry)
        batch = trace_tracks(starts, directions)

        valid_ids = np.flatnonzero(batch.valid)[: n_tracks - found]
        renumber = np.full(n_candidates, -1, dtype=np.int64)
        renumber[valid_ids] = found + np.arange(len(valid_ids))
        new_track = renumber[batch.track]
        keep = new_track >= 0
        v = batch.voxel[keep]
        tracks.append(new_track[keep])
        flats.append(
            np.ravel_multi_index((v[:, 0], v[:, 1], v[:, 2]), c.EVENT_SHAPE).astype(np.int64)
        )
        found += len(valid_ids)
    if not tracks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(tracks), np.concatenate(flats)


# ---------------------------------------------------------------------------
# Noise model


def _synthetic_noise(
    rng: np.random.Generator, n_events: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Draw synthetic noise waveforms for ``n_events`` events.

    Per pad the number of waveforms is Binomial(208, 0.0005); a waveform
    starts at z0 uniform in [0, 208), has length L ~ Poisson(6) and covers
    z0 ... min(z0 + L, 207). Each covered voxel gets a Gamma amplitude
    clipped to [0, 1].

    Returns:
        ``(event, flat, value)`` per covered voxel, in the order in which a
        voxel-by-voxel loop would write them (pads in C order, waveforms in
        draw order), so a later entry overwrites an earlier one.
    """
    n_pads = c.N_X * c.N_Y
    counts = rng.binomial(c.N_Z, c.NOISE_WAVEFORM_PROBABILITY, size=n_events * n_pads)
    n_waveforms = int(counts.sum())
    pad_of_waveform = np.repeat(np.arange(n_events * n_pads, dtype=np.int64), counts)
    z0 = rng.integers(0, c.N_Z, n_waveforms)
    length = rng.poisson(c.NOISE_LENGTH_MEAN, n_waveforms)
    end = np.minimum(z0 + length, c.N_Z - 1)
    n_covered = end - z0 + 1

    # Expand every waveform into its voxels: z runs from z0 upwards.
    waveform_of_voxel = np.repeat(np.arange(n_waveforms), n_covered)
    first_voxel = np.cumsum(n_covered) - n_covered
    z = z0[waveform_of_voxel] + (np.arange(len(waveform_of_voxel)) - first_voxel[waveform_of_voxel])
    global_pad = pad_of_waveform[waveform_of_voxel]
    event = global_pad // n_pads
    flat = (global_pad % n_pads) * c.N_Z + z
    value = np.clip(rng.gamma(c.GAMMA_SHAPE, c.GAMMA_SCALE, len(z)), 0.0, 1.0)
    return event, flat, value


def load_background(folder: str | os.PathLike[str]) -> Background:
    """Read the first 100 measured noise-only events of a folder (natural order).

    Raises:
        FileNotFoundError: the folder is missing or contains no ``track<N>.txt``
            file; the message names the events that measured noise needs.
    """
    folder = Path(folder)
    hint = (
        "noise modes 1 and 2 add measured noise and need noise-only events "
        f"(track<N>.txt) in {folder}; add them, or use noise mode 0 (synthetic)"
    )
    if not folder.is_dir():
        msg = f"measured noise folder {folder} does not exist: {hint}"
        raise FileNotFoundError(msg)
    paths = list_event_files(folder)[: c.BACKGROUND_POOL_SIZE]
    if not paths:
        msg = f"measured noise folder {folder} holds no event files: {hint}"
        raise FileNotFoundError(msg)
    pads, zs, values, offsets = [], [], [], [0]
    for path in paths:
        event = read_event(path)
        x, y, z = np.nonzero(event)
        pads.append((x * c.N_Y + y).astype(np.int64))
        zs.append(z.astype(np.int64))
        values.append(event[x, y, z].astype(np.float64))
        offsets.append(offsets[-1] + len(z))
    return Background(
        pad=np.concatenate(pads),
        z=np.concatenate(zs),
        value=np.concatenate(values),
        offsets=np.asarray(offsets, dtype=np.int64),
        source=str(folder),
    )


def _swap_permutations(
    rng: np.random.Generator, choice: npt.NDArray[np.int64], n_background: int, accumulate: bool
) -> npt.NDArray[np.int64]:
    """Return, per measured-noise event, where each pad's content comes from.

    ``perm[i, q] = p`` means pad q of event i shows pad p of the background.
    Fifty pairs of pads are swapped one after the other.
    """
    n_pads = c.N_X * c.N_Y
    n = len(choice)
    first = rng.integers(0, n_pads, size=(n, c.N_PAD_SWAPS))
    second = rng.integers(0, n_pads, size=(n, c.N_PAD_SWAPS))
    rows = np.arange(n)
    if not accumulate:
        perm = np.tile(np.arange(n_pads, dtype=np.int64), (n, 1))
        for s in range(c.N_PAD_SWAPS):
            a, b = first[:, s], second[:, s]
            pa = perm[rows, a].copy()
            perm[rows, a] = perm[rows, b]
            perm[rows, b] = pa
        return perm

    # Reference behaviour: each cached background keeps its swapped state.
    state = np.tile(np.arange(n_pads, dtype=np.int64), (n_background, 1))
    perm = np.empty((n, n_pads), dtype=np.int64)
    for i in range(n):
        current = state[choice[i]]
        for s in range(c.N_PAD_SWAPS):
            a, b = first[i, s], second[i, s]
            current[a], current[b] = current[b], current[a]
        perm[i] = current
    return perm


def _measured_noise(
    rng: np.random.Generator,
    events: npt.NDArray[np.int64],
    background: Background,
    scale: float,
    accumulate: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Draw one pad-shuffled background event for each event in ``events``.

    Returns:
        ``(event, flat, value)`` of the background voxels to add, values
        divided by ``scale``.
    """
    n_pads = c.N_X * c.N_Y
    choice = rng.integers(0, background.n_events, len(events))
    perm = _swap_permutations(rng, choice, background.n_events, accumulate)

    # inverse[i, p] = pad where background pad p lands in event i.
    inverse = np.empty_like(perm)
    np.put_along_axis(inverse, perm, np.arange(n_pads)[None, :], axis=1)

    sizes = background.offsets[choice + 1] - background.offsets[choice]
    row = np.repeat(np.arange(len(events)), sizes)
    first = np.cumsum(sizes) - sizes
    source = background.offsets[choice][row] + (np.arange(len(row)) - first[row])
    new_pad = inverse[row, background.pad[source]]
    flat = new_pad * c.N_Z + background.z[source]
    return events[row], flat, background.value[source] / scale


# ---------------------------------------------------------------------------
# Events


def _last_per_key(
    keys: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Keep the last value written to each key; return keys sorted."""
    reversed_keys = keys[::-1]
    unique, first_in_reversed = np.unique(reversed_keys, return_index=True)
    return unique, values[::-1][first_in_reversed]


def _sum_per_key(
    keys: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Add up the values of equal keys; return keys sorted."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.float64)
    return unique, sums


def generate_events(
    rng: np.random.Generator,
    n_events: int,
    settings: GeneratorSettings,
    background: Background | None = None,
) -> SparseEvents:
    """Generate ``n_events`` synthetic events.

    Args:
        rng: the random generator; all draws come from it.
        n_events: number of events.
        settings: the generator settings.
        background: measured noise pool; required for noise modes 1 and 2.

    Returns:
        The events in sparse form.
    """
    if settings.needs_background and background is None:
        msg = f"noise mode {settings.noise} needs measured noise events; pass a Background"
        raise ValueError(msg)
    n_voxels = np.int64(c.N_VOXELS)

    # 1. Which events hold a track.
    if settings.mode == "labeling":
        has_track = rng.random(n_events) < c.LABEL_TRACK_PROBABILITY
    else:
        has_track = np.ones(n_events, dtype=bool)
    track_events = np.flatnonzero(has_track)

    # 2. Tracks with Landau amplitudes.
    track_number, track_flat = _generate_tracks(rng, len(track_events), settings.entry)
    track_keys = track_events[track_number] * n_voxels + track_flat
    track_values = sample_landau(rng, len(track_keys))

    # 3. Noise: synthetic overwrites, measured adds.
    if settings.noise == 0:
        measured = np.zeros(n_events, dtype=bool)
    elif settings.noise == 1:
        measured = np.ones(n_events, dtype=bool)
    else:
        measured = rng.random(n_events) < 0.5
    synthetic_events = np.flatnonzero(~measured)
    measured_events = np.flatnonzero(measured)

    event, flat, value = _synthetic_noise(rng, len(synthetic_events))
    noise_keys = synthetic_events[event] * n_voxels + flat
    keys, values = _last_per_key(
        np.concatenate([track_keys, noise_keys]), np.concatenate([track_values, value])
    )
    if len(measured_events) and background is not None:
        event, flat, value = _measured_noise(
            rng, measured_events, background, settings.background_scale, settings.accumulate_swaps
        )
        keys, values = _sum_per_key(
            np.concatenate([keys, event * n_voxels + flat]), np.concatenate([values, value])
        )

    # 4. Sparse form: nonzero float16 voxels plus every track voxel.
    values16 = values.astype(np.float16)
    if not len(track_keys):
        is_track = np.zeros(len(keys), dtype=bool)
    else:
        track_keys.sort()
        position = np.searchsorted(track_keys, keys)
        position[position == len(track_keys)] = 0
        is_track = track_keys[position] == keys
    keep = (values16 != 0) | is_track
    keys, values16, is_track = keys[keep], values16[keep], is_track[keep]
    event_of_key = keys // n_voxels
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(np.bincount(event_of_key, minlength=n_events), out=offsets[1:])
    return SparseEvents(
        offsets=offsets,
        indices=(keys % n_voxels).astype(np.uint16),
        values=values16,
        track=is_track,
        labels=has_track.astype(np.float16)
        if settings.mode == "labeling"
        else np.zeros(0, np.float16),
    )


def generate_shard_events(
    settings: GeneratorSettings,
    base_seed: int,
    shard_index: int,
    background: Background | None = None,
) -> SparseEvents:
    """Generate the events of one shard; the result depends only on the arguments."""
    rng = shard_rng(base_seed, shard_index, settings.mode)
    return generate_events(rng, settings.events_per_shard, settings, background)
