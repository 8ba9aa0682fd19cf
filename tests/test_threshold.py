"""Threshold files and the threshold scan on validation shards."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from track_denoiser.generator import GeneratorSettings
from track_denoiser.metrics import confusion_counts
from track_denoiser.production import generate_shards
from track_denoiser.shards import shard_paths
from track_denoiser.threshold import read_threshold, select_threshold, write_threshold

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/paper_model"


# ---------------------------------------------------------------------------
# threshold.txt


def test_threshold_file_round_trip(tmp_path):
    path = tmp_path / "model" / "threshold.txt"
    write_threshold(path, 0.42)

    assert path.read_text() == "0.42\n"
    assert read_threshold(path) == 0.42


def test_reads_original_style_file(tmp_path):
    path = tmp_path / "threshold.txt"
    path.write_text("0.5")  # no newline
    assert read_threshold(path) == 0.5


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("tau=0.4\n", "not a number"),
        ("0.4 0.5\n", "contains 2 values"),
        ("1.5\n", "outside"),
        ("nan\n", "outside"),
        ("-0.1\n", "outside"),
    ],
)
def test_malformed_threshold_file(tmp_path, content, problem):
    path = tmp_path / "threshold.txt"
    path.write_text(content)

    with pytest.raises(ValueError, match=problem) as info:
        read_threshold(path)
    assert str(path) in str(info.value)
    assert "select-threshold" in str(info.value)


def test_missing_threshold_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_threshold(tmp_path / "threshold.txt")


def test_write_rejects_invalid_threshold(tmp_path):
    with pytest.raises(ValueError, match=r"threshold 2\.0 is invalid"):
        write_threshold(tmp_path / "t.txt", 2.0)
    assert not (tmp_path / "t.txt").exists()


# ---------------------------------------------------------------------------
# Scan


@pytest.fixture(scope="module")
def validation(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Two compact validation shards of 12 events and the dense copies of their events."""
    root = tmp_path_factory.mktemp("validation")
    settings = GeneratorSettings(events_per_shard=12)
    generate_shards(root, settings, seed=8, indices=[0, 1], fmt="npy", progress=False)
    files = generate_shards(root, settings, seed=8, indices=[0, 1], fmt="compact", progress=False)
    return root, files


@pytest.fixture(scope="module")
def amplitude_model(tmp_path_factory) -> Path:
    """A model whose score is the noisy amplitude itself (an amplitude cut)."""
    inputs = keras.Input((12, 14, 208, 1))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    path = tmp_path_factory.mktemp("model") / "identity.keras"
    model.save(path)
    return path


def _dense(root: Path) -> tuple[np.ndarray, np.ndarray]:
    paths = [shard_paths(root, "denoising", i) for i in range(2)]
    noisy = np.concatenate([np.load(p.noisy) for p in paths]).astype(np.float32)
    clean = np.concatenate([np.load(p.clean) for p in paths])
    return noisy, clean


def test_scan_picks_best_f1_on_grid(tmp_path, validation, amplitude_model):
    root, files = validation
    selection = select_threshold(
        amplitude_model,
        files,
        tmp_path / "threshold.txt",
        tmp_path / "scan.csv",
        steps=50,
        batch_size=5,
    )

    noisy, clean = _dense(root)
    exact = [confusion_counts(clean, noisy, k / 50) for k in range(51)]
    f1 = np.array([c.f1 for c in exact])
    best = int(np.nanargmax(f1))
    assert selection.threshold == pytest.approx(best / 50)
    assert read_threshold(tmp_path / "threshold.txt") == selection.threshold
    assert selection.counts["tp"] == exact[best].tp
    assert selection.counts["fp"] == exact[best].fp
    assert selection.counts["f1"] == pytest.approx(exact[best].f1)
    assert selection.n_events == 24
    assert 0.5 < selection.roc_auc <= 1.0

    scan = pd.read_csv(tmp_path / "scan.csv")
    assert len(scan) == 51
    assert list(scan.columns[:5]) == ["threshold", "tp", "fp", "fn", "tn"]
    assert {"precision", "recall", "f1", "iou", "false_positive_rate"} <= set(scan.columns)
    assert list(scan["tp"]) == [c.tp for c in exact]
    assert list(scan["fp"]) == [c.fp for c in exact]


def test_balanced_metric_equalises_precision_and_recall(tmp_path, validation, amplitude_model):
    _, files = validation
    f1 = select_threshold(amplitude_model, files, tmp_path / "a.txt", tmp_path / "a.csv", steps=50)
    balanced = select_threshold(
        amplitude_model, files, tmp_path / "b.txt", tmp_path / "b.csv", metric="balanced", steps=50
    )

    gap = abs(balanced.counts["precision"] - balanced.counts["recall"])
    assert gap <= abs(f1.counts["precision"] - f1.counts["recall"])


def test_unknown_metric_rejected_before_work(tmp_path, validation, amplitude_model):
    _, files = validation
    with pytest.raises(ValueError, match="metric 'auc' is unknown"):
        select_threshold(
            amplitude_model, files, tmp_path / "t.txt", tmp_path / "s.csv", metric="auc"
        )
    assert not (tmp_path / "t.txt").exists()


@pytest.mark.skipif(
    not (REFERENCE / "M1.keras").is_file(), reason=f"published model not found in {REFERENCE}"
)
def test_published_model_threshold_and_f1(tmp_path, validation):
    _, files = validation
    selection = select_threshold(
        REFERENCE / "M1.keras", files, tmp_path / "threshold.txt", tmp_path / "scan.csv"
    )

    # The published network separates track from synthetic noise well.
    assert selection.counts["f1"] > 0.8
    assert 0.0 < selection.threshold < 1.0
