"""The workflow's first stages through real Snakemake runs: layout and shards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import DEFAULT_CONFIG, REPO, TINY_CONFIG, jobs_planned, run_snakemake

pytestmark = pytest.mark.slow

SHARDS = [f"data/simulated/compact/{i}.npz" for i in range(5)] + ["data/labeling/compact/0.npz"]


def _with_override(tmp_path: Path, text: str) -> tuple[Path, ...]:
    override = tmp_path / "override.yaml"
    override.write_text(text)
    return (DEFAULT_CONFIG, TINY_CONFIG, override)


def _shard_bytes(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in SHARDS}


def test_shards_identical_across_cores_and_order(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    run_snakemake(serial, "--cores", "1", *SHARDS)
    run_snakemake(parallel, "--cores", "2", *reversed(SHARDS))

    assert (serial / "data/x17/gauge_backgrounds").is_dir()
    assert _shard_bytes(serial) == _shard_bytes(parallel)


def test_shards_match_generate_command(tmp_path):
    run_snakemake(tmp_path / "wf", "--cores", "2", SHARDS[0], SHARDS[1])
    command = [
        sys.executable,
        "-m",
        "track_denoiser.cli",
        "generate",
        "-n",
        "2",
        "-l",
        "0",
        "-m",
        "0",
        "--seed",
        "7",
        "--events-per-shard",
        "100",
        "--format",
        "compact",
        "--root",
        str(tmp_path / "cli"),
    ]
    subprocess.run(command, check=True, capture_output=True)

    for name in SHARDS[:2]:
        assert (tmp_path / "wf" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


def test_config_edit_reruns_only_affected_shards(tmp_path):
    run_snakemake(tmp_path, "--cores", "2", *SHARDS)

    assert jobs_planned(tmp_path, *SHARDS) == {}

    # A wider labeling range adds one shard and touches nothing else.
    configs = _with_override(tmp_path, "shards:\n  labeling_test: [0, 2]\n")
    wider = jobs_planned(tmp_path, *SHARDS, "data/labeling/compact/1.npz", configs=configs)
    assert wider == {"generate_shard": 1}

    # A generator setting changes every shard.
    configs = _with_override(tmp_path, "generator:\n  events_per_shard: 50\n")
    edited = jobs_planned(tmp_path, *SHARDS, configs=configs)
    assert edited == {"generate_shard": len(SHARDS)}


def test_failed_generation_leaves_no_shard(tmp_path):
    # Noise mode 1 needs measured noise events; the folder exists but is empty.
    (tmp_path / "data/x17/gauge_backgrounds").mkdir(parents=True)
    configs = _with_override(tmp_path, "shards:\n  denoising_noise: 1\n")
    result = run_snakemake(tmp_path, "--cores", "1", SHARDS[0], configs=configs, check=False)

    assert result.returncode != 0
    assert not (tmp_path / SHARDS[0]).exists()
    assert not list((tmp_path / "data/simulated").rglob("*.npz"))
    log = (tmp_path / "logs/generate_shard/simulated_0.log").read_text()
    assert "holds no event files" in log


def test_lint_and_format():
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

    files = [str(REPO / "Snakefile"), *map(str, (REPO / "workflow/rules").glob("*.smk"))]
    snakefmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert snakefmt.returncode == 0, snakefmt.stdout + snakefmt.stderr
