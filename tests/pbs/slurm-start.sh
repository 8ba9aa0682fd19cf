#!/bin/bash
# Start a single-node Slurm cluster on the loopback interface for the PBS profile tests.
#
# Usage: slurm-start.sh STATE_DIR
#
# Everything the cluster writes (configuration, daemon state, logs, the
# emulated scratch directories) stays under STATE_DIR; nothing under /etc is
# changed. Clients find the cluster through SLURM_CONF, which STATE_DIR/env.sh
# exports. Stop the cluster with slurm-stop.sh STATE_DIR.
#
# Needs root (slurmd launches jobs and munged must own its key) and the Debian
# packages slurm-wlm and munge. The ports default to 6817 (slurmctld) and
# 6818 (slurmd); set SLURMCTLD_PORT and SLURMD_PORT to use others.
#
# Emulated MetaCentrum job environment:
#   - SCRATCHDIR: a TaskProlog creates STATE_DIR/scratch/<job id> and exports
#     it; the Epilog removes it once the job has ended.
#   - PBS_JOBID (<n>.localhost, the id the qsub layer prints), PBS_JOBNAME and
#     PBS_O_WORKDIR are exported by the same TaskProlog.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: must run as root (slurmd launches jobs, munged reads its key)" >&2
    exit 1
fi

state_dir=$(realpath -m "$1")
ctld_port=${SLURMCTLD_PORT:-6817}
slurmd_port=${SLURMD_PORT:-6818}
mkdir -p "$state_dir"/{munge,ctld,slurmd,log,scratch}
chmod 0755 "$state_dir" "$state_dir/scratch"
chmod 0711 "$state_dir/munge"

# A private munged with its own key and socket, so a munged that the system
# may already run is neither needed nor disturbed.
key="$state_dir/munge/munge.key"
if [[ ! -f $key ]]; then
    mungekey --create --keyfile="$key" --bits=1024
fi
chmod 0600 "$key"
socket="$state_dir/munge/munge.socket"

cat > "$state_dir/taskprolog.sh" <<PROLOG
#!/bin/sh
# Runs before the batch step; every "export NAME=value" line it prints is
# added to the job's environment.
scratch="$state_dir/scratch/\$SLURM_JOB_ID"
mkdir -p "\$scratch"
echo "export SCRATCHDIR=\$scratch"
echo "export PBS_JOBID=\$SLURM_JOB_ID.localhost"
echo "export PBS_JOBNAME=\$SLURM_JOB_NAME"
echo "export PBS_O_WORKDIR=\$SLURM_SUBMIT_DIR"
PROLOG

cat > "$state_dir/epilog.sh" <<EPILOG
#!/bin/sh
# Runs as root on the node after every job.
rm -rf "$state_dir/scratch/\$SLURM_JOB_ID"
EPILOG
chmod 0755 "$state_dir/taskprolog.sh" "$state_dir/epilog.sh"

cat > "$state_dir/slurm.conf" <<CONF
ClusterName=pbstest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
# Bind to 127.0.0.1 instead of every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/slurmd
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
SlurmctldLogFile=$state_dir/log/slurmctld.log
SlurmdLogFile=$state_dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default a job with no memory request takes the whole node.
DefMemPerCPU=500
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Finished jobs are written here; "sacct -c" reads them after slurmctld has
# forgotten the job (MinJobAge seconds after the end).
JobCompType=jobcomp/filetxt
JobCompLoc=$state_dir/log/jobcomp.txt
MinJobAge=30
# Seconds between SIGTERM and SIGKILL when a job hits its time limit or is
# cancelled (PBS waits 10 s on MetaCentrum).
KillWait=2
TaskProlog=$state_dir/taskprolog.sh
Epilog=$state_dir/epilog.sh
# The node offers more CPUs and memory than a small CI machine has, so that
# several tiny test jobs run at once. config_overrides makes slurmd accept it.
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=8000 State=UNKNOWN
# "batch" is the default queue. "gpu" exists so that qsub -q gpu is accepted,
# although it has no GPUs. Any other queue is rejected like an unknown PBS queue.
PartitionName=batch Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
CONF

cat > "$state_dir/env.sh" <<ENV
export SLURM_CONF=$state_dir/slurm.conf
ENV
export SLURM_CONF="$state_dir/slurm.conf"

/usr/sbin/munged --foreground --force --socket="$socket" --key-file="$key" \
    --pid-file="$state_dir/munge/munged.pid" --log-file="$state_dir/log/munged.log" \
    --seed-file="$state_dir/munge/munged.seed" > "$state_dir/log/munged.stdout" 2>&1 &
echo $! > "$state_dir/munged.pid.launch"
for _ in $(seq 50); do
    [[ -S $socket ]] && break
    sleep 0.1
done
if [[ ! -S $socket ]]; then
    echo "$0: munged did not create $socket; see $state_dir/log/munged.log" >&2
    exit 1
fi

/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" > "$state_dir/log/slurmctld.stdout" 2>&1 &
echo $! > "$state_dir/slurmctld.pid.launch"
/usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF" > "$state_dir/log/slurmd.stdout" 2>&1 &
echo $! > "$state_dir/slurmd.pid.launch"

# Wait up to 30 s for the node to accept jobs.
for _ in $(seq 300); do
    if sinfo -h -N -o %T 2>/dev/null | grep -q '^idle'; then
        echo "Slurm is up: SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.1
done
echo "$0: the node did not become idle within 30 s; logs are in $state_dir/log" >&2
exit 1
