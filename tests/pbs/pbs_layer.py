"""PBS Pro style ``qsub``, ``qstat`` and ``qdel`` on top of a local Slurm cluster.

The PBS profile in ``profiles/pbs`` is tested against a real scheduler, but
PBS Pro and OpenPBS are not packaged for Debian. This module lets the profile's
submit and status scripts run unchanged against the single-node Slurm cluster
that ``slurm-start.sh`` starts:

- ``qsub`` accepts exactly the command line that ``pbs-submit.py`` builds and
  rejects every other option or value with a PBS-style message and exit code,
  so a malformed command fails the tests instead of being silently adapted.
  It translates the request to ``sbatch`` and prints ``<n>.localhost``.
- ``qstat -x -f ID`` prints a PBS Pro record with ``job_state`` and, for
  finished jobs, ``Exit_status``. Live jobs come from ``scontrol show job``,
  jobs that slurmctld has forgotten from the job completion file
  (``sacct -c``), so finished jobs stay visible like PBS job history.
- ``qdel ID...`` cancels with ``scancel``.

Slurm states map to PBS states and exit statuses as PBS Pro reports them.
A job killed at its walltime gets ``Exit_status = -29``
(``JOB_EXEC_KILL_WALLTIME``) and one killed for memory ``-27``. A running
job deleted with ``qdel`` gets ``271`` (256 + SIGTERM). A job whose script
exits with ``n`` gets ``n``, and one killed by signal ``s`` gets ``256 + s``.

What is emulated, not reproduced: Slurm rounds walltimes up to whole minutes
and enforces them with a delay of up to a minute; ``scratch_local`` is
provided by the cluster's TaskProlog (``$SCRATCHDIR``) instead of being
scheduled, and ``ngpus``/``gpu_cap`` are validated and recorded but no GPU is
allocated. The queue (``-q``) selects a Slurm partition of the same name.

The request of every submitted job is stored as JSON in
``<directory of $SLURM_CONF>/pbs-jobs/<n>.json``, because Slurm does not keep
the PBS resource request.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["qdel_main", "qstat_main", "qsub_main"]

SERVER = "localhost"

# PBS error numbers modulo 256, the exit codes of the PBS client commands.
EXIT_UNKNOWN_JOB = 153  # PBSE_UNKJOBID 15001
EXIT_BAD_ATTRIBUTE = 2
EXIT_USAGE = 2
EXIT_NO_CONNECTION = 1

JOB_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,235}")
JOB_ID_PATTERN = re.compile(rf"(\d+)(?:\.{re.escape(SERVER)})?")
WALLTIME_PATTERN = re.compile(r"(\d+):([0-5]\d):([0-5]\d)")
SIZE_PATTERN = re.compile(r"([1-9]\d*)(kb|mb|gb|tb)")
GPU_CAP_TOKEN = r"(?:compute|sm)_\d{2,3}"
GPU_CAP_PATTERN = re.compile(rf'{GPU_CAP_TOKEN}|"{GPU_CAP_TOKEN}(?:,{GPU_CAP_TOKEN})+"')
VARIABLE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
QUEUE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# Chunk resources in the order pbs-submit.py writes them; the first three are
# required, ngpus and gpu_cap are optional and gpu_cap needs ngpus.
SELECT_KEYS = ("ncpus", "mem", "scratch_local", "ngpus", "gpu_cap")

# Variables PBS itself puts into every job's environment; -v adds the named ones.
PBS_BASE_VARIABLES = ("HOME", "USER", "LOGNAME", "SHELL")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

SLURM_TO_PBS_STATE = {
    "PENDING": "Q",
    "CONFIGURING": "R",
    "RUNNING": "R",
    "COMPLETING": "E",
    "SUSPENDED": "S",
    "STOPPED": "S",
    "REQUEUED": "Q",
    "REQUEUE_HOLD": "H",
    "REQUEUE_FED": "Q",
    "RESIZING": "R",
    "SIGNALING": "R",
    "STAGE_OUT": "E",
}

# Finished Slurm states that PBS reports with a fixed negative exit status.
SLURM_KILL_STATUS = {
    "TIMEOUT": -29,  # JOB_EXEC_KILL_WALLTIME
    "OUT_OF_MEMORY": -27,  # JOB_EXEC_KILL_MEM
    "NODE_FAIL": -20,  # JOB_EXEC_RERUN_MS_FAIL: the execution host was lost
    "BOOT_FAIL": -1,  # JOB_EXEC_FAIL1: failed before the job started
    "DEADLINE": -1,
    "PREEMPTED": -1,
}
CANCELLED_WHILE_RUNNING_STATUS = 256 + 15  # qdel sends SIGTERM


class ServerUnreachableError(Exception):
    """slurmctld did not respond, the counterpart of an unreachable PBS server."""


class PbsUsageError(Exception):
    """A command line that the PBS command would reject."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_ATTRIBUTE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _state_dir() -> Path:
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        msg = "SLURM_CONF is not set; source <state dir>/env.sh written by slurm-start.sh"
        raise PbsUsageError(msg, EXIT_USAGE)
    return Path(conf).resolve().parent


