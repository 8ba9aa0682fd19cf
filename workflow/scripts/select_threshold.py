"""Snakemake adapter: choose the threshold on the validation shards."""

from track_denoiser.runlog import log_to_file
from track_denoiser.threshold import select_threshold

log_to_file(snakemake.log[0])
select_threshold(
    snakemake.input.model,
    snakemake.input.validation,
    snakemake.output.threshold,
    snakemake.output.scan,
    metric=snakemake.params.threshold["metric"],
    steps=snakemake.params.threshold["steps"],
    batch_size=snakemake.params.threshold["batch_size"],
)
