"""Denoising and recognition of tracks in time projection chamber (TPC) events.

The method follows M. Gajdoš et al., "TPC track denoising and recognition
using convolutional neural networks", Computer Physics Communications (2025),
doi:10.1016/j.cpc.2025.109608.

Heavy modules (TensorFlow models, training, plotting) are imported on demand,
so ``import track_denoiser`` stays fast.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# TensorFlow's C++ layer prints info and warning lines (CPU features, oneDNN,
# missing CUDA on CPU-only machines) straight to stderr. Keep errors only,
# unless the user chose a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    __version__ = version("track-denoiser")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
