#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for tests, CI and trying the Slurm engine locally.
#
#   scripts/slurm-local.sh start    write slurm.conf, start munged, slurmctld, slurmd; wait for idle
#   scripts/slurm-local.sh stop     stop the three daemons this script started (by recorded PID)
#   scripts/slurm-local.sh status   say which of them run, and print sinfo
#
# Everything lives in one scratch folder, ${LAMBENCH_SLURM_DIR:-/tmp/lambench-slurm}: slurm.conf,
# the munge key and socket, Slurm's state and spool folders, logs and PID files. The cluster is
# called "lambench" and has one node (this machine, as `slurmd -C` describes it, reached on
# 127.0.0.1) in two partitions: "debug" (the default) and "batch".
#
# Finding the config: `start` also copies slurm.conf to /etc/slurm/slurm.conf, where Slurm's
# commands look by default, so that plain `sbatch`/`squeue` (e.g. from dpdispatcher) work without
# any environment variable -- but only when that file is absent or was written by this script
# (its first line is the marker below); a site's own slurm.conf is never touched. Otherwise, or
# when /etc/slurm is not writable, export the SLURM_CONF line that `start` prints.
#
# munged runs with its own socket in the scratch folder (run/munge.socket; slurm.conf points Slurm
# at it with AuthInfo=socket=...), so a system munged, if any, is left alone. Its key (in the
# private munge/ folder) is a copy of /etc/munge/munge.key when that exists, else a new one made
# with mungekey (or create-munge-key).
# All daemons run as root (SlurmUser=SlurmdUser=root); when not run as root, the script re-runs
# itself with `sudo -n` if it can.
set -euo pipefail

DIR=${LAMBENCH_SLURM_DIR:-/tmp/lambench-slurm}
CONF="$DIR/slurm.conf"
MARKER="# written by lambench scripts/slurm-local.sh -- safe to overwrite or delete"
SYSTEM_CONF=/etc/slurm/slurm.conf
MUNGE_SOCKET="$DIR/run/munge.socket"
WAIT_IDLE_S=${LAMBENCH_SLURM_WAIT_S:-90}
# proctrack/pgid, not linuxproc: on scancel or a time limit Slurm sends SIGTERM to every process of
# the job; the batch shell dies at once, and linuxproc (which finds a job's processes by walking
# down from the batch shell) then loses a step that handles SIGTERM -- it runs on, orphaned, to the
# end and writes its outputs after the job was reported CANCELLED/TIMEOUT. pgid SIGKILLs the whole
# process group as soon as the batch shell is gone, as proctrack/cgroup does on real clusters.
PROCTRACK=${LAMBENCH_SLURM_PROCTRACK:-proctrack/pgid}
# daemon name -> its PID file (munged and the Slurm daemons write their own)
declare -A PIDFILE=(
  [munged]="$DIR/run/munged.pid"
  [slurmctld]="$DIR/run/slurmctld.pid"
  [slurmd]="$DIR/run/slurmd.pid"
)
ORDER=(munged slurmctld slurmd)

die() { echo "slurm-local: $*" >&2; exit 1; }
say() { echo "slurm-local: $*"; }

need_binaries() {
  local missing=()
  for b in munged slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing ${missing[*]}: apt-get install -y slurm-wlm munge"
  fi
}

# The daemons live in /usr/sbin, which is not always on a non-root PATH.
export PATH="$PATH:/usr/sbin:/sbin"

become_root() {
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      exec sudo -n env "LAMBENCH_SLURM_DIR=$DIR" "LAMBENCH_SLURM_WAIT_S=$WAIT_IDLE_S" \
        "LAMBENCH_SLURM_PROCTRACK=$PROCTRACK" \
        bash "$0" "$@"
    fi
    die "must run as root (or with passwordless sudo) to start the Slurm daemons"
  fi
}

