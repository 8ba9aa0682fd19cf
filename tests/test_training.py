"""Training runs on small generated data: learning, outputs, resuming and early stopping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest

from track_denoiser.generator import GeneratorSettings
from track_denoiser.models import load_model
from track_denoiser.production import generate_shards
from track_denoiser.shards import ShardError
from track_denoiser.threshold import select_threshold
from track_denoiser.training import (
    GpuUnavailableError,
    TrainingSettings,
    _BackupFolder,
    _make_progress_callback,
    _Progress,
    check_devices,
    train,
)

HAS_GPU = bool(__import__("tensorflow").config.list_physical_devices("GPU"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, list[Path]]:
    """Compact shards: three of 40 training events, one of 40 validation events, and a tiny set."""
    root = tmp_path_factory.mktemp("data")
    make = generate_shards
    return {
        "root": [root],
        "train": make(
            root, GeneratorSettings(events_per_shard=40), 3, [0, 1, 2], "compact", progress=False
        ),
        "validation": make(
            root, GeneratorSettings(events_per_shard=40), 3, [3], "compact", progress=False
        ),
        "tiny_train": make(
            root, GeneratorSettings(events_per_shard=12), 3, [10, 11], "compact", progress=False
        ),
        "tiny_validation": make(
            root, GeneratorSettings(events_per_shard=8), 3, [12], "compact", progress=False
        ),
    }


def _outputs(folder: Path) -> dict[str, Path]:
    return {
        "model_path": folder / "model.keras",
        "history_csv": folder / "history.csv",
        "history_json": folder / "history.json",
    }


TINY = {"epochs": 3, "batch_size": 8, "learning_rate": 0.01, "patience": 5, "seed": 1}


# ---------------------------------------------------------------------------
# Settings and early failures


def test_settings_from_config_mapping():
    settings = TrainingSettings.from_mapping(
        {"architecture": "wide", "learning_rate": "1e-4"}, seed=3
    )

    assert settings.architecture == "wide"
    assert settings.learning_rate == pytest.approx(1e-4)
    assert settings.seed == 3
    assert settings.loss == "paper"


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"epochs": 0}, "epochs 0 is invalid"),
        ({"batch_size": 2.5}, "batch_size 2.5 is invalid"),
        ({"learning_rate": -1.0}, "learning rate -1.0 is invalid"),
        ({"architecture": "huge"}, "architecture 'huge' is unknown"),
        ({"patience": -1}, "patience -1 is invalid"),
        ({"epoch": 3}, r"settings \['epoch'\] are unknown"),
    ],
)
def test_invalid_settings(values, problem):
    with pytest.raises(ValueError, match=problem):
        TrainingSettings.from_mapping(values)


@pytest.mark.skipif(HAS_GPU, reason="a GPU is visible, so the missing-GPU error cannot occur")
def test_required_gpu_missing_fails_fast(tmp_path):
    started = time.perf_counter()
    with pytest.raises(GpuUnavailableError, match=r"TensorFlow finds none.*another node"):
        # The shard does not exist: the GPU check must come before any data is read.
        train(
            [tmp_path / "missing.npz"],
            [tmp_path / "missing.npz"],
            **_outputs(tmp_path),
            settings=TrainingSettings(require_gpu=True),
        )
    assert time.perf_counter() - started < 10
    with pytest.raises(GpuUnavailableError):
        check_devices(require_gpu=True)


def test_unknown_loss_fails_before_data(tmp_path):
    with pytest.raises(ValueError, match="loss 'focal' is unknown"):
        train([tmp_path / "missing.npz"], [], **_outputs(tmp_path), settings={"loss": "focal"})


def test_truncated_shard_stops_before_training(tmp_path, data):
    broken = tmp_path / "data/simulated/compact/0.npz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(data["tiny_train"][0].read_bytes()[:500])

    with pytest.raises(ShardError, match=str(broken)):
        train(
            [data["tiny_train"][1], broken],
            data["tiny_validation"],
            **_outputs(tmp_path / "model"),
            settings=TINY,
        )
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------------------
# Real training


@pytest.mark.slow
def test_short_training_learns(tmp_path, data):
    settings = TrainingSettings(epochs=5, batch_size=8, learning_rate=0.03, patience=3, seed=0)
    result = train(data["train"], data["validation"], **_outputs(tmp_path), settings=settings)

    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]
    assert list(history.columns[:5]) == ["epoch", "loss", "precision", "recall", "auc"]
    assert {"val_loss", "val_precision", "val_recall", "val_auc", "seconds"} <= set(history.columns)
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    summary = json.loads((tmp_path / "history.json").read_text())
    assert summary["best_epoch"] == result.best_epoch
    assert summary["train_events"] == 120
    assert summary["validation_events"] == 40
    assert summary["settings"]["learning_rate"] == 0.03
    assert not (tmp_path / "backup").exists()

    selection = select_threshold(
        result.model_path, data["validation"], tmp_path / "threshold.txt", tmp_path / "scan.csv"
    )
    counts = selection.counts
    n_track = counts["tp"] + counts["fn"]
    n_voxels = n_track + counts["fp"] + counts["tn"]
    all_track_f1 = 2 * n_track / (n_track + n_voxels)  # every voxel classified as track
    # All-noise (nothing kept) has F1 0; the trained network must be far above both guesses.
    assert counts["f1"] > 0.2
    assert counts["f1"] > 20 * all_track_f1


def test_final_model_is_best_epoch_in_float32(tmp_path, data):
    result = train(
        data["tiny_train"],
        data["tiny_validation"],
        **_outputs(tmp_path),
        settings={**TINY, "epochs": 2, "mixed_precision": True},
    )

    model = load_model(result.model_path)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    best = min(result.history, key=lambda record: record["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert result.best_val_loss == pytest.approx(best["val_loss"])


# ---------------------------------------------------------------------------
# Resuming


class _Interrupt(Exception):
    pass


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Raise at the end of the first epoch, after the backup was written."""

    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupt


