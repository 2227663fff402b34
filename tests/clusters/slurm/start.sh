#!/usr/bin/env bash
# Start a one-node SLURM cluster for crew's tests (Debian 12, as root, no systemd).
#
# Idempotent: installs what is missing, writes the configuration, and starts only the daemons
# that are not running (a daemon is restarted when its configuration changed).
#
#   CREW_SLURM_OVERSUBSCRIBE  jobs per CPU on the partition (default 4: 2 CPUs run 8 jobs)
#   CREW_SLURM_ACCOUNTING     1 (default) runs MariaDB + slurmdbd so that sacct works; 0 does not
#   CREW_SLURM_CONF_EXTRA     lines added to slurm.conf (tests/clusters/test_start_scripts.py uses
#                             it to make slurmctld fail)
#
# Whatever an earlier run or another SLURM setup left is dealt with: the database user's old
# password is reset, state files of another cluster name are moved aside, pid files count only
# when they name a live process of their daemon, and a leftover daemon holding one of SLURM's
# ports is stopped (by the pid holding the port). When a start fails, the script prints the log
# tail of the daemon it was starting and stops every daemon this run started.
#
# Stop it with stop.sh (by pid file).
set -euo pipefail

oversubscribe=${CREW_SLURM_OVERSUBSCRIBE:-4}
accounting=${CREW_SLURM_ACCOUNTING:-1}
conf=/etc/slurm
log=/var/log/slurm
export DEBIAN_FRONTEND=noninteractive

say() { printf '[slurm start] %s\n' "$*"; }

