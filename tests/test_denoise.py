"""``track-denoiser denoise`` on a folder of crafted measured events."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from track_denoiser.cli import main
from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.denoise import SUMMARY_COLUMNS, denoise_folder
from track_denoiser.events import read_event, write_event
from track_denoiser.preprocessing import remove_chimneys

THRESHOLD = 0.2
TRACK = [(i, i + 1, 60 + 5 * i) for i in range(8)]
SCATTERED = [(0, 0, 10), (4, 7, 50), (8, 13, 100), (11, 0, 150), (0, 13, 200), (6, 3, 5)]


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved network whose output is its input: it keeps voxels with normalised amplitude above τ."""
    import keras

    inputs = keras.Input((*EVENT_SHAPE, 1))
    layer = keras.layers.Conv3D(1, 1, use_bias=False)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.ones((1, 1, 1, 1, 1), dtype=np.float32)])
    path = tmp_path_factory.mktemp("model") / "identity.keras"
    model.save(path)
    return path


def _chimney_event() -> np.ndarray:
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    event[5, 5, 100:110] = 900.0
    event[5, 5, 110:140] = np.round(np.linspace(500.0, 50.0, 30))
    for i in range(6):
        event[i, 2, 30 + 3 * i] = 400.0
    return event


def _write_inputs(folder: Path, malformed: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    events = {}

    track = np.zeros(EVENT_SHAPE, dtype=np.float32)
    for voxel in TRACK:
        track[voxel] = 300.0
    track[10, 2, 10:15] = 20.0  # low noise: 20 / 300 is below τ after normalisation
    events["track1"] = track

    events["track2"] = _chimney_event()

    scattered = np.zeros(EVENT_SHAPE, dtype=np.float32)
    for voxel in SCATTERED:
        scattered[voxel] = 100.0
    events["track3"] = scattered

    for name, event in events.items():
        write_event(folder / f"{name}.txt", event)
    (folder / "track4.txt").write_text("")
    events["track4"] = np.zeros(EVENT_SHAPE, dtype=np.float32)
    if malformed:
        (folder / "track10.txt").write_text("1,2,3,40\n1,2,x,5\n")
    return events


def _read_summary(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == SUMMARY_COLUMNS
        return {row["name"]: row for row in reader}


def test_denoise_outputs_and_summary(tmp_path, identity_model):
    events = _write_inputs(tmp_path / "in", malformed=False)
    result = denoise_folder(
        identity_model, tmp_path / "in", tmp_path / "out", threshold=THRESHOLD, batch_size=2
    )

    assert result.denoised == 4
    assert result.skipped == []
    assert sorted(p.name for p in (tmp_path / "out").glob("track*.txt")) == [
        "track1.txt",
        "track2.txt",
        "track3.txt",
        "track4.txt",
    ]
    assert not (tmp_path / "out" / "skipped.csv").exists()

    # Straight track: exactly its voxels, with the measured amplitudes.
    track = read_event(tmp_path / "out" / "track1.txt")
    assert {tuple(v) for v in np.argwhere(track)} == set(TRACK)
    np.testing.assert_array_equal(track[track > 0], 300.0)

    # Chimney: the voxels chimney removal zeroed are gone even where their
    # normalised amplitude is above τ; the rest keep the measured amplitude.
    chimney = events["track2"]
    cleaned = remove_chimneys(chimney)
    expected = np.where(cleaned / cleaned.max() > THRESHOLD, chimney, 0.0)
    output = read_event(tmp_path / "out" / "track2.txt")
    np.testing.assert_array_equal(output, expected)
    removed = (chimney > 0) & (cleaned == 0) & (chimney / cleaned.max() > THRESHOLD)
    assert removed.any()
    assert not output[removed].any()

    # Empty event: an empty output file.
    assert (tmp_path / "out" / "track4.txt").read_text() == ""

    summary = _read_summary(tmp_path / "out" / "summary.csv")
    assert list(summary) == ["track1", "track2", "track3", "track4"]
    row = summary["track1"]
    assert row["input_voxels"] == "13"
    assert row["kept_voxels"] == "8"
    assert row["pads"] == "8"
    assert (row["track_count"], row["track_count_strict"], row["track_cluster"]) == ("1", "1", "1")
    assert row["line_outliers"] == "0"
    assert float(row["line_mean_distance"]) == pytest.approx(0.0, abs=1e-6)

    row = summary["track2"]
    assert int(row["chimney_voxels"]) == int(np.sum((chimney > 0) & (cleaned == 0)))
    assert int(row["kept_voxels"]) == int(np.count_nonzero(expected))

    # Scattered single voxels: enough pads for the count criterion, no cluster.
    row = summary["track3"]
    assert row["kept_voxels"] == "6"
    assert (row["track_count"], row["track_cluster"]) == ("1", "0")

    row = summary["track4"]
    assert (row["kept_voxels"], row["track_count"], row["track_cluster"]) == ("0", "0", "0")
    assert row["line_mean_distance"] == ""


def test_malformed_file_stops_run(tmp_path, identity_model, caplog):
    _write_inputs(tmp_path / "in")
    argv = [
        "denoise",
        "--model",
        str(identity_model),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--threshold",
        str(THRESHOLD),
        "--batch-size",
        "2",
    ]
    with caplog.at_level(logging.ERROR):
        status = main(argv)

    assert status == 2
    assert "track10.txt:2" in caplog.text
    assert "'x'" in caplog.text
    # Batches before the bad file are written, but the run is not complete.
    assert (tmp_path / "out" / "track1.txt").exists()
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_skip_invalid_lists_file(tmp_path, identity_model):
    _write_inputs(tmp_path / "in")
    argv = [
        "denoise",
        "--model",
        str(identity_model),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--threshold",
        str(THRESHOLD),
        "--skip-invalid",
    ]
    assert main(argv) == 0

    summary = _read_summary(tmp_path / "out" / "summary.csv")
    assert list(summary) == ["track1", "track2", "track3", "track4"]
    assert not (tmp_path / "out" / "track10.txt").exists()
    with open(tmp_path / "out" / "skipped.csv", newline="") as handle:
        skipped = list(csv.DictReader(handle))
    assert len(skipped) == 1
    assert skipped[0]["file"] == "track10.txt"
    assert skipped[0]["reason"].startswith("line 2:")
    assert "'x'" in skipped[0]["reason"]


def test_rerun_into_existing_output(tmp_path, identity_model, caplog):
    _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "track10.txt").write_text(
        "0,0,0,1\n"
    )  # earlier output of an input that is malformed now
    (out / "track99.txt").write_text("0,0,0,1\n")  # earlier output without any input now
    (out / "track1.txt").write_text("0,0,0,1\n")  # earlier output that this run replaces

    with caplog.at_level(logging.WARNING):
        result = denoise_folder(
            identity_model, tmp_path / "in", out, threshold=THRESHOLD, skip_invalid=True
        )

    assert not (out / "track10.txt").exists()
    assert (out / "track99.txt").read_text() == "0,0,0,1\n"
    assert [p.name for p in result.stale] == ["track99.txt"]
    assert "track99.txt" in caplog.text
    assert np.count_nonzero(read_event(out / "track1.txt")) == len(TRACK)
    assert "track99" not in _read_summary(out / "summary.csv")


def test_output_folder_must_differ_from_input(tmp_path, identity_model):
    _write_inputs(tmp_path / "in", malformed=False)
    with pytest.raises(ValueError, match="is the input folder"):
        denoise_folder(identity_model, tmp_path / "in", tmp_path / "in", threshold=THRESHOLD)


def test_threshold_out_of_range_rejected(tmp_path, identity_model):
    _write_inputs(tmp_path / "in", malformed=False)
    with pytest.raises(ValueError, match=r"expected a number in \(0, 1\)"):
        denoise_folder(identity_model, tmp_path / "in", tmp_path / "out", threshold=1.5)


def test_cli_exit_status_without_traceback(tmp_path, identity_model):
    _write_inputs(tmp_path / "in")
    command = [
        sys.executable,
        "-m",
        "track_denoiser.cli",
        "denoise",
        "--model",
        str(identity_model),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--threshold",
        "0.2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 2
    assert "track10.txt:2" in result.stderr
    assert "Traceback" not in result.stderr
