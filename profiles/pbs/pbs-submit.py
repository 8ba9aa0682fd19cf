#!/usr/bin/env python3
"""Submit one Snakemake job to PBS Pro or OpenPBS and print its job id.

The cluster-generic executor calls ``pbs-submit.py JOBSCRIPT``. The job's
properties (rule, threads, resources) are embedded in the job script as a
``# properties = {...}`` line, which ``snakemake.utils.read_job_properties``
reads. The script builds one ``qsub`` call::

    qsub -N RULE
         -l select=1:ncpus=THREADS:mem=MEM_MBmb:scratch_local=DISK_MBmb[:ngpus=GPU[:gpu_cap=CAP]]
         -l walltime=HH:MM:SS
         -o logs/pbs/RULE.JOBID.STAMP.out -e logs/pbs/RULE.JOBID.STAMP.err
         -v PATH,LANG,...
         [-q QUEUE]
         JOBSCRIPT

and prints only the id that qsub returns (``12345.pbs-m1.metacentrum.cz``),
because Snakemake takes the first line of stdout as the job id. Everything
else goes to stderr.

Resources read from the job (all totals for the one chunk):
    threads -> ncpus; mem_mb -> mem (MB); disk_mb -> scratch_local (MB);
    runtime (minutes) -> walltime; gpu -> ngpus (omitted when 0);
    gpu_cap -> gpu_cap, only for GPU jobs (``compute_70`` means compute
    capability 7.0 or newer, ``sm_75,sm_86`` an explicit list);
    pbs_queue -> ``-q`` for every job when not empty;
    pbs_gpu_queue -> ``-q`` for GPU jobs when pbs_queue is empty.
The profile's ``default-resources`` gives every one of them a value.

On MetaCentrum leave both queues empty: the default routing queue sends jobs
with ``ngpus > 0`` to the GPU queues by their walltime.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "build_qsub_command",
    "job_name",
    "log_paths",
    "main",
    "select_statement",
    "submit",
    "walltime",
]

logger = logging.getLogger("pbs-submit")

LOG_DIR = Path("logs/pbs")

# Variables handed from the submitting environment to the job (qsub -v):
# PATH finds the same Python, Snakemake and apptainer as the driver, and
# XDG_CACHE_HOME keeps Snakemake's source cache off the small home quota.
# Variables that describe the driver's own job (SCRATCHDIR, TMPDIR, PBS_*,
# CUDA_VISIBLE_DEVICES) are deliberately not copied, which rules out -V.
EXPORTED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "XDG_CACHE_HOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "APPTAINER_CACHEDIR",
    "SINGULARITY_CACHEDIR",
)

# PBS Pro limits job names to 236 characters; only these characters are safe
# (PBS rejects among others = , / % @ and parentheses).
MAX_JOB_NAME_LENGTH = 236
UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.+-]")
GPU_CAP_TOKEN = re.compile(r"[A-Za-z0-9_]+")
JOB_ID_PATTERN = re.compile(r"\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.-]+)?")

# A failed qsub is retried after these delays (seconds); the PBS server is
# sometimes briefly unreachable from busy frontends.
QSUB_RETRY_DELAYS_S = (10.0, 30.0)
QSUB_TIMEOUT_S = 120.0


class SubmitError(Exception):
    """The job cannot be submitted (bad resources or a failing qsub)."""


def _read_properties_line(jobscript: str) -> dict[str, Any] | None:
    # The same format that snakemake.utils.read_job_properties reads: one
    # "# properties = <JSON>" line.
    with open(jobscript, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("# properties = "):
                return json.loads(line[len("# properties = ") :])
    return None


def read_properties(jobscript: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the job properties that Snakemake embedded in ``jobscript``.

    Uses ``snakemake.utils.read_job_properties``; when the ``python3`` that
    runs this script has no Snakemake (the driver was started without
    activating its environment), the line is parsed directly.
    """
    try:
        from snakemake.utils import read_job_properties
    except ImportError:
        read_job_properties = _read_properties_line

    properties = read_job_properties(os.fspath(jobscript))
    if not isinstance(properties, dict):
        msg = f"{jobscript}: no '# properties = {{...}}' line; is it a Snakemake job script?"
        raise SubmitError(msg)
    return properties


