"""Figures and the HTML report built from a real evaluation."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from track_denoiser.cli import main
from track_denoiser.constants import EVENT_SHAPE
from track_denoiser.evaluation import EvaluationSettings, build_rows, evaluate, find_measured_data
from track_denoiser.events import write_event
from track_denoiser.generator import GeneratorSettings
from track_denoiser.labels import write_labels
from track_denoiser.plotting import PLOT_FILES, plot_results
from track_denoiser.production import generate_shards
from track_denoiser.report import build_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with small shards and a few labelled measured events."""
    root = tmp_path_factory.mktemp("root")
    for mode in ("denoising", "labeling"):
        generate_shards(
            root,
            GeneratorSettings(mode=mode, events_per_shard=24),
            9,
            [0],
            "compact",
            progress=False,
        )

    noisy, clean = root / "data" / "x17" / "noisy", root / "data" / "x17" / "clean"
    labels = {}
    for number in range(1, 5):
        event = np.zeros(EVENT_SHAPE, dtype=np.float32)
        if number % 2:
            for i in range(5):
                event[i, i, 50 + 3 * i] = 250.0
            write_event(clean / f"track{number}.txt", event)
        event[11, 13, 100:106] = 90.0
        write_event(noisy / f"track{number}.txt", event)
        labels[f"track{number}"] = number % 2
    write_labels(root / "data" / "x17" / "labels.txt", labels)
    return root


@pytest.fixture(scope="module")
def evaluation_dir(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Evaluation results of the baseline, with the measured events."""
    out = tmp_path_factory.mktemp("evaluation")
    settings = EvaluationSettings(n_example_events=2, skip_first=0, curve_steps=100)
    measured, reason = find_measured_data(root, "data/x17/labels.txt")
    assert measured is not None, reason
    evaluate(
        build_rows(None, None, [], settings.baseline),
        data_root=root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=out,
        settings=settings,
        measured=measured,
    )
    return out


def _history(path: Path) -> Path:
    pd.DataFrame(
        {"epoch": [1, 2, 3], "loss": [0.5, 0.3, 0.2], "val_loss": [0.6, 0.4, 0.35]}
    ).to_csv(path, index=False)
    return path


def test_plot_results_writes_pngs(evaluation_dir, tmp_path):
    written = plot_results(
        evaluation_dir, tmp_path / "plots", history=_history(tmp_path / "history.csv"), n_examples=3
    )
    names = [p.name for p in written]
    assert names == [*PLOT_FILES, "example_0.png", "example_1.png", "example_2.png"]
    for path in written:
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert path.stat().st_size > 5000
    # No temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(names)


def test_report_contains_tables_and_embedded_images(evaluation_dir, tmp_path):
    plots = plot_results(
        evaluation_dir, tmp_path / "plots", history=_history(tmp_path / "history.csv")
    )
    page = build_report(evaluation_dir, plots, tmp_path / "report.html")
    text = page.read_text()

    assert text.count("<table") == 5  # models, voxel, event, line fit, measured
    for heading in (
        "Voxel level",
        "Event level",
        "Straight-line fit",
        "Measured events with hand labels",
    ):
        assert heading in text
    assert "baseline" in text
    assert "conventional" in text
    assert "ROC AUC" in text
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == len(plots) == len(PLOT_FILES) + 2
    for data in images:
        assert base64.b64decode(data).startswith(PNG_SIGNATURE)


def test_report_links_images_relatively(evaluation_dir, tmp_path):
    plots = plot_results(evaluation_dir, tmp_path / "results" / "plots", n_examples=0)
    page = build_report(
        evaluation_dir, plots, tmp_path / "results" / "report.html", embed_images=False
    )
    sources = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert sources == [f"plots/{name}" for name in PLOT_FILES]
    for source in sources:
        assert (page.parent / source).is_file()


def test_report_without_measured_data(root, tmp_path):
    settings = EvaluationSettings(n_example_events=0, curve_steps=50)
    evaluate(
        build_rows(None, None, [], settings.baseline),
        data_root=root,
        shard_format="compact",
        test_shards=[0],
        labeling_shards=[0],
        output_dir=tmp_path / "evaluation",
        settings=settings,
        measured_reason="label file data/x17/labels.txt not found",
    )
    page = build_report(tmp_path / "evaluation", [], tmp_path / "report.html")
    text = page.read_text()
    assert "Not available: label file data/x17/labels.txt not found." in text
    assert text.count("<table") == 4


def test_evaluate_command_writes_report(root, tmp_path):
    import keras

    from track_denoiser.models import build_model

    keras.utils.set_random_seed(1)
    model_file = tmp_path / "model" / "model.keras"
    model_file.parent.mkdir()
    build_model("paper").save(model_file)
    (tmp_path / "config.yaml").write_text(
        "evaluation:\n  n_example_events: 1\n  curve_steps: 50\n  skip_first: 0\n"
    )

    status = main(
        [
            "evaluate",
            "--model",
            str(model_file),
            "--threshold",
            "0.5",
            "--root",
            str(root),
            "--format",
            "compact",
            "--test",
            "0",
            "1",
            "--labeling",
            "0",
            "1",
            "--config",
            str(tmp_path / "config.yaml"),
            "--compare",
            f"again={model_file}@0.5",
            "--output",
            str(tmp_path / "evaluation"),
            "--report",
            str(tmp_path / "report.html"),
        ]
    )

    assert status == 0
    metrics = pd.read_csv(tmp_path / "evaluation" / "metrics.csv")
    assert metrics["model"].tolist() == ["trained", "again", "baseline"]
    assert metrics.loc[1, "f1"] == pytest.approx(metrics.loc[0, "f1"])
    measured = pd.read_csv(tmp_path / "evaluation" / "measured.csv")
    assert measured["model"].tolist() == ["trained", "again", "baseline", "conventional"]
    assert (tmp_path / "plots" / "example_0.png").is_file()
    assert "trained" in (tmp_path / "report.html").read_text()
