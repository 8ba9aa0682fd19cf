"""Event-level recognition criteria and the cluster labelling behind them."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from track_denoiser.baseline import BaselineSettings, baseline_scores
from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.recognition import (
    RecognitionSettings,
    cluster_criterion,
    count_criterion,
    count_pads,
    count_voxels,
    label_clusters,
    recognise,
)


def _cluster_pads_oracle(event: np.ndarray, reach_xy: int = 1, reach_z: int = 8) -> list[int]:
    # Breadth-first search over kept voxels; returns the sorted pad spans of the clusters.
    remaining = {tuple(int(v) for v in p) for p in np.argwhere(event)}
    spans = []
    while remaining:
        start = remaining.pop()
        queue = deque([start])
        pads = {start[:2]}
        while queue:
            x, y, z = queue.popleft()
            for other in list(remaining):
                if (
                    abs(other[0] - x) <= reach_xy
                    and abs(other[1] - y) <= reach_xy
                    and abs(other[2] - z) <= reach_z
                ):
                    remaining.remove(other)
                    queue.append(other)
                    pads.add(other[:2])
        spans.append(len(pads))
    return sorted(spans)


def _events(n: int) -> np.ndarray:
    return np.zeros((n, *EVENT_SHAPE), dtype=bool)


def test_count_criterion_pads_or_voxels():
    kept = _events(5)
    kept[0, 3, 3, 10:14] = True  # 4 voxels in one pad: no track
    kept[1, 3, 3, 10:15] = True  # 5 voxels in one pad: track by voxel count
    kept[2, 3, 3, 10] = True
    kept[2, 9, 1, 150] = True  # 2 voxels in 2 pads: track by pad count
    kept[3, 0, 0, 0:19] = True  # 19 voxels in one pad
    # event 4 is empty

    assert count_voxels(kept).tolist() == [4, 5, 2, 19, 0]
    assert count_pads(kept).tolist() == [1, 1, 2, 1, 0]
    assert count_criterion(kept).tolist() == [False, True, True, True, False]
    strict = count_criterion(kept, min_pads=2, min_voxels=20)
    assert strict.tolist() == [False, False, True, False, False]


def test_cluster_single_wide_cluster():
    kept = _events(2)
    # A diagonal track over 4 pads, 8 time bins apart (within reach).
    for i in range(4):
        kept[0, 2 + i, 5 + i, 60 + 8 * i] = True
    # The same with 9 time bins apart: every voxel is its own cluster.
    for i in range(4):
        kept[1, 2 + i, 5 + i, 60 + 9 * i] = True
    assert cluster_criterion(kept).tolist() == [True, False]


def test_cluster_two_three_pad_clusters():
    kept = _events(3)
    for i in range(3):
        kept[0, i, 0, 20 + i] = True  # cluster A: 3 pads
        kept[0, i + 6, 10, 150 + i] = True  # cluster B: 3 pads, far away
    for i in range(3):
        kept[1, i, 0, 20 + i] = True  # one 3-pad cluster only
    kept[1, 8, 8, 100:140] = True  # long waveform in one pad
    for i in range(3):
        kept[2, i, 0, 20 + i] = True
    for i in range(2):
        kept[2, i + 6, 10, 150 + i] = True  # second cluster spans only 2 pads
    assert cluster_criterion(kept).tolist() == [True, False, False]


def test_cluster_pad_diagonal_and_gap():
    kept = _events(1)
    kept[0, 0, 0, 100] = True
    kept[0, 1, 1, 108] = True  # diagonal neighbour, dz = 8
    kept[0, 2, 2, 100] = True  # neighbour of (1, 1, 108): dz = 8
    kept[0, 4, 4, 100] = True  # two pads away: separate
    clusters = label_clusters(kept)
    assert sorted(clusters.cluster_pads.tolist()) == [1, 3]
    assert clusters.cluster_size.sum() == 4


@pytest.mark.parametrize(
    ("density", "reach_xy", "reach_z"),
    [(0.002, 1, 8), (0.01, 1, 8), (0.01, 2, 3), (0.004, 0, 0), (0.003, 1, 20)],
)
def test_clusters_match_oracle_on_random_events(density, reach_xy, reach_z):
    rng = np.random.default_rng(11)
    kept = rng.random((4, *EVENT_SHAPE)) < density
    # Short waveforms along z, as noise makes them, beside the scattered voxels.
    kept[:, 3, 4, 40:60] = True
    kept[:, 4, 5, 75:80] = True
    clusters = label_clusters(kept, reach_xy, reach_z)
    assert clusters.cluster_size.sum() == kept.sum()
    for i in range(len(kept)):
        mine = sorted(clusters.cluster_pads[clusters.cluster_event == i].tolist())
        assert mine == _cluster_pads_oracle(kept[i], reach_xy, reach_z)


def test_dense_mask_is_one_cluster():
    kept = np.ones((3, *EVENT_SHAPE), dtype=bool)
    clusters = label_clusters(kept)
    assert clusters.cluster_pads.tolist() == [168, 168, 168]
    assert cluster_criterion(kept).tolist() == [True, True, True]


def test_clusters_do_not_cross_events():
    kept = _events(2)
    kept[0, 5, 5, 100] = True
    kept[1, 5, 6, 101] = True
    clusters = label_clusters(kept)
    assert len(clusters.cluster_pads) == 2
    assert clusters.cluster_event.tolist() == [0, 1]


def test_recognise_collects_all_criteria():
    kept = _events(2)
    for i in range(5):
        kept[0, i, 2, 50 + 2 * i] = True
    result = recognise(kept)
    assert result.voxels.tolist() == [5, 0]
    assert result.pads.tolist() == [5, 0]
    assert result.largest_cluster_pads.tolist() == [5, 0]
    assert result.track_count.tolist() == [True, False]
    assert result.track_count_strict.tolist() == [True, False]
    assert result.track_cluster.tolist() == [True, False]


def test_settings_from_dict_rejects_unknown():
    assert RecognitionSettings.from_dict({"min_voxels": 7}).min_voxels == 7
    with pytest.raises(ValueError, match="unknown recognition settings"):
        RecognitionSettings.from_dict({"min_voxel": 7})
    with pytest.raises(ValueError, match="non-negative integer"):
        RecognitionSettings(reach_z=-1)


def test_baseline_keeps_wide_clusters_above_threshold():
    events = np.zeros((1, *EVENT_SHAPE), dtype=np.float32)
    for i in range(4):
        events[0, 2 + i, 3, 80 + 3 * i] = 0.3  # track over 4 pads
    events[0, 9, 9, 20:30] = 0.5  # noise waveform in one pad
    events[0, 0, 13, 200] = 0.02  # below the amplitude threshold
    scores = baseline_scores(events, BaselineSettings(amplitude_threshold=0.05, min_cluster_pads=3))
    kept = scores > 0.05
    assert kept.sum() == 4
    assert np.all(kept[0, 2:6, 3].any(axis=1))
    assert not kept[0, 9, 9].any()
    np.testing.assert_array_equal(scores[kept], np.float32(0.3))