def job_name(properties: Mapping[str, Any]) -> str:
    """Return a PBS-safe job name: the rule name, or ``group_<id>`` for group jobs.

    Wildcard values are left out, because they contain ``=`` and ``,`` that
    PBS rejects; the log file names carry the Snakemake job id instead.
    """
    if properties.get("type") == "group":
        raw = f"group_{properties.get('groupid', 'job')}"
    else:
        raw = str(properties.get("rule", "snakejob"))

    name = UNSAFE_NAME_CHARACTERS.sub("_", raw)
    # PBS rejects a leading dot; start with a letter or digit to be safe.
    name = name.lstrip("._+-")
    if not name:
        name = "snakejob"
    return name[:MAX_JOB_NAME_LENGTH]


def walltime(runtime_minutes: float) -> str:
    """Format a runtime in minutes as PBS ``hh:mm:ss`` (at least one minute)."""
    if isinstance(runtime_minutes, bool) or not isinstance(runtime_minutes, int | float):
        msg = f"resources.runtime must be a number of minutes, got {runtime_minutes!r}"
        raise SubmitError(msg)
    total_minutes = max(1, math.ceil(runtime_minutes))
    hours, minutes = divmod(total_minutes, 60)
    return f"{hours:02d}:{minutes:02d}:00"


def _positive_int(resources: Mapping[str, Any], key: str, minimum: int) -> int:
    value = resources.get(key)
    if value is None:
        msg = (
            f"resources.{key} is not set for this job; give it a value in the rule "
            "or in default-resources of profiles/pbs/config.yaml"
        )
        raise SubmitError(msg)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"resources.{key} must be an integer >= {minimum}, got {value!r}"
        raise SubmitError(msg)
    return value


def _gpu_count(resources: Mapping[str, Any]) -> int:
    value = resources.get("gpu", 0) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"resources.gpu must be a non-negative integer, got {value!r}"
        raise SubmitError(msg)
    return value


def _gpu_cap(resources: Mapping[str, Any]) -> str | None:
    value = str(resources.get("gpu_cap") or "").strip().strip("'\"")
    if not value:
        return None
    tokens = [token.strip() for token in value.split(",")]
    if not all(GPU_CAP_TOKEN.fullmatch(token) for token in tokens):
        msg = (
            f"resources.gpu_cap must be compute_XY, sm_XY or a comma-separated list of "
            f"them, got {value!r}"
        )
        raise SubmitError(msg)
    joined = ",".join(tokens)
    # Inside -l a comma separates resources, so a list of capabilities is
    # passed in double quotes; qsub receives the quotes literally (no shell).
    return f'"{joined}"' if len(tokens) > 1 else joined


def select_statement(properties: Mapping[str, Any]) -> str:
    """Build the one-chunk ``select`` value from the job's threads and resources."""
    resources = properties.get("resources") or {}
    threads = properties.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        msg = f"threads must be a positive integer, got {threads!r}"
        raise SubmitError(msg)
    mem_mb = _positive_int(resources, "mem_mb", 1)
    disk_mb = _positive_int(resources, "disk_mb", 1)

    chunk = f"1:ncpus={threads}:mem={mem_mb}mb:scratch_local={disk_mb}mb"
    gpus = _gpu_count(resources)
    if gpus > 0:
        chunk += f":ngpus={gpus}"
        cap = _gpu_cap(resources)
        if cap is not None:
            chunk += f":gpu_cap={cap}"
    return chunk


def queue_for(properties: Mapping[str, Any]) -> str | None:
    """Return the queue for ``-q``, or ``None`` for the server's default queue."""
    resources = properties.get("resources") or {}
    queue = str(resources.get("pbs_queue") or "").strip()
    if not queue and _gpu_count(resources) > 0:
        queue = str(resources.get("pbs_gpu_queue") or "").strip()
    if queue and not re.fullmatch(r"[A-Za-z0-9_.@-]+", queue):
        msg = f"invalid PBS queue name {queue!r} in resources.pbs_queue/pbs_gpu_queue"
        raise SubmitError(msg)
    return queue or None


