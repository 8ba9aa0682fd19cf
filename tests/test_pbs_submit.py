"""profiles/pbs/pbs-submit.py: the exact qsub command built from Snakemake job properties."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "pbs"
SUBMIT_SCRIPT = PROFILE / "pbs-submit.py"


def _load_submit_module():
    spec = importlib.util.spec_from_file_location("pbs_submit", SUBMIT_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pbs_submit"] = module
    spec.loader.exec_module(module)
    return module


submit = _load_submit_module()

NOW = datetime(2025, 3, 4, 10, 0, 1, 123456)
ENVIRON = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "XDG_CACHE_HOME": "/storage/x/.cache"}


def properties(rule="generate_shard", threads=1, jobid=7, **resources):
    """Job properties as Snakemake embeds them in a job script."""
    base = {
        "mem_mb": 2000,
        "disk_mb": 2000,
        "runtime": 30,
        "gpu": 0,
        "gpu_cap": "",
        "pbs_queue": "",
        "pbs_gpu_queue": "",
        "tmpdir": "<TBD>",
    }
    base.update(resources)
    return {
        "type": "single",
        "rule": rule,
        "local": False,
        "input": ["data/.layout"],
        "output": ["data/simulated/compact/3.npz"],
        "wildcards": {"folder": "simulated", "index": "3"},
        "params": {},
        "log": ["logs/generate_shard/simulated_3.log"],
        "threads": threads,
        "resources": base,
        "jobid": jobid,
    }


def build(props, tmp_path):
    return submit.build_qsub_command(
        props, tmp_path / "snakejob.sh", log_dir=tmp_path / "logs/pbs", environ=ENVIRON, now=NOW
    )


def test_cpu_job_command(tmp_path):
    command = build(properties(), tmp_path)

    log = tmp_path / "logs/pbs/generate_shard.7.20250304-100001.123"
    assert command == [
        "qsub",
        "-N",
        "generate_shard",
        "-l",
        "select=1:ncpus=1:mem=2000mb:scratch_local=2000mb",
        "-l",
        "walltime=00:30:00",
        "-o",
        f"{log}.out",
        "-e",
        f"{log}.err",
        "-v",
        "PATH,LANG,XDG_CACHE_HOME",
        str(tmp_path / "snakejob.sh"),
    ]


def test_gpu_job_command(tmp_path):
    props = properties(
        rule="train_model",
        threads=4,
        mem_mb=16000,
        disk_mb=20000,
        runtime=240,
        gpu=1,
        gpu_cap="compute_70",
    )

    command = build(props, tmp_path)

    assert command[1:7] == [
        "-N",
        "train_model",
        "-l",
        "select=1:ncpus=4:mem=16000mb:scratch_local=20000mb:ngpus=1:gpu_cap=compute_70",
        "-l",
        "walltime=04:00:00",
    ]
    assert "-q" not in command


def test_gpu_cap_list_is_quoted(tmp_path):
    props = properties(gpu=2, gpu_cap="sm_75, sm_86")

    command = build(props, tmp_path)

    assert (
        command[4]
        == 'select=1:ncpus=1:mem=2000mb:scratch_local=2000mb:ngpus=2:gpu_cap="sm_75,sm_86"'
    )


def test_gpu_cap_ignored_for_cpu_job(tmp_path):
    command = build(properties(gpu=0, gpu_cap="compute_70"), tmp_path)

    assert command[4] == "select=1:ncpus=1:mem=2000mb:scratch_local=2000mb"


def test_gpu_without_cap(tmp_path):
    command = build(properties(gpu=1, gpu_cap=""), tmp_path)

    assert command[4].endswith(":ngpus=1")


@pytest.mark.parametrize(
    ("queue", "gpu_queue", "gpu", "expected"),
    [
        ("", "", 0, None),
        ("", "", 1, None),
        ("", "gpu", 0, None),
        ("", "gpu", 1, "gpu"),
        ("q_1d", "gpu", 0, "q_1d"),
        ("q_1d", "gpu", 1, "q_1d"),
        ("default@pbs-m1.metacentrum.cz", "", 0, "default@pbs-m1.metacentrum.cz"),
    ],
)
def test_queue_only_when_configured(tmp_path, queue, gpu_queue, gpu, expected):
    props = properties(pbs_queue=queue, pbs_gpu_queue=gpu_queue, gpu=gpu)

    command = build(props, tmp_path)

    if expected is None:
        assert "-q" not in command
    else:
        assert command[-3:-1] == ["-q", expected]


def test_queue_name_is_validated(tmp_path):
    with pytest.raises(submit.SubmitError, match="invalid PBS queue name"):
        build(properties(pbs_queue="gpu; rm -rf ~"), tmp_path)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (1, "00:01:00"),
        (59, "00:59:00"),
        (60, "01:00:00"),
        (90, "01:30:00"),
        (2880, "48:00:00"),
        (0.4, "00:01:00"),
    ],
)
def test_walltime_from_minutes(minutes, expected):
    assert submit.walltime(minutes) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("train_model", "train_model"),
        ("generate_shard", "generate_shard"),
        (".hidden", "hidden"),
        ("a=b,c/d%e@f(g)h", "a_b_c_d_e_f_g_h"),
        ("name with spaces", "name_with_spaces"),
        ("---", "snakejob"),
        ("x" * 300, "x" * 236),
    ],
)
def test_job_name_is_pbs_safe(raw, expected):
    assert submit.job_name({"type": "single", "rule": raw}) == expected


def test_group_job_name():
    group = {"type": "group", "groupid": "shards", "jobid": "8f6c1d1e-1b0e"}

    assert submit.job_name(group) == "group_shards"


def test_job_name_has_no_wildcards(tmp_path):
    command = build(properties(), tmp_path)

    name = command[command.index("-N") + 1]
    assert "simulated" not in name
    assert "=" not in name


def test_only_set_variables_are_exported(tmp_path):
    command = submit.build_qsub_command(
        properties(), tmp_path / "job.sh", log_dir=tmp_path, environ={}, now=NOW
    )

    assert command[command.index("-v") + 1] == "PATH"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"mem_mb": None}, "resources.mem_mb is not set"),
        ({"disk_mb": 0}, "resources.disk_mb must be an integer >= 1"),
        ({"runtime": None}, "resources.runtime is not set"),
        ({"gpu": -1}, "resources.gpu must be a non-negative integer"),
        ({"gpu": 1, "gpu_cap": "compute 70"}, "resources.gpu_cap must be"),
    ],
)
def test_invalid_resources_are_rejected(tmp_path, resources, message):
    props = properties(**resources)

    with pytest.raises(submit.SubmitError, match=message):
        build(props, tmp_path)


def test_missing_default_resource_names_the_fix(tmp_path):
    props = properties()
    del props["resources"]["mem_mb"]

    with pytest.raises(submit.SubmitError, match="default-resources"):
        build(props, tmp_path)


# ---------------------------------------------------------------------------
# Running qsub


def completed(returncode, stdout="", stderr=""):
    return subprocess.CompletedProcess(["qsub"], returncode, stdout, stderr)


def test_submit_prints_first_line_id():
    answers = [completed(0, "13031539.pbs-m1.metacentrum.cz\n")]

    job_id = submit.submit(["qsub", "job.sh"], run=lambda *a, **k: answers.pop(0), sleep=None)

    assert job_id == "13031539.pbs-m1.metacentrum.cz"


def test_submit_retries_failures():
    answers = [
        completed(1, stderr="qsub: cannot connect to server pbs-m1 (errno=15010)"),
        subprocess.TimeoutExpired(["qsub"], 120),
        completed(0, "17.pbs-m1.metacentrum.cz\n"),
    ]
    sleeps = []

    def run(*args, **kwargs):
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    job_id = submit.submit(["qsub", "job.sh"], run=run, sleep=sleeps.append, retry_delays_s=(1, 2))

    assert job_id == "17.pbs-m1.metacentrum.cz"
    assert sleeps == [1, 2]


def test_submit_gives_up_with_last_error():
    answers = [completed(2, stderr="qsub: Unknown queue")] * 3

    with pytest.raises(submit.SubmitError, match=r"after 3 attempts.*Unknown queue"):
        submit.submit(
            ["qsub", "job.sh"],
            run=lambda *a, **k: answers.pop(0),
            sleep=lambda s: None,
            retry_delays_s=(0, 0),
        )


def test_submit_rejects_output_without_id():
    with pytest.raises(submit.SubmitError, match="printed no job id"):
        submit.submit(["qsub"], run=lambda *a, **k: completed(0, "Job submitted.\n"), sleep=None)


@pytest.mark.parametrize(
    "python_options",
    [[], ["-S"]],
    ids=["with_snakemake", "without_site_packages"],
)
def test_script_reads_jobscript_and_prints_only_id(tmp_path, python_options):
    # A qsub on PATH that records its arguments, so the script runs end to end
    # without a PBS server.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "qsub-args.json"
    qsub = bin_dir / "qsub"
    qsub.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('42.pbs-m1.metacentrum.cz')\n"
    )
    qsub.chmod(0o755)
    jobscript = tmp_path / "snakejob.generate_shard.7.sh"
    jobscript.write_text(f"#!/bin/sh\n# properties = {json.dumps(properties())}\necho run\n")

    env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, *python_options, str(SUBMIT_SCRIPT), str(jobscript)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "42.pbs-m1.metacentrum.cz\n"
    args = json.loads(record.read_text())
    assert args[:6] == [
        "-N",
        "generate_shard",
        "-l",
        "select=1:ncpus=1:mem=2000mb:scratch_local=2000mb",
        "-l",
        "walltime=00:30:00",
    ]
    assert args[-1] == str(jobscript)
    assert (tmp_path / "logs" / "pbs").is_dir()
    assert Path(args[args.index("-o") + 1]).parent == tmp_path / "logs" / "pbs"


def test_script_fails_clearly_on_non_jobscript(tmp_path):
    jobscript = tmp_path / "plain.sh"
    jobscript.write_text("#!/bin/sh\necho hi\n")

    result = subprocess.run(
        [sys.executable, str(SUBMIT_SCRIPT), str(jobscript)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no '# properties = {...}' line" in result.stderr
