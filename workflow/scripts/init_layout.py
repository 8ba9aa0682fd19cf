"""Snakemake adapter: create the data layout and its marker file."""

from track_denoiser.atomic import atomic_write
from track_denoiser.layout import DATA_FOLDERS, init_layout
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
init_layout(snakemake.params.root)
with atomic_write(snakemake.output.marker) as handle:
    handle.write("\n".join(DATA_FOLDERS) + "\n")