def log_paths(properties: Mapping[str, Any], log_dir: Path, now: datetime) -> tuple[Path, Path]:
    """Return absolute paths for the job's PBS output and error files.

    The names are known before submission (PBS would otherwise name them
    after the job id): ``<name>.<snakemake job id>.<YYYYmmdd-HHMMSS.mmm>``.
    """
    stamp = now.strftime("%Y%m%d-%H%M%S.%f")[:-3]
    jobid = UNSAFE_NAME_CHARACTERS.sub("_", str(properties.get("jobid", "x")))
    stem = f"{job_name(properties)}.{jobid}.{stamp}"
    directory = log_dir.resolve()
    return directory / f"{stem}.out", directory / f"{stem}.err"


def build_qsub_command(
    properties: Mapping[str, Any],
    jobscript: str | os.PathLike[str],
    *,
    log_dir: Path = LOG_DIR,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Build the ``qsub`` argument list for one job.

    Args:
        properties: the job properties from the job script.
        jobscript: path of the job script to submit.
        log_dir: directory for the PBS output and error files.
        environ: environment to take the ``-v`` variable names from
            (default ``os.environ``); only variables that are set are listed.
        now: time used in the log file names (default: now).
    """
    environ = os.environ if environ is None else environ
    now = datetime.now() if now is None else now
    resources = properties.get("resources") or {}

    output, error = log_paths(properties, log_dir, now)
    # PATH is always listed: without it the job would get the system default.
    exported = [name for name in EXPORTED_VARIABLES if name == "PATH" or name in environ]

    command = [
        "qsub",
        "-N",
        job_name(properties),
        "-l",
        f"select={select_statement(properties)}",
        "-l",
        f"walltime={walltime(_positive_int(resources, 'runtime', 1))}",
        "-o",
        str(output),
        "-e",
        str(error),
        "-v",
        ",".join(exported),
    ]
    queue = queue_for(properties)
    if queue is not None:
        command += ["-q", queue]
    command.append(str(Path(jobscript).resolve()))
    return command


def submit(
    command: Sequence[str],
    *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    sleep: Callable[[float], None] = time.sleep,
    retry_delays_s: Sequence[float] = QSUB_RETRY_DELAYS_S,
) -> str:
    """Run qsub, retrying after the given delays, and return the job id.

    Raises:
        SubmitError: qsub failed on every attempt or printed no job id.
    """
    attempts = len(retry_delays_s) + 1
    problem = ""
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            delay = retry_delays_s[attempt - 2]
            logger.warning(
                "attempt %d of %d failed (%s); retrying in %.0f s",
                attempt - 1,
                attempts,
                problem,
                delay,
            )
            sleep(delay)
        try:
            result = run(
                list(command),
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
                timeout=QSUB_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            problem = f"qsub did not return within {QSUB_TIMEOUT_S:.0f} s"
        except OSError as error:
            problem = f"cannot run qsub: {error}"
        else:
            if result.returncode == 0:
                lines = result.stdout.strip().splitlines()
                job_id = lines[0].strip() if lines else ""
                if JOB_ID_PATTERN.fullmatch(job_id):
                    return job_id
                msg = f"qsub succeeded but printed no job id: {result.stdout!r}"
                raise SubmitError(msg)
            problem = (
                f"qsub exited with {result.returncode}: {(result.stderr or result.stdout).strip()}"
            )

    msg = f"submission failed after {attempts} attempts; last error: {problem}"
    raise SubmitError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    """Submit the job script named by the last argument; print the job id."""
    logging.basicConfig(format="pbs-submit: %(message)s", level=logging.INFO, stream=sys.stderr)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        logger.error("usage: pbs-submit.py JOBSCRIPT")
        return 2
    jobscript = args[-1]

    try:
        properties = read_properties(jobscript)
        command = build_qsub_command(properties, jobscript)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        job_id = submit(command)
    except (SubmitError, OSError) as error:
        logger.error("%s: %s", jobscript, error)
        return 1

    output = command[command.index("-o") + 1]
    logger.info("%s submitted as %s; PBS output file %s", job_name(properties), job_id, output)
    print(job_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
