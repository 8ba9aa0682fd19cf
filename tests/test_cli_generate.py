"""``track-denoiser generate``: flags, shard indices, overwriting, measured noise, formats."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from track_denoiser import constants as c
from track_denoiser.cli import main
from track_denoiser.generator import GeneratorSettings
from track_denoiser.production import generate_shards
from track_denoiser.shards import read_compact, shard_paths

EVENTS = 20


def generate(root: Path, *flags: str) -> int:
    """Run ``track-denoiser generate`` in this process with small shards."""
    return main(["generate", "--root", str(root), "--events-per-shard", str(EVENTS), *flags])


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _shard_files(root: Path) -> list[str]:
    return [name for name in _files(root) if name.endswith((".npy", ".npz"))]


def _error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------------------
# Flags


def test_denoising_flags(data_root: Path) -> None:
    assert generate(data_root, "-n", "2", "-l", "0", "-m", "0", "--seed", "3") == 0
    assert _shard_files(data_root) == [
        "data/simulated/clean/0.npy",
        "data/simulated/clean/1.npy",
        "data/simulated/noisy/0.npy",
        "data/simulated/noisy/1.npy",
    ]
    noisy = np.load(data_root / "data/simulated/noisy/1.npy")
    clean = np.load(data_root / "data/simulated/clean/1.npy")
    assert noisy.shape == (EVENTS, *c.EVENT_SHAPE)
    assert noisy.dtype == np.float16
    assert clean.shape == noisy.shape
    assert set(np.unique(clean).tolist()) == {0.0, 1.0}


def test_flags_match_library_settings(tmp_path: Path) -> None:
    cli_root, library_root = tmp_path / "cli", tmp_path / "library"
    flags = ["-n", "1", "-l", "1", "--seed", "9", "--entry", "all-faces"]
    assert generate(cli_root, *flags) == 0
    settings = GeneratorSettings(mode="labeling", entry="all-faces", events_per_shard=EVENTS)
    generate_shards(library_root, settings, 9, [0], "npy")
    assert _files(cli_root) == _files(library_root)


def test_labeling_flag(data_root: Path) -> None:
    assert generate(data_root, "-n", "1", "-l", "1") == 0
    assert _shard_files(data_root) == ["data/labeling/clean/0.npy", "data/labeling/noisy/0.npy"]
    labels = np.load(data_root / "data/labeling/clean/0.npy")
    assert labels.shape == (EVENTS,)
    assert labels.dtype == np.float16
    assert set(np.unique(labels).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("noise", ["1", "2"])
def test_measured_noise_flag(data_root: Path, write_backgrounds, noise: str) -> None:
    write_backgrounds(data_root / "data/x17/gauge_backgrounds", 3, 400)
    assert generate(data_root, "-n", "1", "-m", noise, "--background-scale", "1") == 0
    noisy = np.load(data_root / "data/simulated/noisy/0.npy").astype(np.float64)
    clean = np.load(data_root / "data/simulated/clean/0.npy")
    # Background amplitudes 400, 401, 402 (unscaled) fill every pad of measured-noise events.
    measured = noisy.max(axis=(1, 2, 3)) >= 400
    if noise == "1":
        assert measured.all()
    else:
        assert 0 < measured.sum() < EVENTS
    background = (noisy >= 400) & (clean == 0)
    assert (background.sum(axis=(1, 2, 3))[measured] <= c.N_X * c.N_Y).all()
    assert (noisy[~measured] <= 1.0).all()


def test_default_background_scale(data_root: Path, write_backgrounds) -> None:
    write_backgrounds(data_root / "data/x17/gauge_backgrounds", 1, 400)
    assert generate(data_root, "-n", "1", "-m", "1") == 0
    noisy = np.load(data_root / "data/simulated/noisy/0.npy")
    clean = np.load(data_root / "data/simulated/clean/0.npy")
    noise_values = np.unique(noisy[(clean == 0) & (noisy != 0)])
    assert noise_values.tolist() == [float(np.float16(400 / c.SATURATION_ADC))]


@pytest.mark.parametrize("flags", [["-n", "0"], ["-n", "-1"], ["-n", "1", "--first-index", "-2"]])
def test_invalid_values_rejected(
    data_root: Path, caplog: pytest.LogCaptureFixture, flags: list[str]
) -> None:
    assert generate(data_root, *flags) == 2
    assert any("invalid" in m for m in _error_messages(caplog))
    assert _shard_files(data_root) == []


@pytest.mark.parametrize("flags", [["-n", "1", "-l", "2"], ["-n", "1", "-m", "3"], ["-l", "0"]])
def test_flag_choices_enforced(data_root: Path, flags: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        generate(data_root, *flags)
    assert info.value.code == 2
    assert _shard_files(data_root) == []


# ---------------------------------------------------------------------------
# Shard indices and overwriting


def test_continues_after_highest_index(data_root: Path) -> None:
    assert generate(data_root, "-n", "2") == 0
    assert generate(data_root, "-n", "1") == 0
    assert (data_root / "data/simulated/noisy/2.npy").is_file()

    # A compact shard counts too; labeling shards are numbered on their own.
    assert generate(data_root, "-n", "1", "--first-index", "6", "--format", "compact") == 0
    assert generate(data_root, "-n", "1") == 0
    assert (data_root / "data/simulated/noisy/7.npy").is_file()
    assert generate(data_root, "-n", "1", "-l", "1") == 0
    assert (data_root / "data/labeling/noisy/0.npy").is_file()
    assert len(_shard_files(data_root)) == 2 * 4 + 1 + 2


def test_continued_shards_equal_one_run(tmp_path: Path) -> None:
    assert generate(tmp_path / "a", "-n", "3", "--seed", "4") == 0
    assert generate(tmp_path / "b", "-n", "1", "--seed", "4") == 0
    assert generate(tmp_path / "b", "-n", "2", "--seed", "4") == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_existing_shard_refused(data_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert generate(data_root, "-n", "2") == 0
    before = _files(data_root)

    assert generate(data_root, "-n", "3", "--first-index", "1", "--seed", "8") == 2
    messages = _error_messages(caplog)
    assert len(messages) == 1
    assert str(shard_paths(data_root, "denoising", 1).noisy) in messages[0]
    assert "--overwrite" in messages[0]
    assert _files(data_root) == before


def test_existing_compact_shard_refused(data_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert generate(data_root, "-n", "1", "--format", "compact") == 0
    before = _files(data_root)
    assert generate(data_root, "-n", "1", "--first-index", "0", "--format", "compact") == 2
    assert str(shard_paths(data_root, "denoising", 0).compact) in _error_messages(caplog)[0]
    assert _files(data_root) == before


def test_overwrite_replaces(data_root: Path) -> None:
    assert generate(data_root, "-n", "2", "--seed", "1") == 0
    before = _files(data_root)
    assert generate(data_root, "-n", "1", "--first-index", "1", "--seed", "2", "--overwrite") == 0
    after = _files(data_root)
    assert after.keys() == before.keys()
    assert after["data/simulated/noisy/0.npy"] == before["data/simulated/noisy/0.npy"]
    assert after["data/simulated/noisy/1.npy"] != before["data/simulated/noisy/1.npy"]
    assert not [p for p in data_root.rglob(".*")]


def test_refusal_from_console(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("track-denoiser")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "track_denoiser.cli"]
    base = [*command, "generate", "--root", str(tmp_path), "--events-per-shard", "5", "-n", "1"]
    first = subprocess.run(
        [*base, "--first-index", "0"], capture_output=True, text=True, check=False
    )
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [*base, "--first-index", "0"], capture_output=True, text=True, check=False
    )
    assert second.returncode == 2
    assert str(tmp_path / "data/simulated/noisy/0.npy") in second.stderr
    assert "Traceback" not in second.stderr


# ---------------------------------------------------------------------------
# Measured noise without background events


@pytest.mark.parametrize("noise", ["1", "2"])
def test_missing_backgrounds(tmp_path: Path, caplog: pytest.LogCaptureFixture, noise: str) -> None:
    root = tmp_path / "fresh"
    assert generate(root, "-n", "1", "-m", noise) == 2
    message = _error_messages(caplog)[0]
    assert str(root / "data/x17/gauge_backgrounds") in message
    assert "track<N>.txt" in message
    assert "noise mode 0" in message
    assert _shard_files(root) == []


def test_empty_backgrounds_folder(data_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = data_root / "data/x17/gauge_backgrounds"
    (folder / "README.txt").write_text("noise-only events go here\n")
    assert generate(data_root, "-n", "1", "-m", "1") == 2
    message = _error_messages(caplog)[0]
    assert str(folder) in message
    assert "holds no event files" in message
    assert _shard_files(data_root) == []


def test_background_folder_that_is_a_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    (root / "data/x17").mkdir(parents=True)
    (root / "data/x17/gauge_backgrounds").write_text("")
    assert generate(root, "-n", "1", "-m", "1") == 2
    assert str(root / "data/x17/gauge_backgrounds") in _error_messages(caplog)[0]
    assert _shard_files(root) == []


# ---------------------------------------------------------------------------
# Compact format


def test_compact_format(data_root: Path) -> None:
    assert generate(data_root, "-n", "2", "--format", "compact", "--seed", "6") == 0
    assert _shard_files(data_root) == [
        "data/simulated/compact/0.npz",
        "data/simulated/compact/1.npz",
    ]
    events, record = read_compact(data_root / "data/simulated/compact/1.npz", mode="denoising")
    assert events.n_events == EVENTS
    assert record["seed"] == 6
    assert record["shard_index"] == 1
    assert record["entry"] == "paper"
    assert record["noise"] == 0


def test_compact_equals_npy(tmp_path: Path) -> None:
    assert generate(tmp_path / "npy", "-n", "1", "-l", "1", "--seed", "2") == 0
    assert (
        generate(tmp_path / "compact", "-n", "1", "-l", "1", "--seed", "2", "--format", "compact")
        == 0
    )
    assert (
        main(["convert", "--to", "npy", "--mode", "labeling", "--root", str(tmp_path / "compact")])
        == 0
    )
    for kind in ("noisy", "clean"):
        relative = f"data/labeling/{kind}/0.npy"
        assert (tmp_path / "npy" / relative).read_bytes() == (
            tmp_path / "compact" / relative
        ).read_bytes()
