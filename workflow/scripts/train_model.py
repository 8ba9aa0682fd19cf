"""Snakemake adapter: train the network; a rerun resumes from the backup folder."""

from track_denoiser.runlog import log_to_file
from track_denoiser.training import train

log_to_file(snakemake.log[0])
train(
    snakemake.input.train,
    snakemake.input.validation,
    snakemake.output.model,
    snakemake.output.history_csv,
    snakemake.output.history_json,
    snakemake.params.training,
    require_gpu=snakemake.params.require_gpu,
    backup_dir=snakemake.params.backup_dir,
    threads=snakemake.threads,
)
