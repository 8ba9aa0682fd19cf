"""Hand labels of measured events.

The label file is text: one header line (its content is ignored), then one
line per event, ``<name><TAB><label>``. The name is the event's file name
without ``.txt`` (``track123``; ``track123.txt`` is accepted too) and the label
is an integer, greater than 0 when the event contains a track. Blank lines are
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .atomic import atomic_write
from .events import event_number

__all__ = [
    "LabelFormatError",
    "event_name",
    "read_labels",
    "select_validation_events",
    "write_labels",
]


class LabelFormatError(ValueError):
    """A label file line that does not follow ``<name><TAB><label>``."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")


def event_name(name: str) -> str:
    """Return the event name without a ``.txt`` suffix (``track12.txt`` -> ``track12``)."""
    return name.removesuffix(".txt")


def read_labels(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a label file.

    Args:
        path: the label file (header line, then ``name<TAB>label`` lines).

    Returns:
        Event name (without ``.txt``) -> integer label, in natural order of
        the event number.

    Raises:
        LabelFormatError: a line is malformed, a name is not ``track<N>``, a
            label is not an integer, or a name repeats. The message names the
            file and line.
    """
    path = Path(path)
    labels: dict[str, int] = {}
    lines: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no == 1:
                continue
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split("\t")
            if len(fields) != 2:
                msg = f"expected '<name><TAB><label>', found {len(fields)} tab-separated fields: {text!r}"
                raise LabelFormatError(path, line_no, msg)
            name = event_name(fields[0].strip())
            try:
                event_number(f"{name}.txt")
            except ValueError:
                msg = f"event name {fields[0].strip()!r} is invalid; expected 'track<N>'"
                raise LabelFormatError(path, line_no, msg) from None
            token = fields[1].strip()
            try:
                label = int(token)
            except ValueError:
                msg = f"label {token!r} is not an integer; expected 0 (no track) or a positive integer (track)"
                raise LabelFormatError(path, line_no, msg) from None
            if name in labels:
                msg = f"event {name} is labelled twice, on lines {lines[name]} and {line_no}"
                raise LabelFormatError(path, line_no, msg)
            labels[name] = label
            lines[name] = line_no
    return {name: labels[name] for name in sorted(labels, key=lambda n: event_number(f"{n}.txt"))}


def write_labels(path: str | os.PathLike[str], labels: Mapping[str, int]) -> None:
    """Write a label file (header ``name<TAB>label``), atomically."""
    with atomic_write(path) as handle:
        handle.write("name\tlabel\n")
        for name, label in labels.items():
            handle.write(f"{event_name(name)}\t{int(label)}\n")


def select_validation_events(labels: Mapping[str, int], skip_first: int) -> dict[str, int]:
    """Drop the first ``skip_first`` events in natural order of the event number.

    The first measured events calibrated the synthetic event model (100 in the
    published analysis), so they are not used to judge a model.
    """
    if skip_first < 0:
        msg = f"skip_first {skip_first} is invalid; expected 0 or more"
        raise ValueError(msg)
    ordered = sorted(labels, key=lambda n: event_number(f"{event_name(n)}.txt"))
    return {name: labels[name] for name in ordered[skip_first:]}
