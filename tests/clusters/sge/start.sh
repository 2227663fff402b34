#!/usr/bin/env bash
# Start a one-host Son of Grid Engine 8.1.9 cluster (Debian gridengine-* packages) for crew's
# tests, as root and without systemd. Idempotent: installs what is missing, (re)writes the
# configuration, starts sge_qmaster / sge_execd only when they are not running.
#
#   SGE_ROOT=/var/lib/gridengine  SGE_CELL=default  queue all.q (CREW_SGE_SLOTS, default 8)  PE smp
#
# Afterwards:  export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
#
# Pid files count only when they name a live process of their daemon (stale ones are removed);
# when a start fails, the script prints the failing daemon's messages tail and stops the daemons
# this run started.
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default DEBIAN_FRONTEND=noninteractive
SLOTS=${CREW_SGE_SLOTS:-8}
HOST=$(hostname)
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
START=$(date +%s)
say() { echo "[sge start +$(( $(date +%s) - START ))s] $*"; }

if [ "$(id -u)" != 0 ]; then echo "tests/clusters/sge/start.sh must run as root" >&2; exit 2; fi

# The host name must resolve, and the qmaster's reverse lookup of our address must give our name
# back (else commlib refuses clients: "client IP resolved to host name localhost ..."); the
# second half is fixed with host_aliases below.
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts

# ---------------------------------------------------------------- packages
need=()
for pkg in gridengine-master gridengine-exec gridengine-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  for pkg in gridengine-common gridengine-master gridengine-exec gridengine-client; do
    echo "$pkg shared/gridengineconfig boolean true"
    echo "$pkg shared/gridenginecell string $SGE_CELL"
    echo "$pkg shared/gridenginemaster string $HOST"
  done | debconf-set-selections
  # no daemons from the maintainer scripts: there is no init system to run them
  own_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=yes
  fi
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${need[@]}"; }
  apt_install >/tmp/crew-sge-apt.log 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update >>/tmp/crew-sge-apt.log 2>&1
    apt_install >>/tmp/crew-sge-apt.log 2>&1 || { tail -30 /tmp/crew-sge-apt.log >&2; exit 1; }
  }
  [ "$own_policy" = yes ] && rm -f /usr/sbin/policy-rc.d
fi

# The cell is made by gridengine-master's postinst when debconf was preseeded; else make it here.
if [ ! -s "$COMMON/bootstrap" ] || [ -z "$(ls -A "$SPOOL/spooldb" 2>/dev/null)" ]; then
  say "initialising the cell"
  mkdir -p "$COMMON" "$SPOOL/qmaster/job_scripts" "$SPOOL/spooldb" "$SPOOL/execd"
  chown -R sgeadmin:sgeadmin "$SGE_ROOT" "$SPOOL"
  [ -s "$COMMON/bootstrap" ] || install -m 0644 -o sgeadmin -g sgeadmin /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
  su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOL/spooldb sgeadmin" sgeadmin
fi
mkdir -p "$SPOOL/execd"; chown sgeadmin:sgeadmin "$SPOOL/execd"

address=$(getent hosts "$HOST" | awk '{print $1; exit}')
reverse=$(/usr/lib/gridengine/gethostbyaddr -name "$address" 2>/dev/null || true)
if [ -n "$reverse" ] && [ "$reverse" != "$HOST" ]; then
  echo "$HOST $reverse" > "$COMMON/host_aliases"; chown sgeadmin:sgeadmin "$COMMON/host_aliases"
else
  rm -f "$COMMON/host_aliases"
fi
echo "$HOST" > "$COMMON/act_qmaster"; chown sgeadmin:sgeadmin "$COMMON/act_qmaster"

