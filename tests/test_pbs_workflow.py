"""The PBS profile against a real scheduler: Snakemake -> qsub/qstat/qdel -> Slurm.

PBS Pro is not packaged for Debian, so a single-node Slurm cluster on the
loopback interface (tests/pbs/slurm-start.sh) runs the jobs, and the
PBS-compatible commands in tests/pbs/bin translate the profile's qsub, qstat
and qdel calls (tests/pbs/pbs_layer.py). The profile itself is used
unchanged, except that containers are switched off with ``--sdm env-modules``
(Apptainer is not installed) and the status polling is made faster.

Needs root and the Debian packages slurm-wlm and munge (.ci/slurm-setup.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "pbs"
PBS_DIR = REPO / "tests" / "pbs"
STATUS_SCRIPT = PROFILE / "pbs-status.py"
SNAKEFILE = REPO / "Snakefile"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.slurm

# Polling settings for tests; the profile's values (30 s between rounds,
# 60 s latency wait) suit a shared PBS server, not a test.
FAST_POLLING = (
    "--seconds-between-status-checks",
    "1",
    "--max-status-checks-per-second",
    "20",
    "--latency-wait",
    "3",
)


def _skip_reason() -> str | None:
    for program in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(program) is None and not Path("/usr/sbin", program).exists():
            return f"{program} not found: install slurm-wlm and munge (.ci/slurm-setup.sh)"
    if os.geteuid() != 0:
        return "the local Slurm cluster must be started as root"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A running local Slurm cluster and the environment that reaches it through PBS commands."""

    state_dir: Path
    env: dict[str, str]

    def run(self, *command: str, cwd: Path | None = None, timeout: float = 60, env=None):
        return subprocess.run(
            list(command),
            cwd=cwd,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def qstat(self, job_id: str) -> dict[str, str]:
        result = self.run("qstat", "-x", "-f", job_id)
        assert result.returncode == 0, result.stderr
        fields = {}
        for line in result.stdout.splitlines()[1:]:
            key, _, value = line.strip().partition(" = ")
            fields[key] = value
        return fields

    def jobs_by_name(self) -> dict[str, list[dict[str, str]]]:
        """Return the qstat record of every job submitted so far, grouped by job name."""
        jobs: dict[str, list[dict[str, str]]] = defaultdict(list)
        requests = sorted(
            (self.state_dir / "pbs-jobs").glob("*.json"), key=lambda path: int(path.stem)
        )
        for path in requests:
            name = json.loads(path.read_text())["name"]
            jobs[name].append(self.qstat(f"{path.stem}.localhost"))
        return jobs

    def snakemake(self, workdir: Path, *args: str, timeout: float = 300):
        return self.run(
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            str(PROFILE),
            # Apptainer is not installed here; env-modules wraps no rule.
            "--sdm",
            "env-modules",
            *FAST_POLLING,
            "--directory",
            str(workdir),
            *args,
            cwd=workdir,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)

    state_dir = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)
    env["SLURMCTLD_PORT"] = str(_free_port())
    env["SLURMD_PORT"] = str(_free_port())
    env["SLURM_CONF"] = str(state_dir / "slurm.conf")
    env["PATH"] = os.pathsep.join(
        [str(PBS_DIR / "bin"), str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")]
    )

    start = subprocess.run(
        ["bash", str(PBS_DIR / "slurm-start.sh"), str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        if start.returncode != 0:
            logs = "\n".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                for path in sorted((state_dir / "log").glob("*"))
            )
            pytest.fail(f"slurm-start.sh failed:\n{start.stdout}\n{start.stderr}\n{logs}")
        yield Cluster(state_dir, env)
    finally:
        subprocess.run(
            ["bash", str(PBS_DIR / "slurm-stop.sh"), str(state_dir)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )


# ---------------------------------------------------------------------------
# The qsub layer accepts only what the profile emits


JOBSCRIPT = "#!/bin/sh\n# properties = {}\ntrue\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-l", "nodes=1:ppn=2"], "accepts only select"),
        (["-l", "select=2:ncpus=1:mem=100mb:scratch_local=10mb"], "exactly one chunk"),
        (["-l", "select=1:mem=100mb:ncpus=1:scratch_local=10mb"], "in the order"),
        (["-l", "select=1:ncpus=1:mem=100mb"], "lacks scratch_local"),
        (["-l", "select=1:ncpus=1:mem=100:scratch_local=10mb"], "Resource_List.mem"),
        (
            ["-l", "select=1:ncpus=1:mem=100mb:scratch_local=10mb:ngpus=1:gpu_cap=sm_75,sm_86"],
            "gpu_cap",
        ),
        (
            ["-l", "select=1:ncpus=1:mem=100mb:scratch_local=10mb:gpu_cap=compute_70"],
            "without ngpus",
        ),
        (["-l", "walltime=1:00"], "Resource_List.walltime"),
        (["-W", "block=true"], "invalid option"),
        (["-N", "rule=x"], "illegal -N value"),
        (["-N", ".hidden"], "illegal -N value"),
        (["-q", "gpu long"], "Unknown queue"),
    ],
)
def test_qsub_rejects_other_syntax(cluster, tmp_path, options, message):
    script = tmp_path / "job.sh"
    script.write_text(JOBSCRIPT)
    valid = {
        "-N": "job",
        "-l select": "select=1:ncpus=1:mem=100mb:scratch_local=10mb",
        "-l walltime": "walltime=00:01:00",
        "-o": str(tmp_path / "out"),
        "-e": str(tmp_path / "err"),
        "-v": "PATH",
    }
    replaced = options[0] if options[0] != "-l" else f"-l {options[1].split('=')[0]}"
    arguments = []
    for key, value in valid.items():
        if key != replaced:
            arguments += [key.split()[0], value]

    result = cluster.run("qsub", *arguments, *options, str(script))

    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_qsub_unknown_queue_rejected_by_scheduler(cluster, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(JOBSCRIPT)

    result = cluster.run(
        "qsub",
        "-N",
        "job",
        "-l",
        "select=1:ncpus=1:mem=100mb:scratch_local=10mb",
        "-l",
        "walltime=00:01:00",
        "-o",
        str(tmp_path / "o"),
        "-e",
        str(tmp_path / "e"),
        "-v",
        "PATH",
        "-q",
        "gpu_long",
        str(script),
    )

    assert result.returncode != 0
    assert "invalid partition" in result.stderr.lower()


# ---------------------------------------------------------------------------
# Status of ids the server does not know, and of an unreachable server


def test_unknown_job_id_reported_success(cluster, tmp_path):
    result = cluster.run(str(STATUS_SCRIPT), "987654.localhost", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout == "success\n"
    assert "does not know this id" in result.stderr
    assert "987654.localhost" in (tmp_path / "logs/pbs/status.log").read_text()


@pytest.mark.slow
def test_unreachable_server_reported_running(cluster, tmp_path):
    # A copy of the configuration that points clients at a port where no daemon listens.
    conf = (cluster.state_dir / "slurm.conf").read_text()
    unreachable = tmp_path / "slurm.conf"
    conf = re.sub(r"SlurmctldPort=\d+", f"SlurmctldPort={_free_port()}", conf)
    # Fail each connection attempt at once instead of after 18 s of retries.
    unreachable.write_text(conf + "MessageTimeout=1\nTCPTimeout=1\n")
    env = dict(cluster.env, SLURM_CONF=str(unreachable))

    result = cluster.run(str(STATUS_SCRIPT), "1.localhost", cwd=tmp_path, env=env, timeout=180)

    assert result.returncode == 0
    assert result.stdout == "running\n"
    assert "qstat failed on every attempt" in result.stderr
    assert "cannot connect to server" in result.stderr


# ---------------------------------------------------------------------------
# A small standalone workflow: success, scratch, retries, failures, walltime

TINY_SNAKEFILE = textwrap.dedent(
    """
    rule make_a:
        output: "results/a.txt"
        resources: mem_mb=100, disk_mb=10, runtime=5
        shell: "echo a > {output}"

    rule make_b:
        input: "results/a.txt"
        output: "results/b.txt", "results/b_staged_at.txt"
        threads: 2
        resources: mem_mb=200, disk_mb=20, runtime=5, gpu=1, gpu_cap="sm_75,sm_86"
        run:
            from pathlib import Path
            from track_denoiser.scratch import staged_outputs

            with staged_outputs(output) as (b, staged_at):
                b.write_text(Path(input[0]).read_text() + "b\\n")
                staged_at.write_text(str(b))

    rule flaky:
        output: "results/flaky.txt"
        resources: mem_mb=100, disk_mb=10, runtime=5, attempt=lambda wildcards, attempt: attempt
        shell: "[ {resources.attempt} -ge 2 ] || exit 3; echo {resources.attempt} > {output}"

    rule always_fails:
        output: "results/never.txt"
        resources: mem_mb=100, disk_mb=10, runtime=5
        shell: "exit 5"

    rule too_slow:
        output: "results/slow.txt"
        retries: 0
        resources: mem_mb=100, disk_mb=10, runtime=1
        shell: "sleep 600; touch {output}"
    """
)

TINY_TARGETS = (
    "results/b.txt",
    "results/flaky.txt",
    "results/never.txt",
    "results/slow.txt",
)


@dataclass
class TinyRun:
    workdir: Path
    result: subprocess.CompletedProcess[str]
    jobs: dict[str, list[dict[str, str]]]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


@pytest.fixture(scope="module")
def tiny_run(cluster, tmp_path_factory) -> TinyRun:
    workdir = tmp_path_factory.mktemp("tiny")
    (workdir / "Snakefile").write_text(TINY_SNAKEFILE)

    # The walltime job (runtime 1 minute) takes 60-90 s in Slurm; the other
    # jobs run beside it.
    result = cluster.snakemake(workdir, *TINY_TARGETS)
    return TinyRun(workdir, result, cluster.jobs_by_name())


@pytest.mark.slow
def test_tiny_run_fails_overall(tiny_run):
    assert tiny_run.result.returncode != 0, tiny_run.output
    assert "Error in rule always_fails" in tiny_run.output
    assert "Error in rule too_slow" in tiny_run.output


@pytest.mark.slow
def test_successful_jobs_produce_outputs(tiny_run):
    assert (tiny_run.workdir / "results/a.txt").read_text() == "a\n"
    assert (tiny_run.workdir / "results/b.txt").read_text() == "a\nb\n"
    assert [job["Exit_status"] for job in tiny_run.jobs["make_a"]] == ["0"]
    assert [job["Exit_status"] for job in tiny_run.jobs["make_b"]] == ["0"]


@pytest.mark.slow
def test_resources_reach_qsub(tiny_run):
    [make_b] = tiny_run.jobs["make_b"]

    assert make_b["Resource_List.select"] == (
        '1:ncpus=2:mem=200mb:scratch_local=20mb:ngpus=1:gpu_cap="sm_75,sm_86"'
    )
    assert make_b["Resource_List.walltime"] == "00:05:00"
    assert "-q" not in make_b["Submit_arguments"].split()
    assert make_b["Output_Path"].startswith(f"localhost:{tiny_run.workdir}/logs/pbs/make_b.")


@pytest.mark.slow
def test_outputs_staged_through_scratch(tiny_run, cluster):
    staged_at = Path((tiny_run.workdir / "results/b_staged_at.txt").read_text())

    assert cluster.state_dir / "scratch" in staged_at.parents
    # The Epilog removed the job's scratch directory afterwards.
    assert not staged_at.exists()


@pytest.mark.slow
def test_job_logs_and_scratch_cleanup(tiny_run):
    errors = sorted((tiny_run.workdir / "logs/pbs").glob("make_b.*.err"))

    assert len(errors) == 1
    text = errors[0].read_text()
    assert text.startswith("PBS job ")
    assert "clean_scratch: removed the contents of" in text


@pytest.mark.slow
def test_failed_job_retried_then_succeeds(tiny_run):
    # The job script runs Snakemake, which exits with 1 whenever the rule fails.
    assert [job["Exit_status"] for job in tiny_run.jobs["flaky"]] == ["1", "0"]
    assert (tiny_run.workdir / "results/flaky.txt").read_text() == "2\n"
    assert "Trying to restart job" in tiny_run.output


@pytest.mark.slow
def test_failing_job_retried_once_then_failed(tiny_run):
    assert [job["Exit_status"] for job in tiny_run.jobs["always_fails"]] == ["1", "1"]
    assert not (tiny_run.workdir / "results/never.txt").exists()
    status_log = (tiny_run.workdir / "logs/pbs/status.log").read_text()
    assert "(the job script exited with 1)" in status_log


@pytest.mark.slow
def test_walltime_kill_reported_failed(tiny_run):
    [job] = tiny_run.jobs["too_slow"]

    assert job["Exit_status"] == "-29"
    assert job["Resource_List.walltime"] == "00:01:00"
    assert not (tiny_run.workdir / "results/slow.txt").exists()
    status_log = (tiny_run.workdir / "logs/pbs/status.log").read_text()
    assert "JOB_EXEC_KILL_WALLTIME" in status_log


# ---------------------------------------------------------------------------
# The real workflow's generation and training stages through the profile

SHARDS = ("data/simulated/compact/0.npz", "data/labeling/compact/0.npz")
MODEL = "results/model/model.keras"

# The default training resources (16 GB) do not fit the test node (8 GB).
RESOURCES_OVERRIDE = """\
resources:
  train_model: {threads: 2, mem_mb: 3000, disk_mb: 1000, runtime: 20, gpu: 0, gpu_cap: ""}
"""


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEFILE.exists(), reason="the workflow's Snakefile is not there yet")
def test_real_workflow_through_profile(cluster, tmp_path):
    workdir = tmp_path / "wf"
    workdir.mkdir()
    override = tmp_path / "resources.yaml"
    override.write_text(RESOURCES_OVERRIDE)

    result = cluster.snakemake(
        workdir,
        "--snakefile",
        str(SNAKEFILE),
        MODEL,
        SHARDS[1],
        "--configfile",
        str(DEFAULT_CONFIG),
        str(TINY_CONFIG),
        str(override),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    # The shards equal those of the command-line generator, byte for byte.
    reference = tmp_path / "cli"
    for mode in ("0", "1"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "track_denoiser.cli",
                "generate",
                "-n",
                "1",
                "-l",
                mode,
                "-m",
                "0",
                "--first-index",
                "0",
                "--seed",
                "7",
                "--events-per-shard",
                "100",
                "--format",
                "compact",
                "--root",
                str(reference),
            ],
            check=True,
            capture_output=True,
        )
    for shard in SHARDS:
        assert (workdir / shard).read_bytes() == (reference / shard).read_bytes()

    # The tiny configuration trains for two epochs.
    history = (workdir / "results/model/history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss")
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2"]
    assert zipfile.is_zipfile(workdir / MODEL)

    # One PBS job per shard (3 training, 1 validation, 1 labeling) and one for
    # training, each with its resources from the configuration.
    jobs = {
        name: [job for job in records if str(workdir) in job["Output_Path"]]
        for name, records in cluster.jobs_by_name().items()
    }
    assert len(jobs["generate_shard"]) == 5
    for job in jobs["generate_shard"]:
        assert job["Exit_status"] == "0"
        assert job["Resource_List.select"] == "1:ncpus=1:mem=2000mb:scratch_local=2000mb"
        assert job["Resource_List.walltime"] == "00:30:00"
    [train] = jobs["train_model"]
    assert train["Exit_status"] == "0"
    assert train["Resource_List.select"] == "1:ncpus=2:mem=3000mb:scratch_local=1000mb"
    assert train["Resource_List.walltime"] == "00:20:00"


# ---------------------------------------------------------------------------
# The driver job script: SIGTERM deletes the driver's jobs with qdel

SLOW_SNAKEFILE = textwrap.dedent(
    """
    rule slow:
        output: "results/slow.txt"
        resources: mem_mb=100, disk_mb=10, runtime=5
        shell: "sleep 300; touch {output}"
    """
)


@pytest.mark.slow
def test_driver_sigterm_deletes_jobs(cluster, tmp_path):
    # run-driver.sh expects the repository root; give it one with this profile.
    workdir = tmp_path / "repo"
    (workdir / "profiles").mkdir(parents=True)
    (workdir / "profiles" / "pbs").symlink_to(PROFILE)
    (workdir / "Snakefile").write_text(SLOW_SNAKEFILE)
    env = dict(
        cluster.env,
        PBS_O_WORKDIR=str(workdir),
        SNAKEMAKE_ARGS=" ".join(["--sdm", "env-modules", *FAST_POLLING, "results/slow.txt"]),
    )

    # A session of its own, so that SIGTERM reaches every process of the
    # "job" as PBS sends it.
    driver = subprocess.Popen(
        ["bash", str(PROFILE / "run-driver.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        job = _wait_for_running_job(cluster, workdir, timeout=60)
        os.killpg(driver.pid, signal.SIGTERM)
        output, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()

    assert driver.returncode != 0
    assert "Terminating processes on user request" in output
    record = cluster.qstat(job)
    assert record["job_state"] == "F"
    assert record["Exit_status"] == "271"


def _wait_for_running_job(cluster: Cluster, workdir: Path, timeout: float) -> str:
    """Return the PBS id of the first job from ``workdir`` once it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (cluster.state_dir / "pbs-jobs").glob("*.json"):
            request = json.loads(path.read_text())
            if str(workdir) in request["output"]:
                job = f"{path.stem}.localhost"
                if cluster.qstat(job)["job_state"] == "R":
                    return job
        time.sleep(0.5)
    pytest.fail(f"no job from {workdir} was running after {timeout} s")
