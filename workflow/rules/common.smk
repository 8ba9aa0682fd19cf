# Helpers shared by the rules files (config validation, shard file names,
# per-rule resources). No rules are defined here.

import os
from pathlib import Path

from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

DATA_ROOT = config["data_root"]

# Apptainer image with TensorFlow and this package; used with --sdm apptainer.
TENSORFLOW_IMAGE = config["container"]["image"]
SHARD_FORMAT = config["shard_format"]

# Data subfolder of each generator mode, as in the original layout.
MODE_FOLDERS = {"denoising": "simulated", "labeling": "labeling"}
FOLDER_MODES = {folder: mode for mode, folder in MODE_FOLDERS.items()}


def data_path(*parts):
    """Return a path under the data root, without a leading './'."""
    return os.path.normpath(os.path.join(DATA_ROOT, *parts))


LAYOUT_MARKER = data_path("data", ".layout")


def shard_outputs(fmt=SHARD_FORMAT):
    """Named output patterns of one shard ({folder}, {index}) in format ``fmt``."""
    if fmt == "compact":
        return {"compact": data_path("data", "{folder}", "compact", "{index}.npz")}
    return {
        "noisy": data_path("data", "{folder}", "noisy", "{index}.npy"),
        "clean": data_path("data", "{folder}", "clean", "{index}.npy"),
    }


def shard_files(mode, first, last, fmt=SHARD_FORMAT):
    """Files of shards [first, last) of a generator mode ("denoising" or "labeling")."""
    folder = MODE_FOLDERS[mode]
    files = []
    for index in range(first, last):
        for pattern in shard_outputs(fmt).values():
            files.append(pattern.format(folder=folder, index=index))
    return files


def shard_range(name):
    """Return the configured half-open range of shards ``name`` as (first, last)."""
    first, last = config["shards"][name]
    if last <= first:
        raise ValueError(
            f"config shards.{name} = [{first}, {last}] is empty; give [first, last) with last > first"
        )
    return first, last


def noise_mode(folder):
    """Noise mode configured for the shards of a data folder."""
    mode = FOLDER_MODES[folder]
    return config["shards"][f"{mode}_noise"]


def generator_settings(wildcards):
    """Generator settings of a shard, passed as params so edits regenerate it."""
    settings = dict(config["generator"])
    settings["mode"] = FOLDER_MODES[wildcards.folder]
    settings["noise"] = noise_mode(wildcards.folder)
    return settings


def background_files(wildcards):
    """Measured noise events a shard depends on (none for synthetic noise)."""
    if noise_mode(wildcards.folder) == 0:
        return []
    from track_denoiser.constants import BACKGROUND_POOL_SIZE
    from track_denoiser.events import list_event_files

    folder = data_path("data", "x17", "gauge_backgrounds")
    if not os.path.isdir(folder):
        raise WorkflowError(
            f"noise mode {noise_mode(wildcards.folder)} needs measured noise events in {folder}; "
            "add track<N>.txt noise-only events there or set the noise mode to 0"
        )
    return [str(p) for p in list_event_files(folder)[:BACKGROUND_POOL_SIZE]]


def stage_resource(rule_name, key, default):
    """Resource ``key`` of a rule from config["resources"], or ``default``."""
    return config.get("resources", {}).get(rule_name, {}).get(key, default)


def final_targets():
    """Files that ``snakemake`` without a target builds."""
    targets = [LAYOUT_MARKER]
    for name, mode in (
        ("train", "denoising"),
        ("validation", "denoising"),
        ("test", "denoising"),
        ("labeling_test", "labeling"),
    ):
        targets += shard_files(mode, *shard_range(name))
    targets += extra_targets()
    return targets


# Files included after this one append their final outputs here.
EXTRA_TARGETS = []


def extra_targets():
    return list(EXTRA_TARGETS)
