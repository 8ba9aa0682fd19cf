"""track_denoiser.scratch: staging inputs and outputs through $SCRATCHDIR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from track_denoiser import scratch
from track_denoiser.scratch import staged_inputs, staged_outputs


@pytest.fixture
def no_scratch(monkeypatch):
    monkeypatch.delenv("SCRATCHDIR", raising=False)


@pytest.fixture
def scratch_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setenv("SCRATCHDIR", str(root))
    return root


@pytest.fixture(params=["in_place", "scratch"])
def mode(request, tmp_path, monkeypatch) -> Path | None:
    """Run a test once without and once with $SCRATCHDIR; return the scratch root or None."""
    if request.param == "in_place":
        monkeypatch.delenv("SCRATCHDIR", raising=False)
        return None
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setenv("SCRATCHDIR", str(root))
    return root


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def write_both(finals: list[Path], error: Exception | None = None) -> None:
    """Write two staged outputs, then raise ``error`` inside the block if given."""
    with staged_outputs(finals) as (first, second):
        first.write_text("complete")
        second.write_text("also complete")
        if error is not None:
            raise error


# ---------------------------------------------------------------------------
# scratch_dir


def test_scratch_dir_unset(no_scratch):
    assert scratch.scratch_dir() is None


def test_scratch_dir_set(scratch_root):
    assert scratch.scratch_dir() == scratch_root


def test_scratch_dir_missing_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHDIR", str(tmp_path / "gone"))

    with pytest.raises(NotADirectoryError, match="scratch_local"):
        scratch.scratch_dir()


# ---------------------------------------------------------------------------
# staged_outputs


def test_outputs_placed_on_success(mode, tmp_path):
    work = tmp_path / "work"
    finals = [work / "model" / "history.csv", work / "shard.npy"]

    with staged_outputs(finals) as (history, shard):
        history.write_text("epoch,loss\n0,1.5\n")
        np.save(shard, np.arange(6, dtype=np.float16).reshape(2, 3))
        # Nothing is placed before the block ends.
        assert not finals[0].exists()
        assert not finals[1].exists()

    assert finals[0].read_text() == "epoch,loss\n0,1.5\n"
    np.testing.assert_array_equal(np.load(finals[1]), np.arange(6).reshape(2, 3))
    assert listing(work) == ["model", "model/history.csv", "shard.npy"]


def test_outputs_written_in_scratch(scratch_root, tmp_path):
    final = tmp_path / "work" / "out.txt"

    with staged_outputs([final]) as (out,):
        assert scratch_root in out.parents
        assert out.name == "out.txt"
        out.write_text("x")

    assert final.read_text() == "x"
    assert listing(scratch_root) == []


def test_outputs_in_place_stage_beside_final(no_scratch, tmp_path):
    final = tmp_path / "work" / "out.txt"

    with staged_outputs([final]) as (out,):
        assert out.parent.parent == final.parent
        assert out.parent.name.startswith(".out.txt.staging-")
        out.write_text("x")

    assert final.read_text() == "x"


def test_output_permissions_follow_umask(mode, tmp_path):
    final = tmp_path / "work" / "out.txt"
    old = os.umask(0o027)
    try:
        with staged_outputs([final]) as (out,):
            out.write_text("x")
    finally:
        os.umask(old)

    assert final.stat().st_mode & 0o777 == 0o640


def test_exception_leaves_nothing(mode, tmp_path):
    work = tmp_path / "work"
    finals = [work / "a.txt", work / "b.txt"]

    with pytest.raises(RuntimeError, match="training diverged"):
        write_both(finals, RuntimeError("training diverged"))

    assert listing(work) == []
    if mode is not None:
        assert listing(mode) == []


def test_missing_output_places_none(mode, tmp_path):
    work = tmp_path / "work"
    finals = [work / "a.txt", work / "b.txt"]

    with (
        pytest.raises(FileNotFoundError, match=r"did not write.*b\.txt"),
        staged_outputs(finals) as (a, _),
    ):
        a.write_text("complete")

    assert listing(work) == []


def test_directory_outputs(mode, tmp_path):
    final = tmp_path / "work" / "denoised"
    final.mkdir(parents=True)
    (final / "stale.txt").write_text("old run")

    with staged_outputs([final]) as (out,):
        out.mkdir()
        (out / "track0.txt").write_text("1,2,3,4\n")
        (out / "sub").mkdir()
        (out / "sub" / "track1.txt").write_text("5,6,7,8\n")

    assert listing(final) == ["sub", "sub/track1.txt", "track0.txt"]
    assert listing(tmp_path / "work") == [
        "denoised",
        "denoised/sub",
        "denoised/sub/track1.txt",
        "denoised/track0.txt",
    ]


def test_existing_file_replaced(mode, tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")

    with staged_outputs([final]) as (out,):
        out.write_text("new")

    assert final.read_text() == "new"


def test_failed_rename_removes_placed_outputs(mode, tmp_path, monkeypatch):
    work = tmp_path / "work"
    finals = [work / "a.txt", work / "b.txt"]
    real_replace = Path.replace
    calls = []

    def replace_failing_on_b(self, target):
        calls.append(Path(target).name)
        if Path(target) == finals[1]:
            raise OSError(28, "No space left on device")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", replace_failing_on_b)

    with pytest.raises(OSError, match="No space left"):
        write_both(finals)

    assert "a.txt" in calls
    assert listing(work) == []


# ---------------------------------------------------------------------------
# staged_inputs


def test_inputs_in_place_without_scratch(no_scratch, tmp_path):
    source = tmp_path / "0.npz"
    source.write_bytes(b"shard")

    with staged_inputs([source]) as (local,):
        assert local == source


def test_inputs_copied_to_scratch(scratch_root, tmp_path):
    first = tmp_path / "a" / "0.npz"
    second = tmp_path / "b" / "0.npz"
    folder = tmp_path / "events"
    for path, content in ((first, b"first"), (second, b"second")):
        path.parent.mkdir()
        path.write_bytes(content)
    folder.mkdir()
    (folder / "track0.txt").write_text("1,2,3,4\n")

    with staged_inputs([first, second, folder]) as copies:
        assert all(scratch_root in copy.parents for copy in copies)
        assert [copy.name for copy in copies] == ["0.npz", "0.npz", "events"]
        assert copies[0].read_bytes() == b"first"
        assert copies[1].read_bytes() == b"second"
        assert (copies[2] / "track0.txt").read_text() == "1,2,3,4\n"

    assert listing(scratch_root) == []
    assert first.read_bytes() == b"first"


def test_missing_input_rejected(mode, tmp_path):
    inputs = staged_inputs([tmp_path / "missing.npz"])

    with pytest.raises(FileNotFoundError, match=r"missing\.npz does not exist"):
        inputs.__enter__()


# ---------------------------------------------------------------------------
# A killed job

KILLED_JOB = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from track_denoiser.scratch import staged_outputs

    work = Path(sys.argv[1])
    with staged_outputs([work / "model.keras", work / "history.csv"]) as (model, history):
        model.write_bytes(b"weights" * 1000)
        history.write_text("epoch,loss\\n")
        print("written", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_job_leaves_no_complete_output(mode, tmp_path, sig):
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    if mode is None:
        env.pop("SCRATCHDIR", None)
    else:
        env["SCRATCHDIR"] = str(mode)

    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_JOB, str(work)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "written\n"
        process.send_signal(sig)
        process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()

    assert process.returncode == -sig
    assert not (work / "model.keras").exists()
    assert not (work / "history.csv").exists()
    # Whatever is left in the working directory is hidden staging.
    assert all(path.name.startswith(".") for path in work.iterdir())
