"""Straight-line fit of the kept voxels of each event.

A track in the detector is a straight line, so how well the kept (classified
as track) voxels of an event lie on one line judges a denoiser without
needing the truth.

Coordinates and units: a voxel (x, y, z) sits at the point
``(x, y, z_scale * z)``, in pad widths. ``z_scale`` is 0.1 pad widths per time
bin by default. The synthetic event model steps a track by its unit direction
times (0.1, 0.1, 1.0) voxels, so a path that moves one pad in x moves ten time
bins in z, and (x, y, 0.1 z) is the frame in which track directions are
isotropic. All distances below are in pad widths of that frame.

The fit, per event with at least two kept voxels:

1. Total least squares: the line through the centroid of the kept voxels
   along the principal axis of their covariance (largest eigenvalue).
2. Voxels farther than ``outlier_distance`` from that line are outliers. The
   line is fitted once more to the other voxels (the inliers) when at least
   two remain, and the outliers are counted again against the refitted line.

Figures per event:

- ``outlier_share``: outliers / kept voxels.
- ``mean_distance``: mean perpendicular distance of all kept voxels from the
  line (pad widths).
- ``crossed``: voxels the line passes through between the projections of the
  first and last inlier onto it. The segment is sampled at steps of a quarter
  of the shortest voxel edge and each sample is rounded to the nearest voxel
  (half to even, as the event model rounds track positions), so a voxel the
  line only grazes at a corner may be skipped.
- ``missed``: crossed voxels that were not kept; ``missed_share`` =
  missed / crossed.

Events with fewer than two kept voxels have no fit; their figures are NaN
(counts 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .constants import EVENT_SHAPE, N_VOXELS, N_X, N_Y, N_Z

__all__ = ["LineFit", "LineFitSettings", "fit_lines", "summarise_line_fits"]


@dataclass(frozen=True)
class LineFitSettings:
    """Settings of the line fit.

    Attributes:
        z_scale: pad widths per time bin when z is put in the same frame as x
            and y.
        outlier_distance: voxels farther than this from the line are
            outliers (pad widths).
    """

    z_scale: float = 0.1
    outlier_distance: float = 1.0

    def __post_init__(self) -> None:
        if not self.z_scale > 0:
            msg = f"line fit z_scale {self.z_scale!r} is invalid; expected a positive number (pad widths per time bin)"
            raise ValueError(msg)
        if not self.outlier_distance > 0:
            msg = f"line fit outlier_distance {self.outlier_distance!r} is invalid; expected a positive number (pad widths)"
            raise ValueError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LineFitSettings:
        """Build settings from a config mapping; unknown keys are rejected."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown line fit settings {unknown}; expected some of {sorted(known)}"
            raise ValueError(msg)
        return cls(**{k: float(v) for k, v in values.items()})


@dataclass(frozen=True)
class LineFit:
    """Line-fit figures of a batch of events; arrays of length n (see module docstring).

    Attributes:
        kept: int64 kept voxels.
        fitted: bool, the event has at least two kept voxels.
        outliers: int64 outlier voxels.
        outlier_share: float64 outliers / kept (NaN without fit).
        mean_distance: float64 mean distance of kept voxels from the line,
            pad widths (NaN without fit).
        crossed: int64 voxels the fitted segment passes through.
        missed: int64 crossed voxels that were not kept.
        missed_share: float64 missed / crossed (NaN without fit).
        centre: float64 (n, 3) point on the line, pad widths (NaN without fit).
        direction: float64 (n, 3) unit direction (NaN without fit).
    """

    kept: npt.NDArray[np.int64]
    fitted: npt.NDArray[np.bool_]
    outliers: npt.NDArray[np.int64]
    outlier_share: npt.NDArray[np.float64]
    mean_distance: npt.NDArray[np.float64]
    crossed: npt.NDArray[np.int64]
    missed: npt.NDArray[np.int64]
    missed_share: npt.NDArray[np.float64]
    centre: npt.NDArray[np.float64]
    direction: npt.NDArray[np.float64]

    def as_columns(self) -> dict[str, npt.NDArray[Any]]:
        """Return the per-event scalar figures as a name -> array mapping."""
        names = (
            "kept",
            "outliers",
            "outlier_share",
            "mean_distance",
            "crossed",
            "missed",
            "missed_share",
        )
        return {name: getattr(self, name) for name in names}


