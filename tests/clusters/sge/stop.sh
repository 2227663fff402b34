#!/usr/bin/env bash
# Stop the SGE cluster that start.sh started: by the daemons' pid files, never by process name.
set -u
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SPOOL=/var/spool/gridengine
stop_pid() {  # pid, label
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || { echo "stopped $2 ($pid)"; return 0; }; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null; echo "killed $2 ($pid)"
}
for pidfile in "$SPOOL"/execd/*/execd.pid; do
  [ -s "$pidfile" ] && stop_pid "$(cat "$pidfile")" sge_execd
done
pidfile=$SPOOL/qmaster/qmaster.pid
[ -s "$pidfile" ] && stop_pid "$(cat "$pidfile")" sge_qmaster   # a clean shutdown takes 5-10 s
exit 0