def _request_path(number: str) -> Path:
    return _state_dir() / "pbs-jobs" / f"{number}.json"


# ---------------------------------------------------------------------------
# qsub


def _parse_size_mb(key: str, value: str) -> int:
    match = SIZE_PATTERN.fullmatch(value)
    if match is None:
        msg = f"Illegal attribute or resource value Resource_List.{key}: {value!r}"
        raise PbsUsageError(msg)
    factor = {"kb": 1 / 1024, "mb": 1, "gb": 1024, "tb": 1024 * 1024}[match.group(2)]
    return max(1, int(int(match.group(1)) * factor))


def parse_select(value: str) -> dict[str, str]:
    """Validate a one-chunk ``select`` statement and return its resources.

    Raises:
        PbsUsageError: the statement has more than one chunk, an unknown,
            repeated, missing or misordered resource, or an invalid value.
    """
    count, _, chunk = value.partition(":")
    if count != "1" or not chunk:
        msg = f"select must request exactly one chunk ('1:...'), got {value!r}"
        raise PbsUsageError(msg)

    # Split on colons that are outside double quotes (gpu_cap lists).
    parts = re.findall(r'(?:[^:"]|"[^"]*")+', chunk)
    resources: dict[str, str] = {}
    for part in parts:
        key, sep, resource_value = part.partition("=")
        if not sep or key not in SELECT_KEYS:
            msg = f"Unknown resource in select chunk: {part!r}"
            raise PbsUsageError(msg)
        if key in resources:
            msg = f"Resource {key} given twice in select chunk {value!r}"
            raise PbsUsageError(msg)
        resources[key] = resource_value

    order = [key for key in SELECT_KEYS if key in resources]
    if list(resources) != order:
        msg = f"select resources must come in the order {', '.join(SELECT_KEYS)}: {value!r}"
        raise PbsUsageError(msg)
    for required in SELECT_KEYS[:3]:
        if required not in resources:
            msg = f"select chunk lacks {required}: {value!r}"
            raise PbsUsageError(msg)

    if not re.fullmatch(r"[1-9]\d*", resources["ncpus"]):
        msg = f"Illegal attribute or resource value Resource_List.ncpus: {resources['ncpus']!r}"
        raise PbsUsageError(msg)
    _parse_size_mb("mem", resources["mem"])
    _parse_size_mb("scratch_local", resources["scratch_local"])
    if "ngpus" in resources and not re.fullmatch(r"[1-9]\d*", resources["ngpus"]):
        msg = f"Illegal attribute or resource value Resource_List.ngpus: {resources['ngpus']!r}"
        raise PbsUsageError(msg)
    if "gpu_cap" in resources:
        if "ngpus" not in resources:
            msg = f"gpu_cap without ngpus in select chunk {value!r}"
            raise PbsUsageError(msg)
        if GPU_CAP_PATTERN.fullmatch(resources["gpu_cap"]) is None:
            msg = (
                f"Illegal attribute or resource value Resource_List.gpu_cap: "
                f"{resources['gpu_cap']!r} (expected compute_XY or sm_XY, or a quoted "
                'comma-separated list such as "sm_75,sm_86")'
            )
            raise PbsUsageError(msg)
    return resources