def _principal_lines(
    event: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    n: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the weighted centroid (n, 3) and principal axis (n, 3) of each event."""
    total = np.bincount(event, weights=weight, minlength=n)
    safe = np.where(total > 0, total, 1.0)
    centre = np.stack(
        [np.bincount(event, weights=weight * points[:, j], minlength=n) / safe for j in range(3)],
        axis=1,
    )
    offset = points - centre[event]
    covariance = np.empty((n, 3, 3))
    for j in range(3):
        for k in range(j, 3):
            value = (
                np.bincount(event, weights=weight * offset[:, j] * offset[:, k], minlength=n) / safe
            )
            covariance[:, j, k] = value
            covariance[:, k, j] = value
    # eigh sorts eigenvalues in increasing order; the last eigenvector is the principal axis.
    _, vectors = np.linalg.eigh(covariance)
    return centre, vectors[:, :, -1]


def _distances(
    event: npt.NDArray[np.int64],
    points: npt.NDArray[np.float64],
    centre: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the position along the line and the perpendicular distance of each point."""
    offset = points - centre[event]
    along = np.einsum("ij,ij->i", offset, direction[event])
    perpendicular = offset - along[:, np.newaxis] * direction[event]
    return along, np.linalg.norm(perpendicular, axis=1)


def fit_lines(kept: npt.ArrayLike, settings: LineFitSettings | None = None) -> LineFit:
    """Fit a straight line to the kept voxels of each event.

    Args:
        kept: bool mask of the voxels classified as track, shape
            (12, 14, 208) or (n, 12, 14, 208).
        settings: frame scale and outlier distance (see ``LineFitSettings``).

    Returns:
        Per-event figures (see the module docstring for definitions and units).
    """
    settings = settings or LineFitSettings()
    mask = np.asarray(kept).astype(bool, copy=False)
    if mask.shape == EVENT_SHAPE:
        mask = mask[np.newaxis]
    if mask.ndim != 4 or mask.shape[1:] != EVENT_SHAPE:
        msg = f"kept-voxel mask has shape {mask.shape}; expected (n, {', '.join(map(str, EVENT_SHAPE))})"
        raise ValueError(msg)
    n = len(mask)
    flat = mask.reshape(n, N_VOXELS)

    event, voxel = np.nonzero(flat)
    event = event.astype(np.int64)
    x, rest = np.divmod(voxel.astype(np.int64), N_Y * N_Z)
    y, z = np.divmod(rest, N_Z)
    points = np.stack([x, y, settings.z_scale * z], axis=1).astype(np.float64)

    n_kept = np.bincount(event, minlength=n).astype(np.int64)
    fitted = n_kept >= 2

    # First fit to every kept voxel, then a refit to the inliers.
    centre, direction = _principal_lines(event, points, np.ones(len(event)), n)
    _, distance = _distances(event, points, centre, direction)
    inlier = distance <= settings.outlier_distance
    n_inliers = np.bincount(event, weights=inlier, minlength=n)
    refit = n_inliers >= 2
    centre2, direction2 = _principal_lines(event, points, inlier.astype(np.float64), n)
    centre = np.where(refit[:, np.newaxis], centre2, centre)
    direction = np.where(refit[:, np.newaxis], direction2, direction)
    along, distance = _distances(event, points, centre, direction)
    outlier = distance > settings.outlier_distance
    # Without a refit every voxel of the event was an outlier of the first fit;
    # the segment then spans all kept voxels.
    in_segment = ~outlier | ~refit[event]
    has_segment = np.bincount(event, weights=in_segment, minlength=n) > 0
    in_segment |= ~has_segment[event]

    n_outliers = np.bincount(event, weights=outlier, minlength=n).astype(np.int64)
    safe_kept = np.maximum(n_kept, 1)
    outlier_share = np.where(fitted, n_outliers / safe_kept, np.nan)
    mean_distance = np.where(
        fitted, np.bincount(event, weights=distance, minlength=n) / safe_kept, np.nan
    )

    crossed, missed = _crossed_voxels(
        event, along, in_segment, centre, direction, fitted, flat, settings
    )
    missed_share = np.where(fitted & (crossed > 0), missed / np.maximum(crossed, 1), np.nan)

    nan3 = np.full((n, 3), np.nan)
    return LineFit(
        kept=n_kept,
        fitted=fitted,
        outliers=np.where(fitted, n_outliers, 0),
        outlier_share=outlier_share,
        mean_distance=mean_distance,
        crossed=crossed,
        missed=missed,
        missed_share=missed_share,
        centre=np.where(fitted[:, np.newaxis], centre, nan3),
        direction=np.where(fitted[:, np.newaxis], direction, nan3),
    )


def _crossed_voxels(
    event: npt.NDArray[np.int64],
    along: npt.NDArray[np.float64],
    in_segment: npt.NDArray[np.bool_],
    centre: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
    fitted: npt.NDArray[np.bool_],
    flat_kept: npt.NDArray[np.bool_],
    settings: LineFitSettings,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Count the voxels each fitted segment crosses, and those of them not kept."""
    n = len(fitted)
    start = np.full(n, np.inf)
    stop = np.full(n, -np.inf)
    np.minimum.at(start, event[in_segment], along[in_segment])
    np.maximum.at(stop, event[in_segment], along[in_segment])
    start = np.where(fitted, start, 0.0)
    stop = np.where(fitted, stop, 0.0)

    step = 0.25 * min(1.0, settings.z_scale)
    n_samples = np.where(fitted, np.floor((stop - start) / step).astype(np.int64) + 2, 0)
    sample_event = np.repeat(np.arange(n), n_samples)
    first_sample = np.cumsum(n_samples) - n_samples
    position = np.arange(len(sample_event)) - first_sample[sample_event]
    # Samples every `step` from the start, the last one exactly at the stop.
    t = np.minimum(start[sample_event] + position * step, stop[sample_event])
    points = centre[sample_event] + t[:, np.newaxis] * direction[sample_event]

    vx = np.rint(points[:, 0]).astype(np.int64)
    vy = np.rint(points[:, 1]).astype(np.int64)
    vz = np.rint(points[:, 2] / settings.z_scale).astype(np.int64)
    inside = (vx >= 0) & (vx < N_X) & (vy >= 0) & (vy < N_Y) & (vz >= 0) & (vz < N_Z)
    keys = sample_event[inside] * N_VOXELS + (vx[inside] * N_Y + vy[inside]) * N_Z + vz[inside]
    keys = np.unique(keys)
    key_event, key_voxel = np.divmod(keys, N_VOXELS)
    crossed = np.bincount(key_event, minlength=n).astype(np.int64)
    not_kept = ~flat_kept[key_event, key_voxel]
    missed = np.bincount(key_event[not_kept], minlength=n).astype(np.int64)
    return crossed, missed


def summarise_line_fits(fit: LineFit) -> dict[str, float | int]:
    """Summarise per-event line fits over the events that have a fit.

    Returns:
        ``events``, ``fitted_events``, and the means over fitted events of
        ``outlier_share``, ``mean_distance`` (pad widths), ``missed`` (voxels)
        and ``missed_share``. The means are NaN when no event has a fit.
    """
    fitted = fit.fitted
    summary: dict[str, float | int] = {
        "events": len(fitted),
        "fitted_events": int(fitted.sum()),
    }
    for name in ("outlier_share", "mean_distance", "missed", "missed_share"):
        values = np.asarray(getattr(fit, name), dtype=np.float64)[fitted]
        values = values[np.isfinite(values)]
        summary[name] = float(values.mean()) if values.size else float("nan")
    return summary
