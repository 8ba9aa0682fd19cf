"""Write files through a temporary name and rename them into place.

A killed process leaves at most a hidden ``.<name>.<random>.tmp`` file
behind, never a file under the final name that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The caller writes the temporary file however it likes (numpy, Keras,
    pandas). On an exception the temporary file is removed and ``path`` is
    left untouched. The temporary name keeps the suffix of ``path``, because
    some writers (``numpy.save``, Keras) choose the format by suffix.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file readable by its owner only; give the final
        # file the permissions an ordinary open() would.
        tmp.chmod(0o666 & ~_current_umask())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it on success.

    Args:
        path: final file name.
        mode: ``"w"`` for text or ``"wb"`` for bytes.
        encoding: text encoding; ignored in binary mode.
    """
    with atomic_path(path) as tmp:
        if "b" in mode:
            with open(tmp, mode) as handle:
                yield handle
        else:
            with open(tmp, mode, encoding=encoding, newline="\n") as handle:
                yield handle
