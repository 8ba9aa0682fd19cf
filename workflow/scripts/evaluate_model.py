"""Snakemake adapter: evaluate every model on the same events."""

from pathlib import Path

from track_denoiser.evaluation import evaluate_stage
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
evaluate_stage(
    model=snakemake.input.model,
    threshold=snakemake.input.threshold,
    data_root=snakemake.params.data_root,
    shard_format=snakemake.params.shard_format,
    test_range=snakemake.params.test_range,
    labeling_range=snakemake.params.labeling_range,
    evaluation=snakemake.params.evaluation,
    output_dir=Path(snakemake.output.metrics).parent,
    threads=snakemake.threads,
)
