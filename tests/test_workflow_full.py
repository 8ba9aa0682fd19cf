"""The whole workflow through real Snakemake runs: layout to results/report.html."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.events import write_event
from track_denoiser.labels import write_labels
from workflow_helpers import DEFAULT_CONFIG, TINY_CONFIG, run_snakemake

pytestmark = pytest.mark.slow

# Two short CPU epochs and small figures keep the run to a couple of minutes.
FAST = """
training:
  epochs: 2
  patience: 1
evaluation:
  n_example_events: 1
  curve_steps: 100
  skip_first: 1
denoise:
  input: data/x17/noisy
"""


def _write_measured(root: Path) -> None:
    rng = np.random.default_rng(0)
    labels = {}
    for number in range(1, 7):
        noisy = np.zeros(EVENT_SHAPE, dtype=np.float32)
        clean = np.zeros(EVENT_SHAPE, dtype=np.float32)
        if number % 2:
            for i in range(6):
                noisy[2 + i, 3 + i // 2, 60 + 6 * i] = 400 + 20 * i
            clean[:] = noisy
        for _ in range(8):
            x, y, z = rng.integers(0, 12), rng.integers(0, 14), rng.integers(0, 200)
            noisy[x, y, z : z + 5] = rng.uniform(30, 150)
        write_event(root / "data/x17/noisy" / f"track{number}.txt", noisy)
        write_event(root / "data/x17/clean" / f"track{number}.txt", clean)
        labels[f"track{number}"] = number % 2
    write_labels(root / "data/x17/labels.txt", labels)


def test_workflow_runs_to_report(tmp_path):
    workdir = tmp_path / "wf"
    _write_measured(workdir)
    override = tmp_path / "fast.yaml"
    override.write_text(FAST)

    run_snakemake(workdir, "--cores", "2", configs=(DEFAULT_CONFIG, TINY_CONFIG, override))

    results = workdir / "results"
    for name in (
        "model/model.keras",
        "model/threshold.txt",
        "evaluation/metrics.csv",
        "plots/roc.png",
        "plots/example_0.png",
        "report.html",
        "denoised/summary.csv",
    ):
        assert (results / name).is_file(), name
    with open(results / "evaluation/metrics.csv", newline="") as handle:
        models = [row["model"] for row in csv.DictReader(handle)]
    assert models == ["trained", "baseline"]
    measured = json.loads((results / "evaluation/measured.json").read_text())
    assert measured["available"] is True
    assert [row["model"] for row in measured["rows"]] == ["trained", "baseline", "conventional"]
    with open(results / "denoised/summary.csv", newline="") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == [f"track{n}" for n in range(1, 7)]
    report = (results / "report.html").read_text()
    assert report.count("<img") == 5
    assert "conventional" in report

    # A second run has nothing to do.
    again = run_snakemake(
        workdir, "--cores", "2", "--dry-run", configs=(DEFAULT_CONFIG, TINY_CONFIG, override)
    )
    assert "Nothing to be done" in again.stdout + again.stderr
