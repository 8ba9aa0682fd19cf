#!/bin/bash
# Install what tests/test_pbs_workflow.py needs: a Slurm controller, a Slurm
# node daemon and munge (Debian 12 packages slurm-wlm and munge). Run as root
# before pytest. The tests start and stop their own single-node cluster on
# 127.0.0.1 (tests/pbs/slurm-start.sh), with a private munge key and state in
# a temporary directory, so nothing is configured or started here.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "slurm-setup.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for program in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/sbin/mungekey /usr/bin/sbatch; do
    [[ -x $program ]] || missing+=("$program")
done

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "slurm-setup.sh: installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Services that the packages may start are not used: the tests run their
    # own daemons on free ports with a private munge socket.
    apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

slurmctld -V
munged --version
