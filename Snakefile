# track-denoiser workflow: synthetic TPC events, a 3D convolutional network
# that separates track voxels from noise, its threshold, its evaluation and
# its application to measured events.
#
#   snakemake -c8                       run locally on config/config.yaml
#   snakemake --profile profiles/pbs    submit every job to a PBS cluster
#
# This file only includes the rule modules; see workflow/rules/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/results_common.smk"


# Every job runs in this Apptainer image when Snakemake is started with
# --sdm apptainer (the PBS profile does); local runs ignore it.
container: TENSORFLOW_IMAGE


wildcard_constraints:
    folder="simulated|labeling",
    index=r"\d+",


include: "workflow/rules/layout.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/threshold.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/denoise.smk"


# ----------------------------------------------------------------------------
# Targets


rule all:
    default_target: True
    input:
        final_targets(),