def parse_qsub_arguments(argv: Sequence[str]) -> dict[str, object]:
    """Parse and validate a qsub command line as ``pbs-submit.py`` writes it.

    Accepted: ``-N name``, ``-l select=1:...`` and ``-l walltime=hh:mm:ss``
    (each exactly once), ``-o`` and ``-e`` with absolute paths, either ``-V``
    or ``-v NAME[,NAME...]``, an optional ``-q queue``, and the job script as
    the last argument.

    Raises:
        PbsUsageError: for any other option, a repeated or missing option, or
            an invalid value.
    """
    request: dict[str, object] = {}
    args = list(argv)
    if not args:
        msg = "usage: qsub [-N name] [-l resource_list] [-o path] [-e path] [-q queue] script"
        raise PbsUsageError(msg, EXIT_USAGE)
    script = args.pop()
    if script.startswith("-"):
        msg = f"the job script must be the last argument, got option {script!r}"
        raise PbsUsageError(msg, EXIT_USAGE)

    index = 0
    while index < len(args):
        option = args[index]
        if option == "-V":
            if "export" in request:
                msg = "-V and -v may be given only once, and not together"
                raise PbsUsageError(msg, EXIT_USAGE)
            request["export"] = "ALL"
            index += 1
            continue
        if option not in ("-N", "-l", "-o", "-e", "-q", "-v"):
            msg = f"invalid option {option!r}"
            raise PbsUsageError(msg, EXIT_USAGE)
        if index + 1 >= len(args):
            msg = f"option {option} requires a value"
            raise PbsUsageError(msg, EXIT_USAGE)
        value = args[index + 1]
        index += 2

        if option == "-l":
            name, sep, resource_value = value.partition("=")
            # A comma outside quotes (several resources in one -l) fails the
            # value checks below.
            if not sep or name not in ("select", "walltime"):
                msg = f"-l accepts only select=... or walltime=hh:mm:ss, got {value!r}"
                raise PbsUsageError(msg)
            if name in request:
                msg = f"-l {name} given twice"
                raise PbsUsageError(msg)
            if name == "select":
                request["select"] = resource_value
                request["resources"] = parse_select(resource_value)
            else:
                match = WALLTIME_PATTERN.fullmatch(resource_value)
                if match is None:
                    msg = f"Illegal attribute or resource value Resource_List.walltime: {resource_value!r}"
                    raise PbsUsageError(msg)
                hours, minutes, seconds = (int(group) for group in match.groups())
                if hours == minutes == seconds == 0:
                    msg = "walltime must be longer than 00:00:00"
                    raise PbsUsageError(msg)
                request["walltime"] = resource_value
            continue

        key = {"-N": "name", "-o": "output", "-e": "error", "-q": "queue", "-v": "export"}[option]
        if key in request:
            msg = f"option {option} given twice (or -v together with -V)"
            raise PbsUsageError(msg, EXIT_USAGE)
        if key == "name" and JOB_NAME_PATTERN.fullmatch(value) is None:
            msg = f"illegal -N value {value!r}: up to 236 characters from A-Z a-z 0-9 _ . + -, starting with a letter or digit"
            raise PbsUsageError(msg)
        if key in ("output", "error") and not Path(value).is_absolute():
            msg = f"{option} must be an absolute path, got {value!r}"
            raise PbsUsageError(msg)
        if key == "queue" and QUEUE_PATTERN.fullmatch(value) is None:
            msg = f"Unknown queue {value!r}"
            raise PbsUsageError(msg)
        if key == "export":
            names = value.split(",")
            if not all(VARIABLE_PATTERN.fullmatch(name) for name in names):
                msg = f"-v accepts a comma-separated list of variable names, got {value!r}"
                raise PbsUsageError(msg, EXIT_USAGE)
            request[key] = names
            continue
        request[key] = value

    for required, option in (
        ("name", "-N"),
        ("select", "-l select=..."),
        ("walltime", "-l walltime=..."),
        ("output", "-o"),
        ("error", "-e"),
        ("export", "-v or -V"),
    ):
        if required not in request:
            msg = f"the profile always passes {option}; it is missing"
            raise PbsUsageError(msg, EXIT_USAGE)

    if not Path(script).is_file():
        msg = f"cannot open the job script {script!r}"
        raise PbsUsageError(msg, EXIT_USAGE)
    request["script"] = str(Path(script).resolve())
    return request


