"""Snakemake adapter: denoise the configured folder of measured events."""

from track_denoiser.denoise import denoise_folder
from track_denoiser.linefit import LineFitSettings
from track_denoiser.recognition import RecognitionSettings
from track_denoiser.runlog import log_to_file

log_to_file(snakemake.log[0])
denoise_folder(
    snakemake.input.model,
    snakemake.input.events,
    snakemake.output.folder,
    threshold=None,
    batch_size=snakemake.params.batch_size,
    skip_invalid=snakemake.params.skip_invalid,
    progress=False,
    recognition=RecognitionSettings.from_dict(snakemake.params.recognition),
    linefit=LineFitSettings.from_dict(snakemake.params.linefit),
    threads=snakemake.threads,
)
