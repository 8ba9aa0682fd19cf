"""Snakemake adapter: write the HTML report."""

from pathlib import Path

from track_denoiser.report import build_report
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
build_report(
    Path(snakemake.input.metrics).parent,
    list(snakemake.input.plots),
    snakemake.output.html,
    embed_images=snakemake.params.embed_images,
    run_settings=snakemake.params.run_settings,
)
