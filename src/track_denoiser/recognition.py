"""Event-level track recognition: does a classified event hold a track?

Two criteria from M. Gajdoš et al., Computer Physics Communications (2025),
doi:10.1016/j.cpc.2025.109608, applied to the kept (classified as track)
voxels of each event:

- Count criterion: the kept voxels span at least ``min_pads`` distinct pads
  (x, y) or number at least ``min_voxels``. The strict variant uses
  ``strict_min_voxels`` (20) in place of ``min_voxels`` (5); the pad
  condition is the same in both.
- Cluster criterion: the kept voxels are grouped into connected clusters, two
  voxels being neighbours when they differ by at most ``reach_xy`` pads in x
  and in y and by at most ``reach_z`` time bins in z (±1, ±1, ±8). The event
  contains a track when one cluster spans at least ``cluster_single_pads`` (4)
  pads, or at least two clusters span ``cluster_pair_pads`` (3) pads each.

All functions take a batch of boolean masks of shape (n, 12, 14, 208) and
are vectorised over the batch: clusters are the connected components
(``scipy.sparse.csgraph``) of a graph of pad segments, see ``label_clusters``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .constants import EVENT_SHAPE, N_VOXELS, N_X, N_Y, N_Z

__all__ = [
    "CRITERIA",
    "Clusters",
    "Recognition",
    "RecognitionSettings",
    "cluster_criterion",
    "count_criterion",
    "count_pads",
    "count_voxels",
    "label_clusters",
    "recognise",
]

_N_PADS = N_X * N_Y

# Names of the per-event decisions of ``Recognition``, in table order.
CRITERIA: tuple[str, ...] = ("track_count", "track_count_strict", "track_cluster")


@dataclass(frozen=True)
class RecognitionSettings:
    """Parameters of the two recognition criteria (defaults as published).

    Attributes:
        min_pads: count criterion, minimum number of distinct pads.
        min_voxels: count criterion, minimum number of kept voxels.
        strict_min_voxels: strict count criterion, minimum number of kept voxels.
        reach_xy: cluster neighbourhood in x and y (pads either side).
        reach_z: cluster neighbourhood in z (time bins either side).
        cluster_single_pads: a cluster spanning this many pads is a track.
        cluster_pair_pads: two clusters spanning this many pads each are a track.
    """

    min_pads: int = 2
    min_voxels: int = 5
    strict_min_voxels: int = 20
    reach_xy: int = 1
    reach_z: int = 8
    cluster_single_pads: int = 4
    cluster_pair_pads: int = 3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                msg = f"recognition setting {name}={value!r} is invalid; expected a non-negative integer"
                raise ValueError(msg)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RecognitionSettings:
        """Build settings from a config mapping; unknown keys are rejected."""
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown recognition settings {unknown}; expected some of {sorted(known)}"
            raise ValueError(msg)
        return cls(**values)


def _as_mask_batch(kept: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    mask = np.asarray(kept).astype(bool, copy=False)
    if mask.shape == EVENT_SHAPE:
        mask = mask[np.newaxis]
    if mask.ndim != 4 or mask.shape[1:] != EVENT_SHAPE:
        msg = f"kept-voxel mask has shape {mask.shape}; expected (n, {', '.join(map(str, EVENT_SHAPE))})"
        raise ValueError(msg)
    return mask


def count_voxels(kept: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Return the number of kept voxels per event, int64 (n,)."""
    mask = _as_mask_batch(kept)
    return mask.reshape(len(mask), -1).sum(axis=1, dtype=np.int64)