def build_sbatch_command(request: dict[str, object]) -> list[str]:
    """Translate a validated qsub request into an ``sbatch`` command line."""
    resources = request["resources"]
    assert isinstance(resources, dict)
    hours, minutes, seconds = (int(part) for part in str(request["walltime"]).split(":"))

    export = request["export"]
    if export == "ALL":
        export_arg = "ALL"
    else:
        assert isinstance(export, list)
        names = list(PBS_BASE_VARIABLES) + [
            name for name in export if name not in PBS_BASE_VARIABLES
        ]
        if "PATH" not in names:
            names.append(f"PATH={DEFAULT_PATH}")
        export_arg = ",".join(names)

    command = [
        "sbatch",
        "--parsable",
        f"--job-name={request['name']}",
        f"--output={request['output']}",
        f"--error={request['error']}",
        f"--time={hours:d}:{minutes:02d}:{seconds:02d}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={resources['ncpus']}",
        f"--mem={_parse_size_mb('mem', resources['mem'])}M",
        f"--export={export_arg}",
        f"--chdir={Path.cwd()}",
    ]
    if "queue" in request:
        command.append(f"--partition={request['queue']}")
    command.append(str(request["script"]))
    return command


def qsub_main(argv: Sequence[str]) -> int:
    """Run ``qsub``: validate, submit through sbatch, print ``<n>.localhost``."""
    try:
        request = parse_qsub_arguments(argv)
        command = build_sbatch_command(request)
        state_dir = _state_dir()
    except PbsUsageError as error:
        print(f"qsub: {error}", file=sys.stderr)
        return error.exit_code

    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"qsub: {result.stderr.strip() or result.stdout.strip()}", file=sys.stderr)
        return result.returncode

    number = result.stdout.strip().split(";")[0]
    request["submit_arguments"] = shlex.join(argv)
    request["sbatch"] = command
    jobs_dir = state_dir / "pbs-jobs"
    jobs_dir.mkdir(exist_ok=True)
    (jobs_dir / f"{number}.json").write_text(json.dumps(request, indent=1), encoding="utf-8")
    print(f"{number}.{SERVER}")
    return 0


# ---------------------------------------------------------------------------
# qstat


def _parse_key_values(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\S+?)=(\S*)", text))


