"""Snakemake adapter: train the network; a rerun resumes from the backup folder.

Shards and outputs go through node-local scratch when $SCRATCHDIR is set (a
PBS job); the backup folder stays on shared storage so that a rerun on
another node finds it.
"""

from track_denoiser.runlog import log_to_file
from track_denoiser.scratch import staged_inputs, staged_outputs
from track_denoiser.training import train

log_to_file(snakemake.log[0])
n_train = len(snakemake.input.train)
with (
    staged_inputs([*snakemake.input.train, *snakemake.input.validation]) as shards,
    staged_outputs(
        [snakemake.output.model, snakemake.output.history_csv, snakemake.output.history_json]
    ) as (model, history_csv, history_json),
):
    train(
        shards[:n_train],
        shards[n_train:],
        model,
        history_csv,
        history_json,
        snakemake.params.training,
        require_gpu=snakemake.params.require_gpu,
        backup_dir=snakemake.params.backup_dir,
        threads=snakemake.threads,
    )
