"""Training and threshold selection through real Snakemake runs on the tiny config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from track_denoiser.models import load_model
from track_denoiser.threshold import read_threshold
from workflow_helpers import DEFAULT_CONFIG, SNAKEFILE, TINY_CONFIG, jobs_planned, run_snakemake

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "rules/train.smk" not in SNAKEFILE.read_text(encoding="utf-8"),
        reason="the Snakefile does not include workflow/rules/train.smk",
    ),
]

TARGET = "results/model/threshold.txt"

# Two quick CPU epochs on the tiny config's 300 training events.
SHORT_TRAINING = """
training:
  epochs: 2
  batch_size: 8
  learning_rate: 0.03
threshold:
  steps: 100
"""


def _configs(tmp_path: Path, name: str, text: str) -> tuple[Path, ...]:
    override = tmp_path / f"{name}.yaml"
    override.write_text(text)
    return (DEFAULT_CONFIG, TINY_CONFIG, override)


def test_training_and_threshold_rules(tmp_path):
    workdir = tmp_path / "run"
    configs = _configs(tmp_path, "short", SHORT_TRAINING)
    run_snakemake(workdir, "--cores", "2", TARGET, configs=configs)

    model_dir = workdir / "results/model"
    history = pd.read_csv(model_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert (model_dir / "history.json").is_file()
    assert load_model(model_dir / "model.keras").count_params() == 4290
    assert 0.0 <= read_threshold(model_dir / "threshold.txt") <= 1.0
    scan = pd.read_csv(model_dir / "threshold_scan.csv")
    assert len(scan) == 101

    # The network learned: validation F1 at the chosen threshold lies far
    # above the all-track guess (threshold 0 keeps every voxel) and the
    # all-noise guess (F1 = 0).
    tau = read_threshold(model_dir / "threshold.txt")
    chosen_f1 = float(scan.loc[(scan["threshold"] - tau).abs().idxmin(), "f1"])
    all_track_f1 = float(scan.loc[scan["threshold"] == 0.0, "f1"].iloc[0])
    assert chosen_f1 > 0.2
    assert chosen_f1 > 20 * all_track_f1
    assert not (model_dir / "backup").exists()
    assert (workdir / "logs/train_model/train_model.log").stat().st_size > 0
    assert (workdir / "logs/select_threshold/select_threshold.log").stat().st_size > 0

    assert jobs_planned(workdir, TARGET, configs=configs) == {}

    # A training setting retrains and reselects; the shards stay.
    retrain = _configs(tmp_path, "retrain", SHORT_TRAINING.replace("0.03", "0.01"))
    assert jobs_planned(workdir, TARGET, configs=retrain) == {
        "train_model": 1,
        "select_threshold": 1,
    }

    # A threshold setting reruns only the selection.
    reselect = _configs(tmp_path, "reselect", SHORT_TRAINING + "  metric: balanced\n")
    assert jobs_planned(workdir, TARGET, configs=reselect) == {"select_threshold": 1}
