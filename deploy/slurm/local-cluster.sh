#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, for testing the job scripts
# (tests/slurm.rs uses it). Needs root and `apt-get install -y slurm-wlm munge` (Debian 12:
# Slurm 22.05, MUNGE 0.5). No init system is needed: munged, slurmctld and slurmd are
# started by hand and everything they write (config, state, spool, logs, pid files, the
# munge socket) stays under DIR.
#
#   deploy/slurm/local-cluster.sh start DIR   # writes DIR/slurm.conf, starts the daemons,
#                                             # waits until the node is idle
#   export SLURM_CONF=DIR/slurm.conf          # then sbatch, squeue, scontrol, sinfo work
#   deploy/slurm/local-cluster.sh status DIR
#   deploy/slurm/local-cluster.sh stop DIR    # kills the daemons started by `start DIR`
#
# Choices, and why (measured on a 2-core Debian 12 VM without cgroups, see
# /work/shared/SLURM-NOTES.md):
# - munged runs as user munge with its own socket DIR/munge/munge.socket.2 (Slurm points at
#   it with AuthInfo=socket=...): /run/munge need not exist and a system munged is untouched.
# - proctrack/linuxproc and task/none: the cgroup plugins fail in containers without the
#   freezer controller (the node goes to DRAIN).
# - select/cons_tres with CR_Core: array tasks share the cores (select/linear would give
#   each task the whole node, so they would run one after another).
# - NodeName = `hostname -s`, CPUs from nproc, RealMemory 90 % of MemTotal.
# - The two ports are picked at random among free ones (SLURMCTLD_PORT / SLURMD_PORT
#   override), so the test cluster does not collide with another Slurm on the machine.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")

need() {
    for b in "$@"; do
        command -v "$b" >/dev/null || {
            echo "$0: $b not found; install Slurm and MUNGE: apt-get install -y slurm-wlm munge" >&2
            exit 1
        }
    done
}

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    echo "$0: no free port found" >&2
    exit 1
}

# Every process of this cluster: `start` gives the daemons IONFIELD_LOCAL_SLURM=DIR in
# their environment; slurmstepd (which slurmd starts with a fresh environment) listens on
# a Unix socket in DIR/spool; batch scripts run as DIR/spool/job*/slurm_script. Their
# descendants (the job's programs) are included.
cluster_pids() {
    local e pid ppid roots=() all
    for e in /proc/[0-9]*/environ; do
        pid=${e#/proc/}
        pid=${pid%/environ}
        [ "$pid" = $$ ] && continue
        if { tr '\0' '\n' <"$e" | grep -qxF "IONFIELD_LOCAL_SLURM=$dir"; } 2>/dev/null \
            || { tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/spool/"; } 2>/dev/null; then
            roots+=("$pid")
        fi
    done
    while read -r pid; do roots+=("$pid"); done < <(ss -Hxlp 2>/dev/null \
        | awk -v d="$dir/" 'index($5, d) == 1' | grep -o 'pid=[0-9]*' | cut -d= -f2)
    # Descendants: repeat "children of the set" until it stops growing.
    all=" ${roots[*]} "
    local grew=1
    while [ $grew = 1 ]; do
        grew=0
        while read -r pid ppid; do
            case $all in *" $ppid "*) case $all in *" $pid "*) ;; *) all+="$pid "; grew=1 ;; esac ;; esac
        done < <(ps -e -o pid=,ppid=)
    done
    echo "$all" | tr ' ' '\n' | grep -v '^$' | grep -vx "$$" | sort -u
}

# Cancels the cluster's jobs (up to 15 s for them to end), TERMs every daemon, waits for
# each (up to 10 s, then KILL), then KILLs whatever process of the cluster is left (a
# slurmstepd that outlived slurmd, a job's processes).
stop() {
    local f pid jobs pids=()
    if [ -f "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
        export SLURM_CONF=$dir/slurm.conf
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086 # one job id per word
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
        fi
    fi
    for f in "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid" "$dir/munge/munged.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then pids+=("$pid"); fi
        rm -f "$f"
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in $(cluster_pids); do kill -KILL "$pid" 2>/dev/null || true; done
}

logs() {
    for f in "$dir"/log/*.log "$dir"/munge/munged.log; do
        [ -f "$f" ] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
    done >&2
}

start() {
    [ "$(id -u)" = 0 ] || { echo "$0: must run as root (slurmd and munged)" >&2; exit 1; }
    need munged slurmctld slurmd sinfo ss
    [ -r /etc/munge/munge.key ] || { echo "$0: /etc/munge/munge.key missing (apt-get install -y munge creates it)" >&2; exit 1; }
    mkdir -p "$dir"/{state,spool,log,run,munge}
    # munged checks that no one else can write along its socket's path and that everyone
    # can reach the socket (execute permission on every directory).
    chmod 0755 "$dir"
    chown munge:munge "$dir/munge"
    chmod 0755 "$dir/munge"
    local host cpus mem ctld_port d_port t0
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    ctld_port=${SLURMCTLD_PORT:-$(free_port)}
    d_port=${SLURMD_PORT:-$(free_port)}
    cat >"$dir/slurm.conf" <<CONF
# Written by deploy/slurm/local-cluster.sh: a single-node test cluster.
ClusterName=ionfield-test
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Finished jobs stay visible to scontrol for 10 minutes (there is no accounting database).
MinJobAge=600
SchedulerParameters=sched_interval=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf
    # Marks the daemons (and the slurmstepd they start) for `stop`.
    export IONFIELD_LOCAL_SLURM=$dir
    runuser -u munge -- munged --socket="$dir/munge/munge.socket.2" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" \
        || { logs; stop; exit 1; }
    slurmctld -f "$dir/slurm.conf" || { logs; stop; exit 1; }
    slurmd -f "$dir/slurm.conf" || { logs; stop; exit 1; }
    t0=$SECONDS
    until [ "$(sinfo -h -N -n "$host" -o %T 2>/dev/null)" = idle ]; do
        if [ $((SECONDS - t0)) -ge 60 ]; then
            echo "$0: node $host not idle after 60 s: $(sinfo -h -N -o '%T %E' 2>&1)" >&2
            logs
            stop
            exit 1
        fi
        sleep 0.5
    done
    echo "local Slurm up: node $host idle ($cpus CPUs), controller port $ctld_port"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$dir/slurm.conf sinfo -N -l ;;
    *) usage ;;
esac