# PID of a daemon we started, if it still runs as that program; empty otherwise.
running_pid() {
  local name=$1 file=${PIDFILE[$1]} pid comm
  pid=$({ tr -dc '0-9' <"$file"; } 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  [ "$comm" = "$name" ] || return 0
  # A zombie (state Z: dead, not yet reaped -- PID 1 of some containers never reaps) is not running.
  [ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
  echo "$pid"
}

stop_one() {
  local name=$1 pid i
  pid=$(running_pid "$name")
  if [ -z "$pid" ]; then
    rm -f "${PIDFILE[$name]}"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ -n "$(running_pid "$name")" ] || break
    sleep 0.1
  done
  if [ -n "$(running_pid "$name")" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "${PIDFILE[$name]}"
  say "stopped $name (pid $pid)"
}

write_conf() {
  local node user
  # `slurmd -C` prints "NodeName=... CPUs=... RealMemory=..." and an "UpTime=..." line.
  node=$(slurmd -C | grep '^NodeName=' | head -n1)
  [ -n "$node" ] || die "slurmd -C printed no NodeName line"
  NODE_NAME=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node")
  user=$(id -un)
  cat >"$CONF" <<EOF
$MARKER
# One-node cluster on $(hostname) for lambench tests; made by scripts/slurm-local.sh start.
ClusterName=lambench
SlurmctldHost=localhost
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that ask no --mem get this much per CPU instead of the whole node.
DefMemPerCPU=1024
ProctrackType=$PROCTRACK
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=30
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node NodeAddr=127.0.0.1 NodeHostname=$NODE_NAME State=UNKNOWN
PartitionName=debug Nodes=$NODE_NAME Default=YES MaxTime=INFINITE State=UP
PartitionName=batch Nodes=$NODE_NAME Default=NO MaxTime=INFINITE State=UP
EOF
  chmod 0644 "$CONF"
}

install_system_conf() {
  if [ -e "$SYSTEM_CONF" ] && ! head -n1 "$SYSTEM_CONF" 2>/dev/null | grep -qxF "$MARKER"; then
    say "$SYSTEM_CONF belongs to someone else; left alone (export SLURM_CONF below)"
    return 0
  fi
  if mkdir -p "$(dirname "$SYSTEM_CONF")" 2>/dev/null && cp "$CONF" "$SYSTEM_CONF" 2>/dev/null; then
    chmod 0644 "$SYSTEM_CONF"
    say "installed $SYSTEM_CONF (a copy of $CONF)"
  else
    say "could not write $SYSTEM_CONF; export SLURM_CONF below"
  fi
}

start_munged() {
  local key="$DIR/munge/munge.key" i
  mkdir -p "$DIR/munge" "$DIR/run"
  chmod 0700 "$DIR/munge"
  chmod 0755 "$DIR/run"
  if [ ! -s "$key" ]; then
    if [ -r /etc/munge/munge.key ]; then
      cp /etc/munge/munge.key "$key"
    elif command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
      mungekey --create --keyfile="$key" >/dev/null
    elif command -v create-munge-key >/dev/null 2>&1 || [ -x /usr/sbin/create-munge-key ]; then
      # older munge: writes /etc/munge/munge.key only
      create-munge-key >/dev/null && cp /etc/munge/munge.key "$key"
    else
      dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
    fi
  fi
  chmod 0400 "$key"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  # --force: run as root and accept a socket outside /run/munge.
  munged --force --socket="$MUNGE_SOCKET" --key-file="$key" \
    --pid-file="${PIDFILE[munged]}" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
  for ((i = 0; i < 50; i++)); do
    [ -S "$MUNGE_SOCKET" ] && [ -n "$(running_pid munged)" ] && return 0
    sleep 0.1
  done
  tail -n 20 "$DIR/log/munged.log" >&2 || true
  die "munged did not start"
}

wait_idle() {
  local deadline=$((SECONDS + WAIT_IDLE_S)) state=""
  while ((SECONDS < deadline)); do
    state=$(SLURM_CONF="$CONF" sinfo -h -n "$NODE_NAME" -o %T 2>/dev/null | head -n1 || true)
    case "$state" in
      idle | mixed | allocated) return 0 ;;
    esac
    [ -n "$(running_pid slurmctld)" ] || { tail -n 30 "$DIR/log/slurmctld.log" >&2 || true; die "slurmctld died"; }
    [ -n "$(running_pid slurmd)" ] || { tail -n 30 "$DIR/log/slurmd.log" >&2 || true; die "slurmd died"; }
    sleep 0.5
  done
  tail -n 30 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  die "node $NODE_NAME not idle after ${WAIT_IDLE_S}s (state: ${state:-none})"
}

cmd_start() {
  need_binaries
  become_root start
  local all=1 name
  for name in "${ORDER[@]}"; do
    [ -n "$(running_pid "$name")" ] || all=0
  done
  if [ "$all" = 1 ]; then
    say "already running (config $CONF); nothing to do"
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  # Leftovers of an earlier, partial start: stop them and begin afresh.
  for name in slurmd slurmctld munged; do stop_one "$name"; done
  mkdir -p "$DIR"/{state,spool,log,run}
  chmod 0755 "$DIR"
  write_conf
  install_system_conf
  start_munged
  # Job state in $DIR/state is kept between starts, so job IDs keep growing.
  slurmctld -f "$CONF"
  slurmd -f "$CONF"
  wait_idle
  say "running: munged $(running_pid munged), slurmctld $(running_pid slurmctld), slurmd $(running_pid slurmd);" \
    "partitions debug (default), batch on node $NODE_NAME"
  echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
  become_root stop
  local name
  for name in slurmd slurmctld munged; do stop_one "$name"; done
  say "stopped"
}

cmd_status() {
  local name pid rc=0
  for name in "${ORDER[@]}"; do
    pid=$(running_pid "$name")
    if [ -n "$pid" ]; then echo "$name: running (pid $pid)"; else echo "$name: not running"; rc=1; fi
  done
  if [ -r "$CONF" ] && [ "$rc" = 0 ]; then
    SLURM_CONF="$CONF" sinfo || rc=1
  fi
  echo "export SLURM_CONF=$CONF"
  return "$rc"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
