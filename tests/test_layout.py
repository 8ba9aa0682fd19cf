"""``track-denoiser init`` and the data folder layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from track_denoiser.cli import main
from track_denoiser.layout import (
    DATA_FOLDERS,
    background_folder,
    init_layout,
    mode_folder,
    shard_folder,
)

EXPECTED_FOLDERS = {
    "data/x17/noisy",
    "data/x17/clean",
    "data/x17/gauge_backgrounds",
    "data/simulated/noisy",
    "data/simulated/clean",
    "data/labeling/noisy",
    "data/labeling/clean",
}


def _tree(root: Path) -> dict[str, tuple[bool, int]]:
    """Map every path under ``root`` to (is a folder, modification time in ns)."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_init_creates_tree(tmp_path: Path) -> None:
    root = tmp_path / "new_root"
    assert main(["init", str(root)]) == 0
    folders = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}
    leaves = {f for f in folders if not any(g.startswith(f + "/") for g in folders)}
    assert leaves == EXPECTED_FOLDERS
    assert set(DATA_FOLDERS) == EXPECTED_FOLDERS
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert main(["init", str(root)]) == 0
    event = root / "data/x17/noisy/track1.txt"
    event.write_text("0,0,0,1\n")
    before = _tree(root)

    assert main(["init", str(root)]) == 0
    assert _tree(root) == before
    assert event.read_text() == "0,0,0,1\n"


def test_init_layout_reports_created(tmp_path: Path) -> None:
    created = init_layout(tmp_path)
    assert {str(p.relative_to(tmp_path)) for p in created} == EXPECTED_FOLDERS
    assert init_layout(tmp_path) == []

    (tmp_path / "data/labeling/clean").rmdir()
    assert init_layout(tmp_path) == [tmp_path / "data/labeling/clean"]


def test_init_default_root_is_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert all((tmp_path / folder).is_dir() for folder in EXPECTED_FOLDERS)


def test_init_console_command(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "track_denoiser.cli", "init", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "data layout ready" in result.stderr
    assert all((tmp_path / folder).is_dir() for folder in EXPECTED_FOLDERS)


def test_init_on_a_file_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):  # noqa: PT011
        init_layout(tmp_path)
    assert blocker.read_text() == "not a folder"


def test_folder_helpers(tmp_path: Path) -> None:
    assert mode_folder("denoising") == "simulated"
    assert mode_folder("labeling") == "labeling"
    assert shard_folder(tmp_path, "denoising", "noisy") == tmp_path / "data/simulated/noisy"
    assert shard_folder(tmp_path, "labeling", "clean") == tmp_path / "data/labeling/clean"
    assert background_folder(tmp_path) == tmp_path / "data/x17/gauge_backgrounds"
    with pytest.raises(ValueError, match="'sideways'"):
        mode_folder("sideways")
    with pytest.raises(ValueError, match="'dirty'"):
        shard_folder(tmp_path, "denoising", "dirty")
