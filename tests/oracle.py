"""Per-event loop implementation of the synthetic event model, a test oracle.

This is a deliberately plain rewrite of the event model (one straight track
with Landau amplitudes per event, then synthetic Gamma noise waveforms or a
measured noise-only event with swapped pads). It draws one event at a time,
steps each track voxel by voxel with Python's ``round`` and writes noise pad
by pad. It shares no code with ``track_denoiser.generator``, only the
constants, so the statistical tests compare two independent implementations.

Every knob the tests perturb to show that the comparison can fail is a field
of ``OracleModel``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from track_denoiser import constants as c

__all__ = [
    "MeasuredNoisePool",
    "OracleEvent",
    "OracleModel",
    "draw_direction",
    "draw_entry",
    "generate_event",
    "generate_events",
    "landau",
    "trace_track",
]

# Validity counter in twentieths of a pad: a float sum of sixty 0.05 steps is
# 2.9999999999999973, which would fail "reaches 3" although it is 3 exactly.
XY_TWENTIETHS = 20
Z_TWENTIETHS = 1
VALID_TWENTIETHS = 60

# Low and high face of each axis for track entries: x = 0 / 11, y = 0 / 13, z = 50 / 170.
LOW_FACE = (0, 0, c.TRACK_Z_MIN)
HIGH_FACE = (c.N_X - 1, c.N_Y - 1, c.TRACK_Z_MAX)

Voxel = tuple[int, int, int]


@dataclass(frozen=True)
class OracleModel:
    """Parameters of the oracle; the defaults are the documented model.

    Attributes:
        mode: "denoising" (every event has a track) or "labeling" (a track
            with probability ``track_probability``).
        noise: 0 synthetic, 1 measured, 2 one of the two at random (1:1).
        entry: "paper" (face of the largest signed component, low side) or
            "all-faces" (face of the largest absolute component, entry side).
        noise_length_mean: mean of the Poisson waveform length.
        valid_twentieths: validity threshold in twentieths of a pad.
        track_probability: share of labeling events with a track.
        background_scale: measured noise is divided by this before it is added.
        accumulate_swaps: pad swaps of a cached background event persist.
    """

    mode: str = "denoising"
    noise: int = 0
    entry: str = "paper"
    noise_length_mean: float = c.NOISE_LENGTH_MEAN
    valid_twentieths: int = VALID_TWENTIETHS
    track_probability: float = c.LABEL_TRACK_PROBABILITY
    background_scale: float = c.SATURATION_ADC
    accumulate_swaps: bool = False


@dataclass
class OracleEvent:
    """One oracle event: float16 noisy and clean arrays (12, 14, 208) and the label."""

    noisy: npt.NDArray[np.float16]
    clean: npt.NDArray[np.float16]
    has_track: bool
    measured_noise: bool


class MeasuredNoisePool:
    """The first 100 noise-only text events of a folder (numeric file order), as dense arrays.

    When the model accumulates swaps, these arrays are the cached events that
    the swaps modify in place.
    """

    def __init__(self, folder: Path) -> None:
        names = [p for p in Path(folder).iterdir() if re.fullmatch(r"track\d+\.txt", p.name)]
        names.sort(key=lambda p: int(p.name[len("track") : -len(".txt")]))
        self.paths = names[: c.BACKGROUND_POOL_SIZE]
        self.events = [self._read(path) for path in self.paths]

    @staticmethod
    def _read(path: Path) -> npt.NDArray[np.float64]:
        event = np.zeros(c.EVENT_SHAPE)
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            x, y, z, amplitude = line.split(",")
            event[int(x), int(y), int(z)] = float(amplitude)
        return event


def draw_direction(rng: np.random.Generator) -> tuple[float, float, float]:
    """Draw a direction uniform on the unit sphere from three standard normals."""
    a = float(rng.standard_normal())
    b = float(rng.standard_normal())
    d = float(rng.standard_normal())
    norm = math.sqrt(a * a + b * b + d * d)
    return (a / norm, b / norm, d / norm)


def draw_entry(
    rng: np.random.Generator, direction: tuple[float, float, float], entry: str
) -> Voxel:
    """Draw an entry voxel on the face that the entry rule picks for ``direction``."""
    point = [
        int(rng.integers(0, c.N_X)),
        int(rng.integers(0, c.N_Y)),
        int(rng.integers(c.TRACK_Z_MIN, c.TRACK_Z_MAX)),
    ]
    if entry == "paper":
        axis = max(range(3), key=lambda i: direction[i])
        point[axis] = LOW_FACE[axis]
    elif entry == "all-faces":
        axis = max(range(3), key=lambda i: abs(direction[i]))
        point[axis] = LOW_FACE[axis] if direction[axis] > 0 else HIGH_FACE[axis]
    else:
        raise ValueError(f"unknown entry rule {entry!r}")
    return (point[0], point[1], point[2])


def _inside_track_region(voxel: Voxel) -> bool:
    x, y, z = voxel
    return 0 <= x < c.N_X and 0 <= y < c.N_Y and c.TRACK_Z_MIN <= z <= c.TRACK_Z_MAX


def trace_track(
    start: tuple[float, float, float], direction: tuple[float, float, float]
) -> tuple[list[Voxel], int]:
    """Step a track from ``start`` until it leaves the track region.

    Returns:
        The filled voxels in stepping order (the entry voxel is not filled)
        and the validity counter in twentieths of a pad.
    """
    position = [float(start[0]), float(start[1]), float(start[2])]
    step = [direction[i] * c.TRACK_STEP[i] for i in range(3)]
    previous = (round(position[0]), round(position[1]), round(position[2]))
    filled: list[Voxel] = []
    counter = 0
    for _ in range(100_000):
        for i in range(3):
            position[i] = position[i] + step[i]
        voxel = (round(position[0]), round(position[1]), round(position[2]))
        if voxel == previous:
            continue
        if not _inside_track_region(voxel):
            return filled, counter
        filled.append(voxel)
        if voxel[0] != previous[0] or voxel[1] != previous[1]:
            counter += XY_TWENTIETHS
        if voxel[2] != previous[2]:
            counter += Z_TWENTIETHS
        previous = voxel
    raise RuntimeError(f"track from {start} along {direction} never left the region")


def _landau_density(x: float) -> float:
    return math.exp(-(x + math.exp(-x)) / 2.0) / math.sqrt(2.0 * math.pi)


def landau(rng: np.random.Generator) -> float:
    """Draw one Landau amplitude in [0, 1] by rejection, one candidate at a time."""
    low = (0.0 - c.LANDAU_OFFSET) / c.LANDAU_SIGMA
    high = (1.0 - c.LANDAU_OFFSET) / c.LANDAU_SIGMA
    peak = _landau_density(0.0)
    while True:
        x = float(rng.uniform(low, high))
        if float(rng.uniform(0.0, peak)) < _landau_density(x):
            return min(max(c.LANDAU_SIGMA * x + c.LANDAU_OFFSET, 0.0), 1.0)


def _draw_valid_track(rng: np.random.Generator, model: OracleModel) -> list[Voxel]:
    while True:
        direction = draw_direction(rng)
        start = draw_entry(rng, direction, model.entry)
        voxels, counter = trace_track(start, direction)
        if counter >= model.valid_twentieths:
            return voxels


def _add_synthetic_noise(
    rng: np.random.Generator, noisy: npt.NDArray[np.float64], model: OracleModel
) -> None:
    for x in range(c.N_X):
        for y in range(c.N_Y):
            n_waveforms = int(rng.binomial(c.N_Z, c.NOISE_WAVEFORM_PROBABILITY))
            for _ in range(n_waveforms):
                z0 = int(rng.integers(0, c.N_Z))
                length = int(rng.poisson(model.noise_length_mean))
                for z in range(z0, min(z0 + length, c.N_Z - 1) + 1):
                    amplitude = float(rng.gamma(c.GAMMA_SHAPE, c.GAMMA_SCALE))
                    noisy[x, y, z] = min(max(amplitude, 0.0), 1.0)


def _add_measured_noise(
    rng: np.random.Generator,
    noisy: npt.NDArray[np.float64],
    model: OracleModel,
    pool: MeasuredNoisePool,
) -> None:
    chosen = int(rng.integers(0, len(pool.events)))
    background = pool.events[chosen] if model.accumulate_swaps else pool.events[chosen].copy()
    for _ in range(c.N_PAD_SWAPS):
        x1 = int(rng.integers(0, c.N_X))
        y1 = int(rng.integers(0, c.N_Y))
        x2 = int(rng.integers(0, c.N_X))
        y2 = int(rng.integers(0, c.N_Y))
        first = background[x1, y1, :].copy()
        background[x1, y1, :] = background[x2, y2, :]
        background[x2, y2, :] = first
    noisy += background / model.background_scale


def generate_event(
    rng: np.random.Generator, model: OracleModel, pool: MeasuredNoisePool | None = None
) -> OracleEvent:
    """Generate one event: a track (always in denoising mode), then noise."""
    noisy = np.zeros(c.EVENT_SHAPE)
    clean = np.zeros(c.EVENT_SHAPE)

    # Denoising events always hold a track; labeling events with probability 1/2.
    has_track = model.mode != "labeling" or bool(rng.random() < model.track_probability)
    if has_track:
        for voxel in _draw_valid_track(rng, model):
            noisy[voxel] = landau(rng)
            clean[voxel] = 1.0

    if model.noise == 0:
        measured = False
    elif model.noise == 1:
        measured = True
    else:
        measured = bool(rng.random() < 0.5)
    if measured:
        if pool is None:
            raise ValueError("measured noise needs a MeasuredNoisePool")
        _add_measured_noise(rng, noisy, model, pool)
    else:
        _add_synthetic_noise(rng, noisy, model)

    return OracleEvent(
        noisy=noisy.astype(np.float16),
        clean=clean.astype(np.float16),
        has_track=has_track,
        measured_noise=measured,
    )


def generate_events(
    seed: int, n_events: int, model: OracleModel, pool: MeasuredNoisePool | None = None
) -> Iterator[OracleEvent]:
    """Yield ``n_events`` events drawn from one random generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(n_events):
        yield generate_event(rng, model, pool)
