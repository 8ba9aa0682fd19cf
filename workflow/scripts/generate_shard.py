"""Snakemake adapter: generate one shard with the configured settings."""

from track_denoiser.generator import GeneratorSettings
from track_denoiser.production import generate_shards
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
generate_shards(
    snakemake.params.root,
    GeneratorSettings(**snakemake.params.settings),
    seed=snakemake.params.seed,
    indices=[int(snakemake.wildcards.index)],
    fmt=snakemake.params.fmt,
    overwrite=True,
    progress=False,
)
