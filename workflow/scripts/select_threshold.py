"""Snakemake adapter: choose the threshold on the validation shards."""

from track_denoiser.runlog import log_to_file
from track_denoiser.scratch import staged_inputs, staged_outputs
from track_denoiser.threshold import select_threshold

log_to_file(snakemake.log[0])
with (
    staged_inputs([snakemake.input.model, *snakemake.input.validation]) as (model, *validation),
    staged_outputs([snakemake.output.threshold, snakemake.output.scan]) as (threshold, scan),
):
    select_threshold(
        model,
        validation,
        threshold,
        scan,
        metric=snakemake.params.threshold["metric"],
        steps=snakemake.params.threshold["steps"],
        batch_size=snakemake.params.threshold["batch_size"],
    )