def _slurm_live_record(number: str) -> dict[str, str] | None:
    result = subprocess.run(
        ["scontrol", "show", "job", "-o", number], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and "Invalid job id" not in result.stderr:
        raise ServerUnreachableError(
            result.stderr.strip() or f"scontrol exited with {result.returncode}"
        )
    if result.returncode != 0 or not result.stdout.strip():
        return None
    fields = _parse_key_values(result.stdout)
    if fields.get("JobId") != number:
        return None
    return fields


def _slurm_history_record(number: str) -> dict[str, str] | None:
    columns = ("JobID", "JobName", "State", "ExitCode", "NodeList", "Partition")
    result = subprocess.run(
        ["sacct", "-c", "-j", number, "-P", "-n", "-o", ",".join(columns)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        values = line.split("|")
        if len(values) == len(columns) and values[0] == number:
            record = dict(zip(columns, values, strict=True))
            return {
                "JobId": number,
                "JobName": record["JobName"],
                # sacct writes "CANCELLED by 0" for cancelled jobs.
                "JobState": record["State"].split()[0],
                "ExitCode": record["ExitCode"],
                "NodeList": record["NodeList"],
                "Partition": record["Partition"],
            }
    return None


def pbs_state_and_exit_status(fields: dict[str, str]) -> tuple[str, int | None, str]:
    """Map a Slurm job record to a PBS ``job_state``, ``Exit_status`` and comment.

    Returns:
        The one-letter PBS state, the exit status (``None`` while the job is
        not finished, and for jobs deleted before they started, which PBS
        records without one) and a comment naming the Slurm state.
    """
    slurm_state = fields.get("JobState", "UNKNOWN")
    reason = fields.get("Reason", "")
    comment = f"Slurm state {slurm_state}" + (
        f", reason {reason}" if reason not in ("", "None") else ""
    )

    if slurm_state == "PENDING" and reason.startswith("JobHeld"):
        return "H", None, comment
    if slurm_state in SLURM_TO_PBS_STATE:
        return SLURM_TO_PBS_STATE[slurm_state], None, comment

    if slurm_state in SLURM_KILL_STATUS:
        return "F", SLURM_KILL_STATUS[slurm_state], comment
    started = fields.get("NodeList", "") not in ("", "(null)", "None assigned")
    if slurm_state == "CANCELLED":
        return "F", (CANCELLED_WHILE_RUNNING_STATUS if started else None), comment

    # COMPLETED, FAILED and anything else that is final: the script's exit
    # code, or 256 + signal when the script was killed by a signal.
    code, _, signal = fields.get("ExitCode", "0:0").partition(":")
    signal_number = int(signal or 0)
    if signal_number:
        return "F", 256 + signal_number, comment
    return "F", int(code or 0), comment


def format_qstat_record(
    number: str, fields: dict[str, str], request: dict[str, object] | None
) -> str:
    """Format a ``qstat -x -f`` record the way PBS Pro prints one."""
    state, exit_status, comment = pbs_state_and_exit_status(fields)
    lines = [f"Job Id: {number}.{SERVER}"]

    def add(key: str, value: object) -> None:
        lines.append(f"    {key} = {value}")

    add("Job_Name", fields.get("JobName", request.get("name") if request else "STDIN"))
    add("Job_Owner", f"{os.environ.get('USER', 'root')}@{SERVER}")
    add("job_state", state)
    add("queue", fields.get("Partition", "batch"))
    add("server", SERVER)
    if request is not None:
        add("Error_Path", f"{SERVER}:{request['error']}")
        add("Output_Path", f"{SERVER}:{request['output']}")
        resources = request["resources"]
        assert isinstance(resources, dict)
        for key in sorted(resources):
            add(f"Resource_List.{key}", resources[key])
        add("Resource_List.nodect", 1)
        add("Resource_List.select", request["select"])
        add("Resource_List.walltime", request["walltime"])
    add("comment", comment)
    if exit_status is not None:
        add("Exit_status", exit_status)
    if request is not None:
        add("Submit_arguments", request["submit_arguments"])
    return "\n".join(lines) + "\n"


def qstat_main(argv: Sequence[str]) -> int:
    """Run ``qstat -x -f ID``, the only form the status script uses."""
    if len(argv) != 3 or list(argv[:2]) != ["-x", "-f"]:
        print("qstat: this test layer supports only 'qstat -x -f JOB_ID'", file=sys.stderr)
        return EXIT_USAGE
    job_id = argv[2]
    match = JOB_ID_PATTERN.fullmatch(job_id)
    if match is None:
        print(f"qstat: illegally formed job identifier: {job_id}", file=sys.stderr)
        return EXIT_UNKNOWN_JOB
    number = match.group(1)

    try:
        fields = _slurm_live_record(number) or _slurm_history_record(number)
    except ServerUnreachableError as error:
        print(f"qstat: cannot connect to server {SERVER}: {error}", file=sys.stderr)
        return EXIT_NO_CONNECTION
    if fields is None:
        print(f"qstat: Unknown Job Id {job_id}", file=sys.stderr)
        return EXIT_UNKNOWN_JOB

    request_path = _request_path(number)
    request = (
        json.loads(request_path.read_text(encoding="utf-8")) if request_path.exists() else None
    )
    sys.stdout.write(format_qstat_record(number, fields, request))
    return 0


# ---------------------------------------------------------------------------
# qdel


def qdel_main(argv: Sequence[str]) -> int:
    """Run ``qdel ID...``: cancel each job; unknown ids fail like in PBS."""
    if not argv:
        print("usage: qdel job_identifier...", file=sys.stderr)
        return EXIT_USAGE
    exit_code = 0
    for job_id in argv:
        match = JOB_ID_PATTERN.fullmatch(job_id)
        try:
            known = match is not None and _slurm_live_record(match.group(1)) is not None
        except ServerUnreachableError as error:
            print(f"qdel: cannot connect to server {SERVER}: {error}", file=sys.stderr)
            return EXIT_NO_CONNECTION
        if match is None or not known:
            print(f"qdel: Unknown Job Id {job_id}", file=sys.stderr)
            exit_code = EXIT_UNKNOWN_JOB
            continue
        result = subprocess.run(
            ["scancel", match.group(1)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(f"qdel: {result.stderr.strip()}", file=sys.stderr)
            exit_code = result.returncode
    return exit_code
