"""Read and write measured events in the detector's text format.

One event per file, ``track<N>.txt``. Each line is one nonzero voxel,
``x, y, z, E``: integer pad coordinates x in [0, 12), y in [0, 14), integer
time bin z in [0, 208), and a non-negative float amplitude E (raw ADC counts
for measured events). Voxels that are not listed are zero; an empty file is a
valid empty event.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .atomic import atomic_write
from .constants import EVENT_SHAPE

__all__ = [
    "EventFormatError",
    "event_number",
    "iter_event_folder",
    "list_event_files",
    "read_event",
    "read_event_folder",
    "write_event",
]

log = logging.getLogger(__name__)

_EVENT_NAME = re.compile(r"^track(\d+)\.txt$")


class EventFormatError(ValueError):
    """A text event file that does not follow the ``x, y, z, E`` format."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


def _parse_coordinate(text: str, axis: str, size: int, path: Path, line_no: int) -> int:
    token = text.strip()
    try:
        value = int(token)
    except ValueError:
        try:
            as_float = float(token)
        except ValueError:
            msg = f"{axis} coordinate {token!r} is not a number; expected an integer in [0, {size})"
            raise EventFormatError(path, line_no, msg) from None
        msg = f"{axis} coordinate {token!r} is not an integer; expected an integer in [0, {size})"
        if math.isfinite(as_float) and as_float.is_integer():
            value = int(as_float)
        else:
            raise EventFormatError(path, line_no, msg) from None
    if not 0 <= value < size:
        msg = (
            f"{axis} coordinate {value} lies outside the event; expected an integer in [0, {size})"
        )
        raise EventFormatError(path, line_no, msg)
    return value


def read_event(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """Read one text event into a dense array.

    Args:
        path: a ``track<N>.txt`` file.

    Returns:
        float32 array of shape (12, 14, 208), amplitudes in the file's units.

    Raises:
        EventFormatError: a line is malformed; the message names the file, the
            line number and the problem.

    A voxel listed twice keeps the later line's amplitude and logs a warning
    that names both lines.
    """
    path = Path(path)
    event = np.zeros(EVENT_SHAPE, dtype=np.float32)
    seen: dict[tuple[int, int, int], int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            fields = text.split(",")
            if len(fields) != 4:
                msg = (
                    f"expected 4 comma-separated fields 'x, y, z, E', found {len(fields)}: {text!r}"
                )
                raise EventFormatError(path, line_no, msg)
            x = _parse_coordinate(fields[0], "x", EVENT_SHAPE[0], path, line_no)
            y = _parse_coordinate(fields[1], "y", EVENT_SHAPE[1], path, line_no)
            z = _parse_coordinate(fields[2], "z", EVENT_SHAPE[2], path, line_no)
            token = fields[3].strip()
            try:
                amplitude = float(token)
            except ValueError:
                msg = f"amplitude {token!r} is not a number"
                raise EventFormatError(path, line_no, msg) from None
            if not math.isfinite(amplitude):
                msg = f"amplitude {token!r} is not finite; expected a non-negative number"
                raise EventFormatError(path, line_no, msg)
            if amplitude < 0:
                msg = f"amplitude {amplitude} is negative; expected a non-negative number"
                raise EventFormatError(path, line_no, msg)
            key = (x, y, z)
            if key in seen:
                log.warning(
                    "%s: voxel (%d, %d, %d) on line %d repeats line %d; keeping line %d",
                    path,
                    x,
                    y,
                    z,
                    line_no,
                    seen[key],
                    line_no,
                )
            seen[key] = line_no
            event[x, y, z] = amplitude
    return event


def write_event(path: str | os.PathLike[str], event: npt.ArrayLike) -> None:
    """Write a dense event as text, one ``x, y, z, E`` line per nonzero voxel.

    Args:
        path: output file; written to a temporary name and renamed.
        event: array of shape (12, 14, 208); zero voxels are not written.
    """
    array = np.asarray(event)
    if array.shape != EVENT_SHAPE:
        msg = f"event has shape {array.shape}; expected {EVENT_SHAPE}"
        raise ValueError(msg)
    xs, ys, zs = np.nonzero(array)
    values = array[xs, ys, zs]
    with atomic_write(path) as handle:
        for x, y, z, value in zip(
            xs.tolist(), ys.tolist(), zs.tolist(), values.tolist(), strict=True
        ):
            handle.write(f"{x},{y},{z},{_format_amplitude(value)}\n")


def _format_amplitude(value: float) -> str:
    # Integers stay integers (measured ADC counts); other values keep full precision.
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def event_number(path: str | os.PathLike[str]) -> int:
    """Return N of a ``track<N>.txt`` file name."""
    match = _EVENT_NAME.match(Path(path).name)
    if match is None:
        msg = f"{path}: not an event file name; expected 'track<N>.txt'"
        raise ValueError(msg)
    return int(match.group(1))


def list_event_files(folder: str | os.PathLike[str]) -> list[Path]:
    """List the ``track<N>.txt`` files of a folder in natural numeric order.

    ``track2.txt`` comes before ``track10.txt``. Other files are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = f"event folder {folder} does not exist or is not a folder"
        raise FileNotFoundError(msg)
    files = [p for p in folder.iterdir() if p.is_file() and _EVENT_NAME.match(p.name)]
    return sorted(files, key=event_number)


def iter_event_folder(
    folder: str | os.PathLike[str],
) -> Iterator[tuple[Path, npt.NDArray[np.float32]]]:
    """Yield ``(path, event)`` for each event of a folder in natural numeric order."""
    for path in list_event_files(folder):
        yield path, read_event(path)


def read_event_folder(
    folder: str | os.PathLike[str], limit: int | None = None
) -> tuple[list[Path], npt.NDArray[np.float32]]:
    """Read a folder of text events into one array.

    Args:
        folder: folder of ``track<N>.txt`` files.
        limit: read only the first ``limit`` events in natural order.

    Returns:
        The file paths and a float32 array of shape (n_events, 12, 14, 208).
    """
    paths = list_event_files(folder)
    if limit is not None:
        paths = paths[:limit]
    events = np.zeros((len(paths), *EVENT_SHAPE), dtype=np.float32)
    for i, path in enumerate(paths):
        events[i] = read_event(path)
    return paths, events
