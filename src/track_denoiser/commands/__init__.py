"""Subcommands of the ``track-denoiser`` command line, one module each."""
