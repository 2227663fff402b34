#!/usr/bin/env bash
# Start a one-node SLURM cluster for crew's tests (Debian 12, as root, no systemd).
#
# Idempotent: installs what is missing, writes the configuration, and starts only the daemons
# that are not running (a daemon is restarted when its configuration changed).
#
#   CREW_SLURM_OVERSUBSCRIBE  jobs per CPU on the partition (default 4: 2 CPUs run 8 jobs)
#   CREW_SLURM_ACCOUNTING     1 (default) runs MariaDB + slurmdbd so that sacct works; 0 does not
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
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_by_pidfile() {
  local file=$1 pid
  running "$file" || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
wait_for() {  # wait_for <tries> <seconds between> <command...>
  local tries=$1 pause=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep "$pause"; done
  "$@"
}
install_if_changed() {  # install_if_changed <new file> <target>; prints 1 when it changed
  if cmp -s "$1" "$2"; then rm -f "$1"; echo 0; else mv "$1" "$2"; echo 1; fi
}

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
  rm -f /run/munge/munged.pid
  start-stop-daemon --start --quiet --chuid munge --exec /usr/sbin/munged -- --force
fi
wait_for 50 0.1 munge_works >/dev/null

# ---------------------------------------------------------------- accounting
if [ "$accounting" = 1 ]; then
  if ! mysqladmin ping >/dev/null 2>&1; then
    say "starting mariadb"
    /etc/init.d/mariadb start >/dev/null
  fi
  wait_for 100 0.1 mysqladmin ping >/dev/null
  mysql -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'crew-slurm-tests';
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
    stop_by_pidfile /run/slurmdbd.pid
  fi
  if ! running /run/slurmdbd.pid; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd
  fi
  wait_for 100 0.2 sacctmgr -n show cluster >/dev/null
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx crew; then
    sacctmgr -i add cluster crew >/dev/null
  fi
fi

# ---------------------------------------------------------------- slurmctld and slurmd
if [ "$slurm_changed" = 1 ]; then
  stop_by_pidfile /run/slurmd.pid
  stop_by_pidfile /run/slurmctld.pid
fi
if ! running /run/slurmctld.pid; then
  say "starting slurmctld"
  /usr/sbin/slurmctld
fi
controller_up() { scontrol ping | grep -q UP; }
wait_for 100 0.2 controller_up >/dev/null
if ! running /run/slurmd.pid; then
  say "starting slurmd"
  /usr/sbin/slurmd
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
say "ready: $(sinfo -h -N -o '%N %T cpus=%c') partition debug OverSubscribe=$sharing accounting=$accounting"
