"""Stage a batch job's heavy inputs and outputs through node-local scratch.

On MetaCentrum every PBS job that requests ``scratch_local`` gets a private
node-local directory whose path is in ``$SCRATCHDIR``. Reading shards from it
and writing results to it keeps heavy I/O off the shared ``/storage`` file
systems. The results are copied back once they are complete.

Two context managers cover a workflow step:

``staged_inputs(paths)``
    Copies files or directories into scratch and yields the copies; without
    ``$SCRATCHDIR`` it yields the original paths. The copies are deleted on
    exit.

``staged_outputs(paths)``
    Yields one temporary path per output, inside scratch when ``$SCRATCHDIR``
    is set and beside the final output otherwise. The caller writes a file or
    a directory to each. When the block ends without an exception, every
    output is copied to a hidden temporary name beside its final path and
    then all are renamed into place. When the block raises, or a yielded
    path was not written, nothing is placed. A killed process (walltime,
    ``qdel``) leaves at most hidden ``.<name>.*`` temporaries beside the
    outputs, never a file under a final name that looks complete.

Example::

    with staged_inputs([noisy_shard]) as (local_shard,), staged_outputs(
        [model_path, history_path]
    ) as (model_tmp, history_tmp):
        train(local_shard, model_tmp, history_tmp)

The scratch directory itself is emptied by the job script (MetaCentrum's
``clean_scratch``), which also covers a killed job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["SCRATCH_VARIABLE", "scratch_dir", "staged_inputs", "staged_outputs"]

logger = logging.getLogger(__name__)

SCRATCH_VARIABLE = "SCRATCHDIR"


def scratch_dir() -> Path | None:
    """Return the job's scratch directory from ``$SCRATCHDIR``, or ``None`` if unset.

    Raises:
        NotADirectoryError: ``$SCRATCHDIR`` is set but names no directory.
    """
    value = os.environ.get(SCRATCH_VARIABLE, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        msg = (
            f"${SCRATCH_VARIABLE} is set to {value!r}, which is not a directory; "
            f"request scratch for the job (qsub -l select=...:scratch_local=...) "
            f"or unset {SCRATCH_VARIABLE} to work in place"
        )
        raise NotADirectoryError(msg)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copy2(source, destination)


def _staged_relative(source: Path, index: int) -> Path:
    """Return where an input goes inside the staging directory.

    The input keeps its path (relative, or absolute without the root), so
    files that belong together stay together: a dense shard's
    ``noisy/<INDEX>.npy`` still finds its ``clean/<INDEX>.npy``. A path that
    climbs out with ``..`` goes to a subdirectory of its own instead.
    """
    relative = Path(os.path.normpath(source))
    if relative.is_absolute():
        relative = relative.relative_to(relative.anchor)
    if relative.parts and relative.parts[0] == "..":
        return Path(f"input-{index}") / source.name
    return relative


@contextlib.contextmanager
def staged_inputs(inputs: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield scratch copies of ``inputs`` (files or directories), or the inputs themselves.

    Args:
        inputs: paths to read. Each must exist.

    Yields:
        One path per input, in the same order. With ``$SCRATCHDIR`` set they
        are copies in a private directory under scratch that keep the
        inputs' relative paths, removed on exit; without it they are the
        original paths.

    Raises:
        FileNotFoundError: an input does not exist.
    """
    sources = [Path(path) for path in inputs]
    for source in sources:
        if not source.exists():
            msg = f"input {source} does not exist"
            raise FileNotFoundError(msg)

    scratch = scratch_dir()
    if scratch is None:
        yield sources
        return

    staging = Path(tempfile.mkdtemp(prefix="inputs-", dir=scratch))
    try:
        copies = []
        for index, source in enumerate(sources):
            copy = staging / _staged_relative(source, index)
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                _copy(source, copy)
            copies.append(copy)
        logger.info("copied %d input(s) to %s", len(copies), staging)
        yield copies
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_outputs(outputs: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield temporary paths for ``outputs``; place all of them only on success.

    Args:
        outputs: final paths (files or directories). Their parent directories
            are created. The yielded paths keep each output's base name, so
            writers that choose the format by suffix (``numpy.save``, Keras)
            behave the same.

    Yields:
        One path per output, which does not exist yet: the caller creates a
        file or a directory there.

    Raises:
        FileNotFoundError: the block ended normally but did not create one of
            the yielded paths; no output is placed.
    """
    finals = [Path(path) for path in outputs]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)

    scratch = scratch_dir()
    stagings: list[Path] = []
    try:
        for final in finals:
            # Without scratch, stage beside the output: the same file system,
            # so the final step is a rename, and a hidden name on failure.
            parent = final.parent if scratch is None else scratch
            stagings.append(Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=parent)))
        written = [staging / final.name for staging, final in zip(stagings, finals, strict=True)]

        yield written

        missing = [str(path) for path in written if not path.exists()]
        if missing:
            msg = f"the job did not write these staged outputs: {', '.join(missing)}"
            raise FileNotFoundError(msg)
        _place(written, finals, copy=scratch is not None)
        if scratch is not None:
            logger.info("copied %d output(s) from %s into place", len(finals), scratch)
    finally:
        for staging in stagings:
            shutil.rmtree(staging, ignore_errors=True)


def _place(written: list[Path], finals: list[Path], *, copy: bool) -> None:
    """Move ``written`` to ``finals``: all of them, or none on an error.

    Each output first gets a hidden temporary name beside its final path: a
    copy when it comes from scratch, a rename otherwise. Only when every
    output is there are they renamed to their final names.
    """
    temporaries: list[Path] = []
    placed: list[Path] = []
    try:
        for source, final in zip(written, finals, strict=True):
            handle, name = tempfile.mkstemp(
                prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
            )
            os.close(handle)
            temporary = Path(name)
            temporaries.append(temporary)
            temporary.unlink()
            if copy:
                _copy(source, temporary)
            else:
                source.replace(temporary)
            if temporary.is_file():
                # mkstemp reserves the name with mode 0600; give the output the
                # permissions an ordinary open() would.
                umask = os.umask(0)
                os.umask(umask)
                temporary.chmod(0o666 & ~umask)

        for temporary, final in zip(temporaries, finals, strict=True):
            if final.is_dir() and not final.is_symlink():
                # os.replace cannot replace a directory that has contents.
                shutil.rmtree(final)
            temporary.replace(final)
            placed.append(final)
    except BaseException:
        for path in temporaries + placed:
            _remove(path)
        raise
