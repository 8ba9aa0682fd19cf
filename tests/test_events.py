"""Text event files: round trip, natural order, malformed input, atomic writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from track_denoiser import constants as c
from track_denoiser import events as events_module
from track_denoiser.events import (
    EventFormatError,
    event_number,
    list_event_files,
    read_event,
    read_event_folder,
    write_event,
)


def _random_event(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    event = np.zeros(c.EVENT_SHAPE, dtype=np.float32)
    flat = rng.choice(event.size, size=300, replace=False)
    event.reshape(-1)[flat[:150]] = rng.integers(1, 900, 150)  # ADC counts
    event.reshape(-1)[flat[150:]] = rng.random(150).astype(np.float32)  # fractions
    return event


def test_round_trip(tmp_path: Path) -> None:
    event = _random_event(0)
    path = tmp_path / "track1.txt"
    write_event(path, event)
    back = read_event(path)
    assert back.dtype == np.float32
    assert back.shape == c.EVENT_SHAPE
    assert np.array_equal(back, event)
    assert len(path.read_text().splitlines()) == 300


def test_round_trip_edges(tmp_path: Path) -> None:
    event = np.zeros(c.EVENT_SHAPE, dtype=np.float32)
    event[0, 0, 0] = 1
    event[c.N_X - 1, c.N_Y - 1, c.N_Z - 1] = 800
    path = tmp_path / "track2.txt"
    write_event(path, event)
    assert path.read_text() == "0,0,0,1\n11,13,207,800\n"
    assert np.array_equal(read_event(path), event)


def test_write_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"shape \(12, 14, 207\)"):
        write_event(tmp_path / "track1.txt", np.zeros((12, 14, 207)))
    assert list(tmp_path.iterdir()) == []


def test_reads_spaces_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "track3.txt"
    path.write_text("1, 2, 3, 4.5\n\n  5 ,6, 7 , 8\n")
    event = read_event(path)
    assert event[1, 2, 3] == 4.5
    assert event[5, 6, 7] == 8
    assert np.count_nonzero(event) == 2


def test_empty_file_is_empty_event(tmp_path: Path) -> None:
    path = tmp_path / "track4.txt"
    path.write_text("")
    event = read_event(path)
    assert event.shape == c.EVENT_SHAPE
    assert not event.any()


def test_natural_order(tmp_path: Path) -> None:
    for n in (10, 2, 1, 100, 33):
        (tmp_path / f"track{n}.txt").write_text(f"0,0,0,{n}\n")
    (tmp_path / "labels.txt").write_text("name\tlabel\n")
    (tmp_path / "track5.txt.bak").write_text("")
    (tmp_path / "notes").mkdir()

    names = [p.name for p in list_event_files(tmp_path)]
    assert names == ["track1.txt", "track2.txt", "track10.txt", "track33.txt", "track100.txt"]

    paths, events = read_event_folder(tmp_path, limit=3)
    assert [event_number(p) for p in paths] == [1, 2, 10]
    assert events[:, 0, 0, 0].tolist() == [1, 2, 10]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_event_files(tmp_path / "nowhere")


MALFORMED = [
    # line content, words the message must contain
    ("1,2,abc,4", ["z coordinate", "'abc'", "not a number"]),
    ("1,2,3", ["4 comma-separated fields", "found 3"]),
    ("1,2,3,4,5", ["4 comma-separated fields", "found 5"]),
    ("1.5,2,3,4", ["x coordinate", "'1.5'", "not an integer"]),
    ("12,2,3,4", ["x coordinate 12", "outside the event", "[0, 12)"]),
    ("1,14,3,4", ["y coordinate 14", "outside the event", "[0, 14)"]),
    ("1,2,208,4", ["z coordinate 208", "outside the event", "[0, 208)"]),
    ("-1,2,3,4", ["x coordinate -1", "outside the event"]),
    ("1,2,3,nan", ["amplitude 'nan'", "not finite"]),
    ("1,2,3,inf", ["amplitude 'inf'", "not finite"]),
    ("1,2,3,-0.5", ["amplitude -0.5", "negative"]),
    ("1,2,3,big", ["amplitude 'big'", "not a number"]),
]


@pytest.mark.parametrize(("line", "words"), MALFORMED)
def test_malformed_line(tmp_path: Path, line: str, words: list[str]) -> None:
    path = tmp_path / "track7.txt"
    path.write_text(f"0,0,0,1\n\n{line}\n4,4,4,4\n")
    with pytest.raises(EventFormatError) as info:
        read_event(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    for word in words:
        assert word in message
    assert info.value.path == path
    assert info.value.line == 3


def test_integer_valued_float_coordinate_accepted(tmp_path: Path) -> None:
    path = tmp_path / "track8.txt"
    path.write_text("3.0,4,5,6\n")
    assert read_event(path)[3, 4, 5] == 6


def test_repeated_voxel_keeps_later_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "track9.txt"
    path.write_text("1,2,3,10\n0,0,0,1\n1,2,3,20\n")
    with caplog.at_level(logging.WARNING, logger="track_denoiser.events"):
        event = read_event(path)
    assert event[1, 2, 3] == 20
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    assert "line 3" in warnings[0]
    assert "line 1" in warnings[0]
    assert "(1, 2, 3)" in warnings[0]


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_event(tmp_path / "track1.txt", _random_event(1))
    write_event(tmp_path / "track1.txt", _random_event(2))
    assert [p.name for p in tmp_path.iterdir()] == ["track1.txt"]
    assert np.array_equal(read_event(tmp_path / "track1.txt"), _random_event(2))


@pytest.fixture
def fail_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``write_event`` raise OSError after it has written 10 lines."""
    original = events_module._format_amplitude
    calls = {"n": 0}

    def failing(value: float) -> str:
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError("disk full")
        return original(value)

    monkeypatch.setattr(events_module, "_format_amplitude", failing)


@pytest.mark.usefixtures("fail_mid_write")
def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="disk full"):
        write_event(tmp_path / "track1.txt", _random_event(3))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "track1.txt"
    write_event(path, _random_event(4))
    before = path.read_bytes()
    monkeypatch.setattr(events_module, "_format_amplitude", _raise_disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_event(path, _random_event(5))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["track1.txt"]


def _raise_disk_full(value: float) -> str:
    raise OSError("disk full")