# A pid file counts only when it names a live process of its daemon (an earlier run may have left
# one whose pid now belongs to another process).
running() {  # running <pid file> <program>
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 < "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
# What this run started (stopped again if the start fails) and the daemon being started (whose
# messages file is shown if the start fails).
started=()  # entries "label|pid file|messages file"
current=""
on_exit() {
  local status=$? label file messages pid
  rm -rf "${work:-/nonexistent-crew-dir}"
  [ "$status" = 0 ] && return 0
  echo "[sge start] FAILED (exit $status)" >&2
  if [ -n "$current" ]; then
    IFS='|' read -r label file messages <<<"$current"
    echo "[sge start] last 40 lines of $label's messages ($messages):" >&2
    # shellcheck disable=SC2086  # $messages may be a pattern
    tail -n 40 $messages 2>/dev/null | sed 's/^/    /' >&2 || true
  fi
  for (( i=${#started[@]}-1; i>=0; i-- )); do
    IFS='|' read -r label file messages <<<"${started[$i]}"
    for pidfile in $file; do
      if running "$pidfile" "$label"; then
        pid=$(tr -dc 0-9 < "$pidfile")
        echo "[sge start] stopping $label (pid $pid), which this run started" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done
  done
  exit "$status"
}
trap on_exit EXIT
qconf_quiet() { local out; out=$(qconf "$@" 2>&1) || { echo "qconf $* failed: $out" >&2; return 1; }; }

# ---------------------------------------------------------------- qmaster
current="sge_qmaster|$SPOOL/qmaster/qmaster.pid|$SPOOL/qmaster/messages"
if ! running "$SPOOL/qmaster/qmaster.pid" sge_qmaster; then
  say "starting sge_qmaster"
  rm -f "$SPOOL/qmaster/qmaster.pid"  # stale: its pid is not a live sge_qmaster
  /usr/sbin/sge_qmaster
  started+=("$current")
fi
for _ in $(seq 300); do qstat >/dev/null 2>&1 && break; sleep 0.2; done
qstat >/dev/null
say "sge_qmaster running (pid $(cat "$SPOOL/qmaster/qmaster.pid"))"

# ---------------------------------------------------------------- configuration
work=$(mktemp -d)
# root may run jobs (tests run as root), quick load reports, accounting flushed within a second,
# and job shells that are not login shells (a login bash would run the user's profile first,
# e.g. a pyenv init that may stall on its lock; jobs get their environment from the job script)
qconf -sconf global > "$work/global"
sed -i -e 's/^min_uid .*/min_uid                      0/' \
       -e 's/^min_gid .*/min_gid                      0/' \
       -e 's/^login_shells .*/login_shells                 none/' \
       -e 's/^load_report_time .*/load_report_time             00:00:05/' \
       -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' "$work/global"
qconf_quiet -Mconf "$work/global"
# schedule every second, not every 15 s
qconf -ssconf > "$work/sched"
sed -i -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
       -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
       -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' "$work/sched"
qconf_quiet -Msconf "$work/sched"
qconf -sh 2>/dev/null | grep -qx "$HOST" || qconf_quiet -ah "$HOST"
qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf_quiet -as "$HOST"
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
  cat > "$work/exechost" <<HOSTCONF
hostname $HOST
load_scaling NONE
complex_values NONE
user_lists NONE
xuser_lists NONE
projects NONE
xprojects NONE
usage_scaling NONE
report_variables NONE
HOSTCONF
  qconf_quiet -Ae "$work/exechost"
fi
cat > "$work/smp" <<'PE'
pe_name            smp
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary TRUE
qsort_args         NONE
PE
if qconf -spl 2>/dev/null | grep -qx smp; then qconf_quiet -Mp "$work/smp"; else qconf_quiet -Ap "$work/smp"; fi
printf 'group_name @allhosts\nhostlist %s\n' "$HOST" > "$work/allhosts"
if qconf -shgrpl 2>/dev/null | grep -qx @allhosts; then qconf_quiet -Mhgrp "$work/allhosts"; else qconf_quiet -Ahgrp "$work/allhosts"; fi
{
  cat <<QUEUE
qname                 all.q
hostlist              @allhosts
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
QUEUE
  for limit in rt cpu fsize data stack core rss vmem; do
    printf 's_%-20s INFINITY\nh_%-20s INFINITY\n' "$limit" "$limit"
  done
} > "$work/all.q"
if qconf -sql 2>/dev/null | grep -qx all.q; then qconf_quiet -Mq "$work/all.q"; else qconf_quiet -Aq "$work/all.q"; fi
say "configured host $HOST, PE smp, queue all.q with $SLOTS slots"

# ---------------------------------------------------------------- execd
# execd spools under the name its host resolves to (e.g. localhost), so look in every folder.
execd_running() { for f in "$SPOOL"/execd/*/execd.pid; do running "$f" sge_execd && return 0; done; return 1; }
current="sge_execd|$SPOOL/execd/*/execd.pid|$SPOOL/execd/*/messages"
if ! execd_running; then
  say "starting sge_execd"
  for f in "$SPOOL"/execd/*/execd.pid; do rm -f "$f"; done  # stale: none names a live sge_execd
  /usr/sbin/sge_execd
  started+=("$current")
  # it writes its pid file once registered; the queue may still look fine from the old execd
  for _ in $(seq 150); do execd_running && break; sleep 0.2; done
  execd_running || { echo "sge_execd did not come up" >&2; exit 1; }
fi
# wait for the queue instance to leave the u(nknown) state; clear an E(rror) state
state=missing
for _ in $(seq 300); do
  state=$(qstat -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q { print ($6 == "" ? "ok" : $6) }')
  [ "$state" = ok ] && break
  case "$state" in *E*) qmod -c "all.q@$HOST" >/dev/null 2>&1 || true ;; esac
  sleep 0.2
done
if [ "$state" != ok ]; then echo "queue all.q@$HOST not usable (state: $state)" >&2; exit 1; fi
current=""
say "ready: all.q@$HOST ($SLOTS slots)"