def test_interrupted_run_resumes_at_epoch_two(tmp_path, data):
    arguments = (data["tiny_train"], data["tiny_validation"])
    with pytest.raises(_Interrupt):
        train(*arguments, **_outputs(tmp_path), settings=TINY, callbacks=[_StopAfterFirstEpoch()])

    assert not (tmp_path / "model.keras").exists()
    progress = json.loads((tmp_path / "backup/progress.json").read_text())
    assert [record["epoch"] for record in progress["history"]] == [1]

    result = train(*arguments, **_outputs(tmp_path), settings=TINY)

    assert result.resumed_at == [2]
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert result.history[0] == progress["history"][0]
    assert json.loads((tmp_path / "history.json").read_text())["resumed_at"] == [2]
    assert len(pd.read_csv(tmp_path / "history.csv")) == 3
    assert not (tmp_path / "backup").exists()


def test_backup_of_other_settings_is_discarded(tmp_path, data):
    arguments = (data["tiny_train"], data["tiny_validation"])
    with pytest.raises(_Interrupt):
        train(*arguments, **_outputs(tmp_path), settings=TINY, callbacks=[_StopAfterFirstEpoch()])

    changed = {**TINY, "learning_rate": 0.002, "epochs": 1}
    result = train(*arguments, **_outputs(tmp_path), settings=changed)

    assert result.resumed_at == []
    assert [record["epoch"] for record in result.history] == [1]


