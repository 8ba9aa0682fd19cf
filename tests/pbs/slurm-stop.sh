#!/bin/bash
# Stop the Slurm cluster that slurm-start.sh started in STATE_DIR.
#
# Usage: slurm-stop.sh STATE_DIR
#
# Sends SIGTERM to the daemons whose process ids slurm-start.sh recorded, and
# SIGKILL to any that are still running after 15 s. Other Slurm or munge
# processes on the machine are left alone.
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
state_dir=$(realpath -m "$1")

pids=()
for daemon in slurmd slurmctld munged; do
    pid_file="$state_dir/$daemon.pid.launch"
    [[ -f $pid_file ]] || continue
    pid=$(<"$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        pids+=("$pid")
    fi
    rm -f "$pid_file"
done

for _ in $(seq 150); do
    alive=0
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && alive=1
    done
    [[ $alive -eq 0 ]] && exit 0
    sleep 0.1
done
for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
        echo "$0: process $pid ignored SIGTERM for 15 s; sending SIGKILL" >&2
        kill -KILL "$pid"
    fi
done
exit 0
