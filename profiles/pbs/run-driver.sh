#!/bin/bash
#PBS -N track-denoiser-driver
#PBS -l select=1:ncpus=1:mem=4gb:scratch_local=1gb
#PBS -l walltime=72:00:00
#PBS -j oe
#
# Run the Snakemake driver itself as a long, light PBS job.
#
# Usage, from the repository root on a frontend:
#
#   qsub profiles/pbs/run-driver.sh
#   qsub -v SNAKEMAKE_ARGS="--until generate_shard" profiles/pbs/run-driver.sh
#   qsub -l walltime=168:00:00 profiles/pbs/run-driver.sh      # a longer run
#
# Why a job: MetaCentrum frontends are for light work and kill long or heavy
# processes, and the Kerberos ticket of a login session expires (10 h by
# default), after which qsub and qstat stop working. The driver only submits
# and polls; every rule runs as its own PBS job through profiles/pbs.
#
# The driver's walltime must cover the whole workflow. When the driver gets
# SIGTERM (walltime reached, or qdel of the driver), Snakemake deletes its
# queued and running jobs with qdel and exits, so no job is left running
# unattended. Submit the driver again to continue: the profile sets
# rerun-incomplete.
#
# Set SNAKEMAKE_ARGS (qsub -v) to pass more options or targets to snakemake.
# The driver's output goes to track-denoiser-driver.o<job id> in the submit
# directory.
set -euo pipefail

# PBS starts the job in the home directory; go back to where qsub was run.
cd "${PBS_O_WORKDIR:?run this script with qsub from the repository root}"

if [[ ! -f profiles/pbs/config.yaml ]]; then
    echo "run-driver.sh: $PWD has no profiles/pbs/config.yaml; qsub from the repository root" >&2
    exit 2
fi

# Snakemake keeps its source cache in $XDG_CACHE_HOME (default ~/.cache); the
# home quota is small and jobs on other nodes must see the same files.
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$PWD/.snakemake/xdg-cache}"
mkdir -p "$XDG_CACHE_HOME"

# Temporary files of the driver go to its own scratch.
if [[ -n ${SCRATCHDIR:-} ]]; then
    export TMPDIR="$SCRATCHDIR"
fi
if command -v clean_scratch >/dev/null 2>&1; then
    trap 'clean_scratch' EXIT
fi

# The environment with snakemake must be on storage that every node mounts.
# A virtual environment in the repository is activated here; otherwise PATH
# must already provide snakemake (e.g. qsub -V from an activated shell).
if [[ -f .venv/bin/activate ]]; then
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

echo "Snakemake driver: PBS job ${PBS_JOBID:-?} on $(hostname), in $PWD"

# A command started in the background by a non-interactive shell ignores
# SIGINT, and so would Snakemake. The small Python step restores the default
# disposition before it executes snakemake, so that the TERM trap below can
# interrupt it.
# SNAKEMAKE_ARGS is split into words on purpose.
# shellcheck disable=SC2086
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
    snakemake --profile profiles/pbs ${SNAKEMAKE_ARGS:-} &
driver=$!

# On SIGTERM Snakemake itself would only stop submitting and wait for its
# running jobs, and PBS kills it about 10 s later, leaving those jobs to run
# without a driver. SIGINT makes it delete them with qdel before it exits.
trap 'kill -INT "$driver" 2>/dev/null || true' TERM

status=0
wait "$driver" || status=$?
# The TERM trap interrupts the first wait; wait for Snakemake's qdel calls.
while kill -0 "$driver" 2>/dev/null; do
    wait "$driver" || status=$?
done
exit "$status"
