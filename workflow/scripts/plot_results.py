"""Snakemake adapter: draw every figure of the evaluation."""

from pathlib import Path

from track_denoiser.plotting import plot_results
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
plot_results(
    Path(snakemake.input.metrics).parent,
    Path(snakemake.output.roc).parent,
    history=snakemake.input.history,
    n_examples=snakemake.params.n_examples,
)
