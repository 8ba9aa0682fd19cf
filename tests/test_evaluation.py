"""The evaluation stage on small generated shards, crafted measured events and M1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from track_denoiser.baseline import BaselineSettings, baseline_scores
from track_denoiser.constants import EVENT_SHAPE, N_VOXELS
from track_denoiser.evaluation import (
    EvaluationSettings,
    build_rows,
    dense_chunks,
    evaluate,
    evaluate_stage,
    find_measured_data,
)
from track_denoiser.events import write_event
from track_denoiser.generator import GeneratorSettings
from track_denoiser.labels import (
    LabelFormatError,
    read_labels,
    select_validation_events,
    write_labels,
)
from track_denoiser.production import generate_shards
from track_denoiser.recognition import recognise
from track_denoiser.shards import convert_shard, read_shard

PAPER_MODEL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_model"
N_EVENTS = 48
SEED = 31


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with denoising shard 0 and labeling shard 0, in both formats."""
    root = tmp_path_factory.mktemp("data")
    for mode in ("denoising", "labeling"):
        settings = GeneratorSettings(mode=mode, events_per_shard=N_EVENTS)
        generate_shards(root, settings, SEED, [0], "compact", progress=False)
        convert_shard(root, mode, 0, "npy")
    return root


@pytest.fixture(scope="module")
def small_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The published architecture with random weights, saved as .keras and as .weights.h5."""
    import keras

    from track_denoiser.models import build_model

    keras.utils.set_random_seed(3)
    model = build_model("paper")
    folder = tmp_path_factory.mktemp("model")
    model.save(folder / "model.keras")
    model.save_weights(folder / "model.weights.h5")
    return folder / "model.keras", folder / "model.weights.h5"


def _dense(root: Path, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    events = read_shard(root, mode, 0, "compact")
    noisy, truth = zip(*dense_chunks(events, 1000), strict=True)
    return np.concatenate(noisy), np.concatenate(truth), np.asarray(events.labels) > 0


def test_dense_chunks_match_shard(shard_root):
    events = read_shard(shard_root, "denoising", 0, "compact")
    noisy, truth = zip(*dense_chunks(events, 7), strict=True)
    np.testing.assert_array_equal(np.concatenate(noisy), events.noisy_dense().astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(truth), events.clean_dense() > 0)


def test_small_model_metrics_match_direct_computation(shard_root, small_models, tmp_path):
    from track_denoiser.models import load_model, predict_probabilities

    keras_file, weights_file = small_models
    compare = [
        {"name": "weights", "path": str(weights_file), "architecture": "paper", "threshold": 0.5}
    ]
    rows = build_rows(keras_file, 0.5, compare, BaselineSettings())
    settings = EvaluationSettings(chunk_events=16, n_example_events=2, curve_steps=200)
    table = evaluate(
        rows,
        data_root=shard_root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=tmp_path,
        settings=settings,
    )

    assert table["model"].tolist() == ["trained", "weights", "baseline"]
    noisy, truth, _ = _dense(shard_root, "denoising")
    scores = predict_probabilities(load_model(keras_file), noisy, 16)
    kept = scores > 0.5
    trained = table.iloc[0]
    assert trained["voxel_tp"] == int((kept & truth).sum())
    assert trained["voxel_fp"] == int((kept & ~truth).sum())
    assert trained["voxel_fn"] == int((~kept & truth).sum())
    assert (
        trained["voxel_tp"] + trained["voxel_fp"] + trained["voxel_fn"] + trained["voxel_tn"]
        == N_EVENTS * N_VOXELS
    )
    # The .weights.h5 copy of the same network gives the same figures.
    for column in ("voxel_tp", "voxel_fp", "roc_auc", "efficiency_cluster"):
        assert table.iloc[1][column] == pytest.approx(trained[column], nan_ok=True)

    written = {p.name for p in tmp_path.iterdir()}
    assert written >= {
        "metrics.csv",
        "metrics.json",
        "measured.csv",
        "measured.json",
        "linefit.csv",
        "curves.csv",
        "amplitudes.csv",
        "examples.npz",
    }
    on_disk = pd.read_csv(tmp_path / "metrics.csv")
    assert on_disk["voxel_tp"].tolist() == table["voxel_tp"].tolist()
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["model"] for row in document["rows"]] == ["trained", "weights", "baseline"]
    assert document["settings"]["test_shards"] == [0]

    curves = pd.read_csv(tmp_path / "curves.csv")
    roc = curves[(curves["model"] == "trained") & (curves["curve"] == "roc")]
    assert len(roc) == settings.curve_steps + 2
    assert np.all(np.diff(roc["x"].to_numpy()) >= -1e-12)

    linefit = pd.read_csv(tmp_path / "linefit.csv")
    assert linefit["model"].tolist() == ["trained", "weights", "baseline", "truth"]
    assert linefit.iloc[-1]["outlier_share"] == 0.0

    amplitudes = pd.read_csv(tmp_path / "amplitudes.csv")
    assert amplitudes["track"].sum() == int(truth.sum())

    with np.load(tmp_path / "examples.npz") as examples:
        assert examples["noisy"].shape == (2, *EVENT_SHAPE)
        np.testing.assert_allclose(examples["output"], scores[:2], rtol=1e-5, atol=1e-6)

    measured = json.loads((tmp_path / "measured.json").read_text())
    assert measured["available"] is False
    assert measured["rows"] == []


def test_baseline_event_level_matches_direct(shard_root, tmp_path):
    settings = EvaluationSettings(chunk_events=20, n_example_events=0)
    rows = build_rows(None, None, [], settings.baseline)
    table = evaluate(
        rows,
        data_root=shard_root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=tmp_path,
        settings=settings,
    )
    noisy, _, has_track = _dense(shard_root, "labeling")
    found = recognise(
        baseline_scores(noisy, settings.baseline) > settings.baseline.amplitude_threshold
    )
    row = table.iloc[0]
    assert row["labeling_tracks"] == int(has_track.sum())
    for criterion, label in (("track_count", "count"), ("track_cluster", "cluster")):
        decision = getattr(found, criterion)
        assert row[f"efficiency_{label}"] == pytest.approx(decision[has_track].mean())
        assert row[f"false_positive_rate_{label}"] == pytest.approx(decision[~has_track].mean())


def test_shard_formats_give_same_metrics(shard_root, tmp_path):
    settings = EvaluationSettings(n_example_events=0)
    rows = build_rows(None, None, [], settings.baseline)
    tables = [
        evaluate(
            rows,
            data_root=shard_root,
            shard_format=fmt,
            test_shards=[0],
            labeling_shards=[0],
            output_dir=tmp_path / fmt,
            settings=settings,
        )
        for fmt in ("compact", "npy")
    ]
    pd.testing.assert_frame_equal(tables[0], tables[1])


def _measured_track(rng: np.random.Generator) -> np.ndarray:
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    x0, y0 = rng.integers(0, 4, size=2)
    for i in range(6):
        event[x0 + i, y0 + i, 60 + 4 * i] = 300.0 + 10 * i
    return event


def _measured_noise(rng: np.random.Generator) -> np.ndarray:
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    for _ in range(5):
        x, y, z = rng.integers(0, 12), rng.integers(0, 14), rng.integers(0, 190)
        event[x, y, z : z + 6] = rng.uniform(50, 200)
    return event


def _write_measured(root: Path) -> None:
    rng = np.random.default_rng(5)
    noisy, clean = root / "data" / "x17" / "noisy", root / "data" / "x17" / "clean"
    labels = {}
    # track1 and track2 are calibration events: track1 is labelled as a track
    # but is empty, which would cost efficiency if it were not skipped.
    write_event(noisy / "track1.txt", np.zeros(EVENT_SHAPE, dtype=np.float32))
    labels["track1"] = 1
    write_event(noisy / "track2.txt", _measured_noise(rng))
    labels["track2"] = 0
    for number in (3, 4, 5, 10):
        track = _measured_track(rng)
        write_event(noisy / f"track{number}.txt", np.maximum(track, _measured_noise(rng)))
        write_event(clean / f"track{number}.txt", track)
        labels[f"track{number}"] = 2
    for number in (6, 7, 8):
        write_event(noisy / f"track{number}.txt", _measured_noise(rng))
        labels[f"track{number}"] = 0
    # The conventional reconstruction finds a spurious 4-pad track in track6.
    spurious = np.zeros(EVENT_SHAPE, dtype=np.float32)
    spurious[0:4, 0, 100] = 100.0
    write_event(clean / "track6.txt", spurious)
    labels["track99"] = 1  # labelled, but no file: left out with a warning
    write_labels(root / "data" / "x17" / "labels.txt", labels)


def test_measured_events_against_labels(shard_root, tmp_path, caplog):
    root = tmp_path / "root"
    _write_measured(root)
    measured, reason = find_measured_data(root, "data/x17/labels.txt")
    assert measured is not None, reason

    settings = EvaluationSettings(n_example_events=0, skip_first=2)
    rows = build_rows(None, None, [], settings.baseline)
    evaluate(
        rows,
        data_root=shard_root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=tmp_path / "out",
        settings=settings,
        measured=measured,
    )

    table = pd.read_csv(tmp_path / "out" / "measured.csv").set_index("model")
    assert table.index.tolist() == ["baseline", "conventional"]
    assert (table["events"] == 7).all()
    assert (table["labelled_tracks"] == 4).all()
    baseline = table.loc["baseline"]
    assert baseline["efficiency_cluster"] == 1.0
    assert baseline["false_positives_cluster"] == 0
    assert baseline["false_positive_rate_cluster"] == 0.0
    conventional = table.loc["conventional"]
    assert conventional["efficiency_cluster"] == 1.0
    assert conventional["false_positives_cluster"] == 1
    # FP / (FP + labelled tracks), as the reference reports it.
    assert conventional["false_positive_rate_cluster"] == pytest.approx(1 / 5)
    info = json.loads((tmp_path / "out" / "measured.json").read_text())
    assert info["available"] is True
    assert info["labelled_without_file"] == 1
    assert "track99" in caplog.text


def test_measured_data_absent_reason(tmp_path):
    measured, reason = find_measured_data(tmp_path, "data/x17/labels.txt")
    assert measured is None
    assert "no measured events" in reason


def test_build_rows_rejects_bad_entries(small_models, tmp_path):
    keras_file, _ = small_models
    with pytest.raises(FileNotFoundError, match="not found"):
        build_rows(
            keras_file,
            0.5,
            [{"name": "x", "path": str(tmp_path / "missing.keras"), "threshold": 0.5}],
        )
    with pytest.raises(ValueError, match="used twice or reserved"):
        build_rows(
            keras_file, 0.5, [{"name": "trained", "path": str(keras_file), "threshold": 0.5}]
        )
    with pytest.raises(ValueError, match="used twice or reserved"):
        build_rows(
            keras_file, 0.5, [{"name": "baseline", "path": str(keras_file), "threshold": 0.5}]
        )
    with pytest.raises(ValueError, match="give at least 'name' and 'path'"):
        build_rows(keras_file, 0.5, [{"name": "x"}])
    with pytest.raises(ValueError, match=r"expected a number in \[0, 1\)"):
        build_rows(keras_file, 1.5)
    with pytest.raises(FileNotFoundError, match="threshold file"):
        build_rows(
            keras_file,
            0.5,
            [{"name": "x", "path": str(keras_file), "threshold": str(tmp_path / "t.txt")}],
        )


def test_label_file_parsing(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("name\tlabel\ntrack10\t1\ntrack2.txt\t0\n\ntrack3\t4\n")
    labels = read_labels(path)
    assert list(labels) == ["track2", "track3", "track10"]
    assert labels == {"track2": 0, "track3": 4, "track10": 1}
    assert list(select_validation_events(labels, 1)) == ["track3", "track10"]

    for body, problem in (
        ("track1 1\n", "tab-separated"),
        ("event1\t1\n", "'track<N>'"),
        ("track1\tyes\n", "not an integer"),
        ("track1\t1\ntrack1\t0\n", "labelled twice"),
    ):
        path.write_text("header\n" + body)
        with pytest.raises(LabelFormatError, match=problem) as info:
            read_labels(path)
        assert str(path) in str(info.value)


@pytest.mark.skipif(
    not (PAPER_MODEL / "M1.keras").is_file(), reason=f"published model not found in {PAPER_MODEL}"
)
def test_published_m1_beats_all_noise_guess(shard_root, tmp_path, record_property):
    compare = [
        {
            "name": "M1_weights",
            "path": str(PAPER_MODEL / "M1.weights.h5"),
            "architecture": "paper",
            "threshold": 0.42,
        }
    ]
    rows = build_rows(PAPER_MODEL / "M1.keras", 0.42, compare, BaselineSettings(), model_name="M1")
    table = evaluate(
        rows,
        data_root=shard_root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=tmp_path,
        settings=EvaluationSettings(n_example_events=0),
    ).set_index("model")

    columns = [
        "precision",
        "recall",
        "f1",
        "iou",
        "roc_auc",
        "pr_auc",
        "efficiency_count",
        "false_positive_rate_count",
        "efficiency_cluster",
        "false_positive_rate_cluster",
        "line_outlier_share",
        "line_mean_distance",
    ]
    figures = table[columns]
    print(
        f"\nM1 and baseline on {N_EVENTS} synthetic events (noise mode 0, seed {SEED}):\n{figures.to_string()}"
    )
    for name, row in figures.iterrows():
        for column, value in row.items():
            record_property(
                f"{name}.{column}", None if math.isnan(value) else round(float(value), 5)
            )

    m1 = table.loc["M1"]
    # The all-noise guess keeps nothing: recall, F1, IoU and efficiency are all 0.
    assert m1["recall"] > 0.8
    assert m1["precision"] > 0.7
    assert m1["f1"] > 0.8
    assert m1["iou"] > 0.65
    assert m1["roc_auc"] > 0.99
    assert m1["efficiency_cluster"] > 0.8
    assert m1["false_positive_rate_cluster"] < 0.2
    assert m1["line_outlier_share"] < 0.2
    # The weights-only file of the same network gives the same figures.
    assert table.loc["M1_weights", "f1"] == pytest.approx(m1["f1"])


def test_evaluate_stage_from_config(shard_root, small_models, tmp_path):
    keras_file, _ = small_models
    section = {
        "baseline": {"amplitude_threshold": 0.05, "min_cluster_pads": 2},
        "recognition": {"min_voxels": 6},
        "linefit": {"outlier_distance": 1.5},
        "n_example_events": 1,
        "curve_steps": 50,
        "labels": "data/x17/labels.txt",
    }
    table = evaluate_stage(
        model=keras_file,
        threshold=0.5,
        data_root=shard_root,
        shard_format="npy",
        test_range=[0, 1],
        labeling_range=[0, 1],
        evaluation=section,
        output_dir=tmp_path,
    )
    assert table["model"].tolist() == ["trained", "baseline"]
    assert table.iloc[1]["threshold"] == 0.05
    settings = json.loads((tmp_path / "metrics.json").read_text())["settings"]
    assert settings["recognition"]["min_voxels"] == 6
    assert settings["linefit"]["outlier_distance"] == 1.5
    assert settings["shard_format"] == "npy"
    with pytest.raises(ValueError, match="unknown recognition settings"):
        evaluate_stage(
            model=keras_file,
            threshold=0.5,
            data_root=shard_root,
            shard_format="npy",
            test_range=[0, 1],
            labeling_range=[0, 1],
            evaluation={"recognition": {"pads": 1}},
            output_dir=tmp_path / "bad",
        )
