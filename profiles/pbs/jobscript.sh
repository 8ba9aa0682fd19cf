#!/bin/sh
# properties = {properties}
#
# PBS job script template for Snakemake (the "jobscript" of
# profiles/pbs/config.yaml). Snakemake fills in the two placeholders in braces,
# so literal shell braces are doubled. POSIX sh, because PBS may start the
# script with the user's login shell.

echo "PBS job ${{PBS_JOBID:-(no PBS_JOBID)}} on $(hostname), started $(date '+%Y-%m-%d %H:%M:%S')" >&2

if [ -n "${{SCRATCHDIR:-}}" ]; then
    # Temporary files go to the job's node-local scratch, not to /tmp (1 GB
    # quota on MetaCentrum) or to shared storage.
    export TMPDIR="$SCRATCHDIR"
    # The scratch path is only known here, on the execution node, so it is
    # bound into Apptainer containers through the environment instead of
    # apptainer-args (which the profile expands on the submitting host).
    export APPTAINER_BINDPATH="${{APPTAINER_BINDPATH:+$APPTAINER_BINDPATH,}}$SCRATCHDIR"
    export SINGULARITY_BINDPATH="${{SINGULARITY_BINDPATH:+$SINGULARITY_BINDPATH,}}$SCRATCHDIR"
fi

if command -v clean_scratch >/dev/null 2>&1; then
    # MetaCentrum's clean_scratch empties $SCRATCHDIR. It runs on every exit,
    # including a failure. When PBS sends SIGTERM (walltime, qdel), the TERM
    # trap turns the signal into an exit, so the EXIT trap runs; PBS sends
    # SIGKILL about 10 s later, which leaves time only for deleting files.
    trap 'clean_scratch' EXIT
    trap 'exit 143' TERM
fi

{exec_job}
