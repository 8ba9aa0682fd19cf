"""Detector geometry and the constants of the synthetic event model.

Every number comes from the synthetic event model of M. Gajdoš et al.,
Computer Physics Communications (2025), doi:10.1016/j.cpc.2025.109608.
Amplitudes of synthetic events are dimensionless, in [0, 1]; measured
amplitudes are raw ADC counts.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "BACKGROUND_POOL_SIZE",
    "CHIMNEY_MIN_NONZERO",
    "EVENTS_PER_SHARD",
    "EVENT_SHAPE",
    "GAMMA_SCALE",
    "GAMMA_SHAPE",
    "LABEL_TRACK_PROBABILITY",
    "LANDAU_MU",
    "LANDAU_OFFSET",
    "LANDAU_SIGMA",
    "NOISE_LENGTH_MEAN",
    "NOISE_WAVEFORM_PROBABILITY",
    "N_PAD_SWAPS",
    "N_VOXELS",
    "N_X",
    "N_Y",
    "N_Z",
    "PAPER_THRESHOLD",
    "SATURATION_ADC",
    "TRACK_STEP",
    "TRACK_VALIDITY_THRESHOLD_UNITS",
    "TRACK_VALIDITY_XY_UNITS",
    "TRACK_VALIDITY_Z_UNITS",
    "TRACK_Z_MAX",
    "TRACK_Z_MIN",
]

# Geometry: 12 x 14 readout pads (x, y) and 208 time bins (z, drift direction).
N_X: Final = 12
N_Y: Final = 14
N_Z: Final = 208
EVENT_SHAPE: Final = (N_X, N_Y, N_Z)
N_VOXELS: Final = N_X * N_Y * N_Z  # 34,944; fits in uint16

# Tracks live between these time bins; both ends are inside the track region.
TRACK_Z_MIN: Final = 50
TRACK_Z_MAX: Final = 170

# Each tracking step moves the position by direction * TRACK_STEP (x, y, z in voxels).
TRACK_STEP: Final = (0.1, 0.1, 1.0)

# Validity rule: 1 unit for a step that changes the x or y voxel, 0.05 for a
# step that changes the z voxel; a track needs 3 units. Kept as integers
# (20 and 1 of 60) so the comparison is exact.
TRACK_VALIDITY_XY_UNITS: Final = 20
TRACK_VALIDITY_Z_UNITS: Final = 1
TRACK_VALIDITY_THRESHOLD_UNITS: Final = 60

# Landau amplitude: sigma * x + offset, x from the Landau(0, 1) approximation
# f(x) = exp(-(x + exp(-x)) / 2) / sqrt(2 pi).
LANDAU_MU: Final = 0.2
LANDAU_SIGMA: Final = 0.05
LANDAU_OFFSET: Final = LANDAU_MU + 2.0 * LANDAU_SIGMA * math.log(LANDAU_SIGMA) / math.pi

# Synthetic noise: per pad Binomial(N_Z, p) waveforms of length Poisson(6),
# amplitudes Gamma(shape, scale) clipped to [0, 1].
NOISE_WAVEFORM_PROBABILITY: Final = 0.0005
NOISE_LENGTH_MEAN: Final = 6.0
GAMMA_SHAPE: Final = 0.25297058
GAMMA_SCALE: Final = 1.0 / 1.88917480

# Measured noise: one of the first 100 gauge background events, with 50 pad pairs swapped.
BACKGROUND_POOL_SIZE: Final = 100
N_PAD_SWAPS: Final = 50

# Labeling mode: probability that an event contains a track.
LABEL_TRACK_PROBABILITY: Final = 0.5

# Reference shard size of the original generator.
EVENTS_PER_SHARD: Final = 5000

# Measured electronics saturate near this amplitude (ADC counts).
SATURATION_ADC: Final = 800.0

# Chimney removal needs at least this many nonzero values after saturation.
CHIMNEY_MIN_NONZERO: Final = 20

# Classification threshold used in the published analysis.
PAPER_THRESHOLD: Final = 0.42