@pytest.mark.slow
def test_killed_process_resumes(tmp_path, data):
    root = data["root"][0]
    output = tmp_path / "model"
    command = [
        sys.executable, "-m", "track_denoiser.cli", "train",
        "--root", str(root), "--train", "10", "12", "--validation", "12", "13",
        "--format", "compact", "--output-dir", str(output),
        "--epochs", "3", "--batch-size", "8", "--learning-rate", "0.01", "--seed", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = output / "backup/keras/training_metadata.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if metadata.is_file() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 1:
                break
            time.sleep(0.05)
        assert process.poll() is None, "training finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert not (output / "model.keras").exists()

    rerun = subprocess.run(command, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    summary = json.loads((output / "history.json").read_text())
    assert summary["resumed_at"][0] >= 2
    assert [record["epoch"] for record in summary["epochs"]] == [1, 2, 3]
    assert (output / "model.keras").is_file()
    assert not (output / "backup").exists()


# ---------------------------------------------------------------------------
# Early stopping and best weights, epoch by epoch


def _callback(tmp_path: Path, progress: _Progress, patience: int):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup = _BackupFolder(tmp_path / "backup")

    class _Data:
        def set_epoch(self, epoch):
            self.epoch = epoch

    callback = _make_progress_callback(progress, backup, _Data(), patience)
    callback.set_model(model)
    model.stop_training = False  # fit() sets this before the first epoch
    return callback, model, backup


def test_early_stopping_after_patience(tmp_path):
    progress = _Progress(fingerprint={})
    callback, model, backup = _callback(tmp_path, progress, patience=2)

    stopped_at = None
    for epoch, val_loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.4]):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        if model.stop_training:
            stopped_at = epoch + 1
            break

    assert stopped_at == 4
    assert progress.best_epoch == 2
    assert progress.best_val_loss == 0.5
    assert progress.stopped_early
    assert backup.best.is_file()
    saved = json.loads(backup.progress.read_text())
    assert [record["val_loss"] for record in saved["history"]] == [1.0, 0.5, 0.6, 0.7]


def test_early_stopping_counts_epochs_before_restart(tmp_path):
    progress = _Progress(fingerprint={})
    first, _, _ = _callback(tmp_path, progress, patience=2)
    for epoch, val_loss in enumerate([1.0, 0.5, 0.6]):
        first.on_epoch_begin(epoch)
        first.on_epoch_end(epoch, {"val_loss": val_loss})

    # A restart: the backup records three finished epochs.
    restored = _Progress.load(tmp_path / "backup/progress.json")
    second, model, _ = _callback(tmp_path, restored, patience=2)
    second.on_epoch_begin(3)
    second.on_epoch_end(3, {"val_loss": 0.65})

    assert model.stop_training
    assert restored.resumed_at == [4]
    assert [record["epoch"] for record in restored.history] == [1, 2, 3, 4]


def test_restart_drops_records_of_unfinished_epochs(tmp_path):
    progress = _Progress(fingerprint={})
    first, _, _ = _callback(tmp_path, progress, patience=5)
    for epoch in range(3):
        first.on_epoch_begin(epoch)
        first.on_epoch_end(epoch, {"val_loss": 1.0 - epoch / 10})

    # The Keras backup holds only two finished epochs (a kill between the saves).
    restored = _Progress.load(tmp_path / "backup/progress.json")
    second, _, _ = _callback(tmp_path, restored, patience=5)
    second.on_epoch_begin(2)

    assert [record["epoch"] for record in restored.history] == [1, 2]


def test_stopped_run_killed_while_saving_writes_outputs(tmp_path, data):
    arguments = (data["tiny_train"], data["tiny_validation"])
    with pytest.raises(_Interrupt):
        train(*arguments, **_outputs(tmp_path), settings=TINY, callbacks=[_StopAfterFirstEpoch()])
    # As if early stopping had ended the run and the job died before the outputs were written.
    state = json.loads((tmp_path / "backup/progress.json").read_text())
    state["stopped_early"] = True
    (tmp_path / "backup/progress.json").write_text(json.dumps(state))

    result = train(*arguments, **_outputs(tmp_path), settings=TINY)

    assert [record["epoch"] for record in result.history] == [1]
    assert result.stopped_early
    assert (tmp_path / "model.keras").is_file()
