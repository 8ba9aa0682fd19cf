"""profiles/pbs/pbs-status.py on recorded ``qstat -x -f`` records of every PBS state.

The records follow the layout of OpenPBS / PBS Pro ``qstat -f`` output: a
``Job Id:`` header, four-space indented ``name = value`` lines and
tab-indented continuation lines. Ids, hosts and paths are made up in
MetaCentrum's style.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

STATUS_SCRIPT = Path(__file__).resolve().parents[1] / "profiles" / "pbs" / "pbs-status.py"


def _load_status_module():
    spec = importlib.util.spec_from_file_location("pbs_status", STATUS_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pbs_status"] = module
    spec.loader.exec_module(module)
    return module


status = _load_status_module()

JOB_ID = "13031539.pbs-m1.metacentrum.cz"

HEADER = f"""Job Id: {JOB_ID}
    Job_Name = train_model
    Job_Owner = jdoe@tarkil.metacentrum.cz
"""

FOOTER = """    server = pbs-m1.metacentrum.cz
    Checkpoint = u
    ctime = Tue Mar  4 10:00:02 2025
    Error_Path = tarkil.metacentrum.cz:/storage/brno2/home/jdoe/track-denoiser/logs/pbs/t
	rain_model.7.20250304-100001.123.err
    Hold_Types = n
    Join_Path = n
    Keep_Files = n
    Mail_Points = a
    mtime = Tue Mar  4 11:00:09 2025
    Output_Path = tarkil.metacentrum.cz:/storage/brno2/home/jdoe/track-denoiser/logs/pbs/
	train_model.7.20250304-100001.123.out
    Priority = 0
    qtime = Tue Mar  4 10:00:02 2025
    Rerunable = True
    Resource_List.mem = 16000mb
    Resource_List.ncpus = 4
    Resource_List.ngpus = 1
    Resource_List.nodect = 1
    Resource_List.place = free
    Resource_List.scratch_local = 20000mb
    Resource_List.select = 1:ncpus=4:mem=16000mb:scratch_local=20000mb:ngpus=1:gpu
	_cap=compute_70
    Resource_List.walltime = 04:00:00
    Variable_List = PBS_O_HOME=/storage/brno2/home/jdoe,PBS_O_LANG=en_US.UTF-8,
	PBS_O_LOGNAME=jdoe,PBS_O_PATH=/usr/bin:/bin,PBS_O_SHELL=/bin/bash,
	PBS_O_WORKDIR=/storage/brno2/home/jdoe/track-denoiser,PBS_O_SYSTEM=Linux,
	PBS_O_QUEUE=default,PBS_O_HOST=tarkil.metacentrum.cz
    etime = Tue Mar  4 10:00:02 2025
    Submit_arguments = -N train_model -l select=1:ncpus=4:mem=16000mb:scratch_local
	=20000mb:ngpus=1:gpu_cap=compute_70 -l walltime=04:00:00
    project = _pbs_project_default
