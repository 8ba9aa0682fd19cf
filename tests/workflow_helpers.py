"""Run the repository's Snakemake workflow in a temporary folder for tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"


def run_snakemake(
    workdir: Path,
    *args: str,
    configs: tuple[Path, ...] = (DEFAULT_CONFIG, TINY_CONFIG),
    check: bool = True,
    timeout: float = 1200,
) -> subprocess.CompletedProcess[str]:
    """Run ``snakemake`` on the repository's Snakefile in ``workdir``.

    The default config comes first and the tiny test config overrides it;
    extra ``args`` (targets, ``--cores``, ``--config``) follow.
    """
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        *args,
        # Last, because --configfile takes every value up to the next option.
        "--configfile",
        *map(str, configs),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def jobs_planned(
    workdir: Path, *args: str, configs: tuple[Path, ...] = (DEFAULT_CONFIG, TINY_CONFIG)
) -> dict[str, int]:
    """Return the number of jobs per rule that a dry run would execute."""
    result = run_snakemake(workdir, *args, "--dry-run", "--quiet", "rules", configs=configs)
    counts: dict[str, int] = {}
    in_table = False
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts
