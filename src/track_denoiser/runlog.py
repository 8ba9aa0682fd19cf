"""Logging setup for workflow scripts: everything goes to the rule's log file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

__all__ = ["log_to_file"]


def log_to_file(path: str | os.PathLike[str], level: int = logging.INFO) -> None:
    """Send log records, warnings and uncaught exceptions to ``path``.

    Workflow scripts call this first with ``snakemake.log[0]``, so a failed
    job's log file contains the traceback that Snakemake points the user to.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)

    def _log_uncaught(kind, value, traceback):
        logging.getLogger("track_denoiser").critical(
            "job failed", exc_info=(kind, value, traceback)
        )
        sys.__excepthook__(kind, value, traceback)

    sys.excepthook = _log_uncaught