"""


def record(state: str, *extra: str, queue: str = "gpu@pbs-m1.metacentrum.cz") -> str:
    """Build a full record with ``job_state = state`` and extra attribute lines."""
    lines = [f"    job_state = {state}", f"    queue = {queue}", *(f"    {line}" for line in extra)]
    return HEADER + "\n".join(lines) + "\n" + FOOTER


RUNNING_RECORD = record(
    "R",
    "exec_host = zefron6/0*4",
    "exec_vnode = (zefron6:ncpus=4:mem=16384000kb:ngpus=1:scratch_local=20480000kb)",
    "resources_used.cpupercent = 398",
    "resources_used.walltime = 00:12:31",
    "session_id = 48213",
    "substate = 42",
    "comment = Job run at Tue Mar 04 at 10:01 on (zefron6:ncpus=4:mem=16384000kb:ngpus=1)",
    "run_count = 1",
)


def finished(exit_status: int | None, substate: int = 92) -> str:
    extra = [
        "exec_host = zefron6/0*4",
        "resources_used.walltime = 01:00:05",
        f"substate = {substate}",
        "comment = Job run at Tue Mar 04 at 10:01 on (zefron6:ncpus=4) and finished",
        "run_count = 1",
        "Stageout_status = 1",
    ]
    if exit_status is not None:
        extra.append(f"Exit_status = {exit_status}")
    extra.append("history_timestamp = 1741086009")
    return record("F", *extra)


class RecordedQstat:
    """Replace subprocess.run: replay recorded (returncode, stdout, stderr) results in order."""

    def __init__(self, *answers: tuple[int, str, str] | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, command, **kwargs):
        self.calls.append(list(command))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        returncode, stdout, stderr = answer
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def run_status(*answers, delays=(5.0, 15.0)):
    fake = RecordedQstat(*answers)
    sleeps: list[float] = []
    result = status.job_status(JOB_ID, run=fake, sleep=sleeps.append, retry_delays_s=delays)
    return result, fake, sleeps


# ---------------------------------------------------------------------------
# Parsing


def test_parser_joins_continuation_lines():
    records = status.parse_qstat_full(finished(0))

    assert list(records) == [JOB_ID]
    fields = records[JOB_ID]
    assert fields["job_state"] == "F"
    assert fields["Exit_status"] == "0"
    assert fields["Resource_List.select"] == (
        "1:ncpus=4:mem=16000mb:scratch_local=20000mb:ngpus=1:gpu_cap=compute_70"
    )
    assert fields["Variable_List"].endswith("PBS_O_HOST=tarkil.metacentrum.cz")


def test_parser_reads_several_records():
    text = RUNNING_RECORD + "\n" + finished(3).replace(JOB_ID, "17.pbs-m1.metacentrum.cz")

    records = status.parse_qstat_full(text)

    assert records[JOB_ID]["job_state"] == "R"
    assert records["17.pbs-m1.metacentrum.cz"]["Exit_status"] == "3"


# ---------------------------------------------------------------------------
# Every state


@pytest.mark.parametrize(
    ("state", "extra"),
    [
        ("Q", ["comment = Not Running: Insufficient amount of resource: ngpus"]),
        ("H", ["Hold_Types = u", "comment = job held by user"]),
        ("W", ["Execution_Time = Wed Mar  5 08:00:00 2025"]),
        ("T", ["comment = Job is being moved to its destination"]),
        ("S", ["comment = Job suspended by the scheduler"]),
        ("U", ["comment = Job suspended: workstation busy"]),
        ("B", ["array = True", "array_indices_submitted = 0-9"]),
        ("R", ["resources_used.walltime = 00:12:31"]),
        ("E", ["resources_used.walltime = 01:00:05", "substate = 51"]),
    ],
)
def test_active_states_are_running(state, extra):
    result, fake, _ = run_status((0, record(state, *extra), ""))

    assert result == "running"
    assert fake.calls == [["qstat", "-x", "-f", JOB_ID]]


def test_held_job_logs_a_warning(caplog):
    with caplog.at_level("WARNING", logger="pbs-status"):
        result, _, _ = run_status((0, record("H", "comment = job held by user"), ""))

    assert result == "running"
    assert "held" in caplog.text
    assert "qrls" in caplog.text


@pytest.mark.parametrize("state", ["F", "X"])
def test_finished_with_zero_is_success(state):
    text = finished(0).replace("job_state = F", f"job_state = {state}")

    result, _, _ = run_status((0, text, ""))

    assert result == "success"


@pytest.mark.parametrize(
    ("exit_status", "words"),
    [
        (-29, "walltime"),
        (-27, "memory"),
        (-25, "CPUs"),
        (-23, "Kerberos"),
        (-1, "JOB_EXEC_FAIL1"),
        (-99, "set by PBS"),
        (1, "exited with 1"),
        (3, "exited with 3"),
        (255, "exited with 255"),
        (271, "SIGTERM"),
        (265, "SIGKILL"),
    ],
)
def test_finished_with_nonzero_is_failed(exit_status, words, caplog):
    with caplog.at_level("WARNING", logger="pbs-status"):
        result, _, _ = run_status((0, finished(exit_status, substate=93), ""))

    assert result == "failed"
    assert f"exit status {exit_status}" in caplog.text
    assert words in caplog.text


def test_finished_without_exit_status_is_failed():
    # Without an exit status a finished job cannot count as a success.
    result, _, _ = run_status((0, finished(None, substate=91), ""))

    assert result == "failed"


def test_unreadable_exit_status_is_failed():
    text = finished(0).replace("Exit_status = 0", "Exit_status = n/a")

    result, _, _ = run_status((0, text, ""))

    assert result == "failed"


def test_unrecognised_state_is_running_and_logged(caplog):
    with caplog.at_level("ERROR", logger="pbs-status"):
        result, _, _ = run_status((0, record("Z"), ""))

    assert result == "running"
    assert "unrecognised job_state 'Z'" in caplog.text


def test_moved_job_is_queried_on_new_server():
    moved = record("M", "comment = Job moved", queue="gpu@cerit-pbs.cerit-sc.cz")
    there = finished(-29)

    result, fake, _ = run_status((0, moved, ""), (0, there, ""))

    assert result == "failed"
    assert fake.calls[1] == ["qstat", "-x", "-f", f"{JOB_ID}@cerit-pbs.cerit-sc.cz"]


def test_moved_job_without_server_is_running():
    moved = record("M", queue="gpu")

    result, fake, _ = run_status((0, moved, ""))

    assert result == "running"
    assert len(fake.calls) == 1


def test_moved_job_unknown_on_new_server_is_running():
    moved = record("M", queue="gpu@cerit-pbs.cerit-sc.cz")
    unknown = (153, "", f"qstat: Unknown Job Id {JOB_ID}@cerit-pbs.cerit-sc.cz\n")

    result, _, _ = run_status((0, moved, ""), unknown)

    assert result == "running"


# ---------------------------------------------------------------------------
# Unknown ids and qstat failures


def test_unknown_job_is_success_and_logged(caplog):
    unknown = (153, "", f"qstat: Unknown Job Id {JOB_ID}\n")

    with caplog.at_level("WARNING", logger="pbs-status"):
        result, fake, sleeps = run_status(unknown)

    assert result == "success"
    assert len(fake.calls) == 1
    assert sleeps == []
    assert "does not know this id" in caplog.text


def test_unknown_job_message_with_other_exit_code():
    result, _, _ = run_status((35, "", f"qstat: Unknown Job Id {JOB_ID}\n"))

    assert result == "success"


def test_transient_failure_then_record():
    refused = (1, "", "Connection refused\nqstat: cannot connect to server pbs-m1 (errno=15010)\n")

    result, fake, sleeps = run_status(refused, (0, finished(0), ""))

    assert result == "success"
    assert len(fake.calls) == 2
    assert sleeps == [5.0]


def test_persistent_failure_is_running_and_logged(caplog):
    refused = (1, "", "qstat: cannot connect to server pbs-m1 (errno=15010)\n")
    timeout = subprocess.TimeoutExpired(["qstat"], 60)
    missing = FileNotFoundError(2, "No such file or directory: 'qstat'")

    with caplog.at_level("ERROR", logger="pbs-status"):
        result, fake, sleeps = run_status(refused, timeout, missing)

    assert result == "running"
    assert len(fake.calls) == 3
    assert sleeps == [5.0, 15.0]
    assert "qstat failed on every attempt" in caplog.text


def test_empty_answer_counts_as_failure():
    result, fake, _ = run_status((0, "", ""), (0, "", ""), (0, "", ""))

    assert result == "running"
    assert len(fake.calls) == 3


# ---------------------------------------------------------------------------
# The script as Snakemake calls it


def _run_script(tmp_path: Path, *args: str, qstat_dir: Path | None = None):
    env = {"PATH": f"{qstat_dir}:/usr/bin:/bin" if qstat_dir else "/nonexistent"}
    return subprocess.run(
        [sys.executable, str(STATUS_SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_script_without_argument_prints_failed(tmp_path):
    result = _run_script(tmp_path)

    assert result.returncode == 0
    assert result.stdout == "failed\n"
    assert "usage" in result.stderr


@pytest.mark.slow
def test_script_without_qstat_prints_running(tmp_path):
    # No qstat on PATH: three attempts (5 s and 15 s apart), then "running".
    result = _run_script(tmp_path, JOB_ID)

    assert result.returncode == 0
    assert result.stdout == "running\n"
    log = (tmp_path / "logs" / "pbs" / "status.log").read_text()
    assert "cannot run qstat" in log