def count_pads(kept: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Return the number of distinct pads (x, y) holding a kept voxel per event, int64 (n,)."""
    mask = _as_mask_batch(kept)
    return mask.any(axis=3).reshape(len(mask), -1).sum(axis=1, dtype=np.int64)


def count_criterion(
    kept: npt.ArrayLike, min_pads: int = 2, min_voxels: int = 5
) -> npt.NDArray[np.bool_]:
    """Apply the count criterion: at least ``min_pads`` pads or ``min_voxels`` voxels.

    Returns:
        bool (n,), True where the event contains a track.
    """
    return (count_pads(kept) >= min_pads) | (count_voxels(kept) >= min_voxels)


@dataclass(frozen=True)
class Clusters:
    """Connected clusters of the kept voxels of a batch of events.

    Attributes:
        n_events: number of events in the batch.
        event: int64 (k,) event of each kept voxel.
        voxel: int64 (k,) flat voxel index (C order of (12, 14, 208)) of each kept voxel.
        cluster: int64 (k,) cluster of each kept voxel, numbered across the batch.
        cluster_event: int64 (c,) event of each cluster.
        cluster_pads: int64 (c,) distinct pads spanned by each cluster.
        cluster_size: int64 (c,) kept voxels in each cluster.
    """

    n_events: int
    event: npt.NDArray[np.int64]
    voxel: npt.NDArray[np.int64]
    cluster: npt.NDArray[np.int64]
    cluster_event: npt.NDArray[np.int64]
    cluster_pads: npt.NDArray[np.int64]
    cluster_size: npt.NDArray[np.int64]

    def voxel_pads(self) -> npt.NDArray[np.int64]:
        """Return the pad span of the cluster of each kept voxel, int64 (k,)."""
        return self.cluster_pads[self.cluster]


def _half_pad_offsets(reach_xy: int) -> list[tuple[int, int]]:
    # Pad offsets (dx, dy) of one half of the neighbourhood, so that every
    # pair of neighbouring pads is visited once.
    return [
        (dx, dy)
        for dx in range(reach_xy + 1)
        for dy in range(-reach_xy, reach_xy + 1)
        if dx > 0 or dy > 0
    ]


def label_clusters(kept: npt.ArrayLike, reach_xy: int = 1, reach_z: int = 8) -> Clusters:
    """Group the kept voxels of each event into connected clusters.

    Two kept voxels of the same event are neighbours when
    ``|dx| <= reach_xy``, ``|dy| <= reach_xy`` and ``|dz| <= reach_z``
    (voxel units); a cluster is a connected component of that relation.

    The graph is built on pad segments rather than voxels: the kept voxels
    of one pad split into segments wherever two consecutive ones are more
    than ``reach_z`` time bins apart, and each segment is connected inside.
    A segment A and a segment B of a neighbouring pad are connected exactly
    when B's span [min, max] overlaps [min_A - reach_z, max_A + reach_z].
    The gaps inside B are at most ``reach_z``, so B cannot step over that
    window, which is more than ``reach_z`` bins wide. The cost grows with the
    number of segments, so dense masks (an untrained network keeps most
    voxels) stay cheap.

    Args:
        kept: bool mask, shape (12, 14, 208) or (n, 12, 14, 208).
        reach_xy: neighbourhood in x and y, pads either side.
        reach_z: neighbourhood in z, time bins either side.

    Returns:
        The clusters of the batch (see ``Clusters``).
    """
    mask = _as_mask_batch(kept)
    n = len(mask)
    flat = mask.reshape(n, N_VOXELS)
    event, voxel = np.nonzero(flat)
    event = event.astype(np.int64)
    voxel = voxel.astype(np.int64)
    k = len(voxel)
    if k == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Clusters(n, empty, empty, empty, empty.copy(), empty.copy(), empty.copy())

    # np.nonzero returns voxels sorted by (event, pad, z); pad = x * 14 + y.
    pad, z = np.divmod(voxel, N_Z)
    pad_key = event * _N_PADS + pad
    starts = np.ones(k, dtype=bool)
    starts[1:] = (pad_key[1:] != pad_key[:-1]) | (z[1:] - z[:-1] > reach_z)
    segment = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], k) - 1
    seg_pad_key = pad_key[first]
    seg_event, seg_pad = np.divmod(seg_pad_key, _N_PADS)
    seg_x, seg_y = np.divmod(seg_pad, N_Y)
    seg_zmin, seg_zmax = z[first], z[last]
    n_segments = len(first)

    # Keys that sort segments by pad, then by z; the shift keeps z - reach_z
    # non-negative and z + reach_z inside the pad's key range.
    span = N_Z + 2 * reach_z + 1
    key_min = seg_pad_key * span + seg_zmin + reach_z
    key_max = seg_pad_key * span + seg_zmax + reach_z

    sources = []
    targets = []
    for dx, dy in _half_pad_offsets(reach_xy):
        nx, ny = seg_x + dx, seg_y + dy
        inside = (nx >= 0) & (nx < N_X) & (ny >= 0) & (ny < N_Y)
        source = np.flatnonzero(inside)
        if source.size == 0:
            continue
        other = (seg_event[source] * _N_PADS + nx[source] * N_Y + ny[source]) * span
        low = np.searchsorted(key_max, other + seg_zmin[source], side="left")
        high = np.searchsorted(key_min, other + seg_zmax[source] + 2 * reach_z, side="right")
        count = np.maximum(high - low, 0)
        pairs = np.repeat(np.arange(source.size), count)
        position = np.arange(len(pairs)) - np.repeat(np.cumsum(count) - count, count)
        sources.append(source[pairs])
        targets.append(low[pairs] + position)
    source = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    target = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    graph = coo_matrix(
        (np.ones(len(source), dtype=np.int8), (source, target)), shape=(n_segments, n_segments)
    )
    n_clusters, segment_cluster = connected_components(graph, directed=False)
    segment_cluster = segment_cluster.astype(np.int64)
    cluster = segment_cluster[segment]

    cluster_event = np.zeros(n_clusters, dtype=np.int64)
    cluster_event[segment_cluster] = seg_event
    cluster_size = np.bincount(cluster, minlength=n_clusters).astype(np.int64)
    pad_keys = np.unique(segment_cluster * _N_PADS + seg_pad)
    cluster_pads = np.bincount(pad_keys // _N_PADS, minlength=n_clusters).astype(np.int64)
    return Clusters(n, event, voxel, cluster, cluster_event, cluster_pads, cluster_size)


def _clusters_per_event(clusters: Clusters, min_pads: int) -> npt.NDArray[np.int64]:
    wide = clusters.cluster_pads >= min_pads
    return np.bincount(clusters.cluster_event[wide], minlength=clusters.n_events).astype(np.int64)


def cluster_criterion(
    kept: npt.ArrayLike | Clusters,
    settings: RecognitionSettings | None = None,
) -> npt.NDArray[np.bool_]:
    """Apply the cluster criterion to each event.

    Args:
        kept: bool mask (n, 12, 14, 208), or clusters from ``label_clusters``.
        settings: neighbourhood and pad thresholds; the published ones by default.

    Returns:
        bool (n,), True where one cluster spans at least
        ``cluster_single_pads`` pads or two clusters span at least
        ``cluster_pair_pads`` pads each.
    """
    settings = settings or RecognitionSettings()
    clusters = (
        kept
        if isinstance(kept, Clusters)
        else label_clusters(kept, settings.reach_xy, settings.reach_z)
    )
    single = _clusters_per_event(clusters, settings.cluster_single_pads) >= 1
    pair = _clusters_per_event(clusters, settings.cluster_pair_pads) >= 2
    return single | pair


@dataclass(frozen=True)
class Recognition:
    """Per-event recognition figures of a batch; every field is an array of length n.

    Attributes:
        voxels: int64 kept voxels.
        pads: int64 distinct pads with a kept voxel.
        largest_cluster_pads: int64 pad span of the widest cluster (0 when empty).
        track_count: bool count criterion (``min_pads`` or ``min_voxels``).
        track_count_strict: bool strict count criterion (``min_pads`` or
            ``strict_min_voxels``).
        track_cluster: bool cluster criterion.
    """

    voxels: npt.NDArray[np.int64]
    pads: npt.NDArray[np.int64]
    largest_cluster_pads: npt.NDArray[np.int64]
    track_count: npt.NDArray[np.bool_]
    track_count_strict: npt.NDArray[np.bool_]
    track_cluster: npt.NDArray[np.bool_]

    def as_columns(self) -> dict[str, npt.NDArray[Any]]:
        """Return the figures as a name -> array mapping (for a table)."""
        return asdict(self)


def recognise(kept: npt.ArrayLike, settings: RecognitionSettings | None = None) -> Recognition:
    """Apply every recognition criterion to a batch of classified events.

    Args:
        kept: bool mask of the voxels classified as track, (n, 12, 14, 208).
        settings: criterion parameters; the published ones by default.

    Returns:
        Per-event figures and decisions.
    """
    settings = settings or RecognitionSettings()
    mask = _as_mask_batch(kept)
    voxels = count_voxels(mask)
    pads = count_pads(mask)
    clusters = label_clusters(mask, settings.reach_xy, settings.reach_z)
    largest = np.zeros(len(mask), dtype=np.int64)
    np.maximum.at(largest, clusters.cluster_event, clusters.cluster_pads)
    return Recognition(
        voxels=voxels,
        pads=pads,
        largest_cluster_pads=largest,
        track_count=(pads >= settings.min_pads) | (voxels >= settings.min_voxels),
        track_count_strict=(pads >= settings.min_pads) | (voxels >= settings.strict_min_voxels),
        track_cluster=cluster_criterion(clusters, settings),
    )
