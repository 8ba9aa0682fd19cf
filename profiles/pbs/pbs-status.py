#!/usr/bin/env python3
"""Report the state of one PBS job to Snakemake: ``running``, ``success`` or ``failed``.

The cluster-generic executor calls ``pbs-status.py JOB_ID`` for every active
job. Any other output, or a non-zero exit code, aborts the whole Snakemake
run, so this script always exits 0 and prints exactly one of the three words.
It uses only the standard library, to start fast on busy frontends.

The job is queried with ``qstat -x -f JOB_ID`` (one job per call; ``-x``
includes finished jobs from the server's job history).

PBS states (PBS Pro / OpenPBS):
    Q queued, H held, W waiting for its start time, T being moved,
    S and U suspended, B array job started, R running, E exiting
        -> ``running``. A held job stays ``running`` until someone releases
        (``qrls``) or deletes (``qdel``) it; each check logs a warning.
    M moved to another server -> queried again there as ``JOB_ID@SERVER``
        (server taken from the ``queue = NAME@SERVER`` attribute).
    F finished, X finished subjob -> decided by ``Exit_status``:
        0 -> ``success``; negative (PBS killed or could not start the job,
        e.g. -29 walltime, -27 memory, -25 CPU use, -23 no Kerberos ticket)
        -> ``failed``; 1-255 (the job script's exit code) -> ``failed``;
        256 + n (killed by signal n, 271 = SIGTERM, e.g. ``qdel``)
        -> ``failed``; no ``Exit_status`` -> ``failed``.

Errors:
    When qstat fails (server unreachable, timeout, expired Kerberos ticket),
    the query is repeated after 5 s and 15 s. If it still fails, the job is
    reported ``running`` and the error is logged, so a short outage never
    aborts the run. A parse problem is handled the same way.

Unknown job id (qstat exit code 153, "Unknown Job Id"): reported as
``success``, with a warning. Servers keep finished jobs only for a while
(MetaCentrum: 24 h; servers with job history disabled: not at all), so an
unknown id usually belongs to a job that ended long ago, typically when a
stopped Snakemake run is resumed. ``success`` makes Snakemake check that
every output of the job exists (waiting ``latency-wait`` seconds), and it
fails the job when one is missing. Every output of this workflow is written
under a temporary name and renamed when complete, so a full set of outputs
means the job did its work; ``failed`` would instead delete the finished
outputs of a job that may have run for hours.

Warnings and errors go to stderr (shown in Snakemake's output) and are
appended to ``logs/pbs/status.log``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "QstatResult",
    "classify_record",
    "describe_exit_status",
    "job_status",
    "main",
    "parse_qstat_full",
    "query_job",
]

logger = logging.getLogger("pbs-status")

LOG_FILE = Path("logs/pbs/status.log")

QSTAT_TIMEOUT_S = 60.0
QSTAT_RETRY_DELAYS_S = (5.0, 15.0)
# qstat's exit code for PBSE_UNKJOBID (15001 modulo 256).
UNKNOWN_JOB_EXIT_CODE = 153

RUNNING = "running"
SUCCESS = "success"
FAILED = "failed"

ACTIVE_STATES = {
    "Q": "queued",
    "H": "held",
    "W": "waiting for its start time",
    "T": "being moved to a new location",
    "S": "suspended",
    "U": "suspended while the workstation is busy",
    "B": "array job with running subjobs",
    "R": "running",
    "E": "exiting after having run",
}
FINISHED_STATES = {"F": "finished", "X": "finished subjob"}
MOVED_STATE = "M"

# Negative exit statuses set by PBS (JOB_EXEC_* in OpenPBS src/include/job.h).
PBS_EXIT_STATUS = {
    -1: "JOB_EXEC_FAIL1: job start failed before files were staged, no retry",
    -2: "JOB_EXEC_FAIL2: job start failed after files were staged, no retry",
    -3: "JOB_EXEC_RETRY: job start failed, retry",
    -4: "JOB_EXEC_INITABT: job aborted on MOM initialization",
    -5: "JOB_EXEC_INITRST: job aborted on MOM initialization (checkpoint, no migrate)",
    -6: "JOB_EXEC_INITRMG: job aborted on MOM initialization (checkpoint, migrate)",
    -7: "JOB_EXEC_BADRESRT: job restart failed",
    -10: "JOB_EXEC_FAILUID: invalid user or group id for the job",
    -11: "JOB_EXEC_RERUN: job rerun",
    -12: "JOB_EXEC_CHKP: job checkpointed and killed",
    -13: "JOB_EXEC_FAIL_PASSWORD: bad password",
    -14: "JOB_EXEC_RERUN_SIS_FAIL: job rerun after a sister node failed",
    -15: "JOB_EXEC_QUERST: requeued for restart from a checkpoint",
    -16: "JOB_EXEC_FAILHOOK_RERUN: a hook rejected the job start, requeued",
    -17: "JOB_EXEC_FAILHOOK_DELETE: a hook rejected the job start, deleted",
    -18: "JOB_EXEC_HOOK_RERUN: a hook requested a requeue",
    -19: "JOB_EXEC_HOOK_DELETE: a hook requested deletion",
    -20: "JOB_EXEC_RERUN_MS_FAIL: connection to the execution host failed",
    -21: "JOB_EXEC_FAIL_SECURITY: security breach in the PBS directory",
    -22: "JOB_EXEC_HOOKERROR: a hook failed or timed out",
    -23: "JOB_EXEC_FAIL_KRB5: no Kerberos credentials (renew the ticket with kinit)",
    -24: "JOB_EXEC_KILL_NCPUS_BURST: killed for using more CPUs than requested (burst)",
    -25: "JOB_EXEC_KILL_NCPUS_SUM: killed for using more CPUs than requested",
    -26: "JOB_EXEC_KILL_VMEM: killed for exceeding its virtual memory (vmem)",
    -27: "JOB_EXEC_KILL_MEM: killed for exceeding its memory (raise mem_mb)",
    -28: "JOB_EXEC_KILL_CPUT: killed for exceeding its CPU time",
    -29: "JOB_EXEC_KILL_WALLTIME: killed at its walltime (raise runtime)",
    -30: "JOB_EXEC_JOINJOB: join job error",
}


@dataclass(frozen=True)
class QstatResult:
    """Outcome of one ``qstat -x -f`` query.

    Attributes:
        kind: ``"record"`` (``text`` is the record), ``"unknown"`` (the
            server does not know the id) or ``"error"`` (qstat failed).
        text: qstat's stdout for a record, its error message otherwise.
    """

    kind: str
    text: str


def parse_qstat_full(text: str) -> dict[str, dict[str, str]]:
    """Parse ``qstat -f`` output into ``{job id: {attribute: value}}``.

    PBS prints ``Job Id: ID`` and then one ``    name = value`` line per
    attribute; long values continue on following lines that start with a tab.
    """
    records: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last_key: str | None = None
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            current = records.setdefault(line.partition(":")[2].strip(), {})
            last_key = None
        elif current is not None and line.startswith("\t") and last_key is not None:
            current[last_key] += line.strip()
        elif current is not None and " = " in line:
            key, _, value = line.strip().partition(" = ")
            current[key] = value
            last_key = key
    return records


def describe_exit_status(exit_status: int) -> str:
    """Explain a PBS ``Exit_status`` in words."""
    if exit_status == 0:
        return "exit status 0"
    if exit_status < 0:
        name = PBS_EXIT_STATUS.get(exit_status, "set by PBS")
        return f"exit status {exit_status} ({name})"
    if exit_status >= 256:
        number = exit_status - 256
        try:
            signal_name = signal.Signals(number).name
        except ValueError:
            signal_name = "unknown signal"
        return f"exit status {exit_status} (killed by signal {number}, {signal_name})"
    return f"exit status {exit_status} (the job script exited with {exit_status})"


def classify_record(record: dict[str, str]) -> tuple[str, str]:
    """Decide ``running``, ``success`` or ``failed`` for one finished or active record.

    Returns:
        The status word and a reason for the log. A moved job (state ``M``)
        is returned as ``running``; the caller queries the new server.
    """
    state = record.get("job_state", "").strip()
    comment = record.get("comment", "")

    if state in ACTIVE_STATES:
        return RUNNING, f"job_state {state} ({ACTIVE_STATES[state]})"
    if state == MOVED_STATE:
        return RUNNING, f"job_state M (moved to queue {record.get('queue', '?')})"
    if state in FINISHED_STATES:
        raw = record.get("Exit_status")
        if raw is None:
            return (
                FAILED,
                f"job_state {state} without Exit_status ({comment or 'no comment'})",
            )
        try:
            exit_status = int(raw.strip())
        except ValueError:
            return FAILED, f"job_state {state} with unreadable Exit_status {raw!r}"
        if exit_status == 0:
            return SUCCESS, "exit status 0"
        return FAILED, describe_exit_status(exit_status)

    msg = f"unrecognised job_state {state!r}"
    raise ValueError(msg)


def query_job(
    job_id: str,
    *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    sleep: Callable[[float], None] = time.sleep,
    retry_delays_s: Sequence[float] = QSTAT_RETRY_DELAYS_S,
) -> QstatResult:
    """Run ``qstat -x -f job_id``, repeating it after failures.

    "Unknown Job Id" is a valid result, not a failure, and is not repeated.
    """
    problem = ""
    for attempt in range(len(retry_delays_s) + 1):
        if attempt > 0:
            logger.info(
                "job %s: qstat failed (%s); retrying in %.0f s",
                job_id,
                problem,
                retry_delays_s[attempt - 1],
            )
            sleep(retry_delays_s[attempt - 1])
        try:
            result = run(
                ["qstat", "-x", "-f", job_id],
                capture_output=True,
                text=True,
                check=False,
                # No terminal: with an expired Kerberos ticket qstat would
                # otherwise wait for a password.
                stdin=subprocess.DEVNULL,
                timeout=QSTAT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            problem = f"timed out after {QSTAT_TIMEOUT_S:.0f} s"
            continue
        except OSError as error:
            problem = f"cannot run qstat: {error}"
            continue

        message = (result.stderr or "").strip()
        if result.returncode == UNKNOWN_JOB_EXIT_CODE or "Unknown Job Id" in message:
            return QstatResult("unknown", message)
        if result.returncode == 0 and "job_state" in result.stdout:
            return QstatResult("record", result.stdout)
        problem = f"exit code {result.returncode}: {message or result.stdout.strip()!r}"
    return QstatResult("error", problem)


def _record_for(job_id: str, text: str) -> dict[str, str] | None:
    records = parse_qstat_full(text)
    if job_id in records:
        return records[job_id]
    # qstat may print the id with the full server name when given a short one.
    return next(iter(records.values()), None)


def job_status(
    job_id: str,
    *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    sleep: Callable[[float], None] = time.sleep,
    retry_delays_s: Sequence[float] = QSTAT_RETRY_DELAYS_S,
) -> str:
    """Return ``running``, ``success`` or ``failed`` for ``job_id``; log why.

    ``run``, ``sleep`` and ``retry_delays_s`` are passed to :func:`query_job`.
    """
    result = query_job(job_id, run=run, sleep=sleep, retry_delays_s=retry_delays_s)

    if result.kind == "unknown":
        logger.warning(
            "job %s: the PBS server does not know this id (%s); reporting success so "
            "that Snakemake checks the job's outputs and fails it if one is missing",
            job_id,
            result.text,
        )
        return SUCCESS
    if result.kind == "error":
        logger.error(
            "job %s: qstat failed on every attempt (%s); reporting running", job_id, result.text
        )
        return RUNNING

    record = _record_for(job_id, result.text)
    if record is None:
        logger.error("job %s: no record in the qstat output; reporting running", job_id)
        return RUNNING

    if record.get("job_state", "").strip() == MOVED_STATE:
        server = record.get("queue", "").partition("@")[2].strip()
        if not server:
            logger.warning(
                "job %s: moved, but the new server is not named; reporting running", job_id
            )
            return RUNNING
        moved_id = f"{job_id}@{server}"
        moved = query_job(moved_id, run=run, sleep=sleep, retry_delays_s=retry_delays_s)
        if moved.kind != "record":
            logger.warning(
                "job %s: moved to %s, where qstat gave no record (%s); reporting running",
                job_id,
                server,
                moved.text,
            )
            return RUNNING
        record = _record_for(job_id, moved.text) or {}

    try:
        status, reason = classify_record(record)
    except ValueError as error:
        logger.error("job %s: %s; reporting running", job_id, error)
        return RUNNING

    if status == FAILED:
        logger.warning("job %s failed: %s", job_id, reason)
    elif record.get("job_state", "").strip() == "H":
        logger.warning(
            "job %s is held (%s); release it with qrls or delete it with qdel",
            job_id,
            record.get("comment", "no comment"),
        )
    return status


def _configure_logging() -> None:
    formatter = logging.Formatter("%(asctime)s pbs-status %(levelname)s: %(message)s")
    logger.setLevel(logging.INFO)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.WARNING)
    stderr_handler.setFormatter(formatter)
    logger.addHandler(stderr_handler)
    try:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        # delay=True: the file is created only when a warning is written.
        file_handler = logging.FileHandler(LOG_FILE, encoding="utf-8", delay=True)
    except OSError as error:
        logger.warning("cannot write %s (%s); logging to stderr only", LOG_FILE, error)
    else:
        file_handler.setLevel(logging.WARNING)
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the status of the job named by the single argument; always return 0."""
    _configure_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].strip():
        logger.error("usage: pbs-status.py JOB_ID (got %r); reporting failed", args)
        print(FAILED)
        return 0

    try:
        status = job_status(args[0].strip())
    except Exception:
        # Any other failure must not abort the Snakemake run.
        logger.exception("job %s: unexpected error; reporting running", args[0])
        status = RUNNING
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
