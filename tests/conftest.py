"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from track_denoiser import constants as c
from track_denoiser.layout import init_layout


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """Return an empty data root with the data folder tree created."""
    root = tmp_path / "root"
    init_layout(root)
    return root


def _write_pad_tagged_backgrounds(folder: Path, n_events: int, first_amplitude: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_events):
        amplitude = first_amplitude + k
        lines = [
            f"{x},{y},{x * c.N_Y + y},{amplitude}\n" for x in range(c.N_X) for y in range(c.N_Y)
        ]
        (folder / f"track{k}.txt").write_text("".join(lines))
    return folder


@pytest.fixture(scope="session")
def write_backgrounds() -> Callable[..., Path]:
    """Return a writer of fake noise-only text events: ``write(folder, n, first_amplitude=10)``.

    It writes ``track0.txt`` ... ``track<n-1>.txt`` into ``folder`` and
    returns ``folder``. Event k contains one voxel in every pad: pad (x, y) has
    its voxel at time bin z = x * 14 + y with amplitude ``first_amplitude + k``
    (ADC counts). After pad swaps each voxel still tells the pad it came from
    (its z) and the event that was drawn (its amplitude).
    """
    return _write_pad_tagged_backgrounds