# ---------------------------------------------------------------- packages
wanted=(slurmctld slurmd slurm-client munge)
if [ "$accounting" = 1 ]; then wanted+=(slurmdbd mariadb-server); fi
missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # Package scripts must not try to start services (there is no init system to do it).
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  if ! apt-cache show slurmctld >/dev/null 2>&1 || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -qq
  fi
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# ---------------------------------------------------------------- helpers
# A pid file counts only when it names a live process of the daemon's program: an earlier run may
# have left a pid file whose pid now belongs to another process, which must never be killed.
daemon_pid() {  # daemon_pid <pid file> <program name>: prints the pid, or fails
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 < "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}
running() { daemon_pid "$1" "$2" >/dev/null; }
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
stop_daemon() {  # stop_daemon <pid file> <program>: the daemon it names, if any; the file goes
  local pid
  if pid=$(daemon_pid "$1" "$2"); then stop_pid "$pid"; fi
  rm -f "$1"
}
port_owner() {  # the pid listening on TCP port $1, if any
  { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; } || true
}
free_port() {  # free_port <port> <program>: stop a leftover <program> (not in our pid file) on it
  local pid
  pid=$(port_owner "$1")
  [ -n "$pid" ] || return 0
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
    say "stopping a leftover $2 (pid $pid) that holds port $1"
    stop_pid "$pid"
  else
    echo "port $1 (for $2) is taken by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null))" >&2
    return 1
  fi
}
wait_for() {  # wait_for <tries> <seconds between> <command...>
  local tries=$1 pause=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep "$pause"; done
  "$@"
}
install_if_changed() {  # install_if_changed <new file> <target>; prints 1 when it changed
  if cmp -s "$1" "$2"; then rm -f "$1"; echo 0; else mv "$1" "$2"; echo 1; fi
}
# What this run started, so that a failed start stops it again, and whose log to show.
started=()   # entries "label|pid file|program|log"
current=""   # the daemon being started or waited for
begin() { current="$1|$2|$3|$4"; }
record() { started+=("$current"); }
on_exit() {
  local status=$? entry label file program logfile
  [ "$status" = 0 ] && return 0
  echo "[slurm start] FAILED (exit $status)" >&2
  if [ -n "$current" ]; then
    IFS='|' read -r label file program logfile <<<"$current"
    echo "[slurm start] last 40 lines of $label's log ($logfile):" >&2
    tail -n 40 "$logfile" 2>/dev/null | sed 's/^/    /' >&2 || true
  fi
  for (( i=${#started[@]}-1; i>=0; i-- )); do
    IFS='|' read -r label file program logfile <<<"${started[$i]}"
    echo "[slurm start] stopping $label, which this run started" >&2
    if [ "$label" = mariadb ]; then /etc/init.d/mariadb stop >/dev/null 2>&1 || true
    else stop_daemon "$file" "$program"; fi
  done
  exit "$status"
}
trap on_exit EXIT

# ---------------------------------------------------------------- configuration
node=$(hostname -s)
getent hosts "$node" >/dev/null || echo "127.0.0.1 $node" >> /etc/hosts
topology=$(slurmd -C | head -n 1)   # NodeName=... CPUs=... RealMemory=...
case "$oversubscribe" in 0|NO|no|"") sharing=NO ;; *) sharing="FORCE:$oversubscribe" ;; esac
if [ "$accounting" = 1 ]; then
  storage="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  storage="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

mkdir -p "$conf" /var/spool/slurmctld /var/spool/slurmd "$log"
cat > "$conf/slurm.conf.crew" <<CONF
# Written by crew's tests/clusters/slurm/start.sh
ClusterName=crew
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$log/slurmctld.log
SlurmdLogFile=$log/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MaxArraySize=100001
MaxJobCount=200000
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
$storage
JobCompType=jobcomp/filetxt
JobCompLoc=$log/jobcomp.log
$topology State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=$sharing
CONF
if [ -n "${CREW_SLURM_CONF_EXTRA:-}" ]; then printf '%s\n' "$CREW_SLURM_CONF_EXTRA" >> "$conf/slurm.conf.crew"; fi
slurm_changed=$(install_if_changed "$conf/slurm.conf.crew" "$conf/slurm.conf")
# SLURM 22.05 cannot disable cgroups in cgroup.conf; without the file it autodetects, which works
# with proctrack/linuxproc and task/none.
rm -f "$conf/cgroup.conf"

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 600 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
munge_works() { munge -n | unmunge; }
if ! munge_works >/dev/null 2>&1; then
  say "starting munged"
  stop_daemon /run/munge/munged.pid munged   # a munged that does not answer, or a stale pid file
  begin munged /run/munge/munged.pid munged /var/log/munge/munged.log
  start-stop-daemon --start --quiet --chuid munge --pidfile /run/munge/munged.pid --exec /usr/sbin/munged -- --force
  record
  wait_for 50 0.1 munge_works >/dev/null
fi

# ---------------------------------------------------------------- accounting
if [ "$accounting" = 1 ]; then
  if ! mysqladmin ping >/dev/null 2>&1; then
    say "starting mariadb"
    begin mariadb /run/mysqld/mysqld.pid mariadbd /var/log/mysql/error.log
    /etc/init.d/mariadb start >/dev/null
    record
    wait_for 100 0.1 mysqladmin ping >/dev/null
  fi
  # ALTER USER too: CREATE USER IF NOT EXISTS keeps the password an earlier setup gave the user.
  mysql -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'crew-slurm-tests';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'crew-slurm-tests';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
  umask_before=$(umask); umask 077
  cat > "$conf/slurmdbd.conf.crew" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$log/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=crew-slurm-tests
StorageLoc=slurm_acct_db
CONF
  umask "$umask_before"
  chmod 600 "$conf/slurmdbd.conf.crew"
  if [ "$(install_if_changed "$conf/slurmdbd.conf.crew" "$conf/slurmdbd.conf")" = 1 ]; then
    stop_daemon /run/slurmdbd.pid slurmdbd
  fi
  begin slurmdbd /run/slurmdbd.pid slurmdbd "$log/slurmdbd.log"
  if ! running /run/slurmdbd.pid slurmdbd; then
    say "starting slurmdbd"
    free_port 6819 slurmdbd
    /usr/sbin/slurmdbd
    record
  fi
  wait_for 100 0.2 sacctmgr -n show cluster >/dev/null
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx crew; then
    sacctmgr -i add cluster crew >/dev/null
  fi
fi

# ---------------------------------------------------------------- slurmctld and slurmd
if [ "$slurm_changed" = 1 ]; then
  stop_daemon /run/slurmd.pid slurmd
  stop_daemon /run/slurmctld.pid slurmctld
fi
begin slurmctld /run/slurmctld.pid slurmctld "$log/slurmctld.log"
if ! running /run/slurmctld.pid slurmctld; then
  # State files of another cluster name make slurmctld stop ("CLUSTER NAME MISMATCH"): they
  # belong to an earlier setup, and are moved aside (to /var/spool/slurmctld.previous).
  state_name=$(cat /var/spool/slurmctld/clustername 2>/dev/null || echo crew)
  if [ "$state_name" != crew ]; then
    say "moving aside the state files of cluster '$state_name' to /var/spool/slurmctld.previous"
    rm -rf /var/spool/slurmctld.previous
    mv /var/spool/slurmctld /var/spool/slurmctld.previous
    mkdir -p /var/spool/slurmctld
  fi
  say "starting slurmctld"
  free_port 6817 slurmctld
  /usr/sbin/slurmctld
  record
fi
controller_up() { scontrol ping | grep -q UP; }
wait_for 100 0.2 controller_up >/dev/null
begin slurmd /run/slurmd.pid slurmd "$log/slurmd.log"
if ! running /run/slurmd.pid slurmd; then
  say "starting slurmd"
  free_port 6818 slurmd
  /usr/sbin/slurmd
  record
fi
node_ready() {
  local state
  state=$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null || true)
  case "$state" in
    idle|mixed|allocated) return 0 ;;
    *drain*|*down*|*inval*|*fail*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
  esac
  return 1
}
wait_for 150 0.2 node_ready
current=""
say "ready: $(sinfo -h -N -o '%N %T cpus=%c') partition debug OverSubscribe=$sharing accounting=$accounting"
