#!/usr/bin/env bash
# Stop the SLURM cluster that start.sh started, by pid file (never by process name).
set -u
stop_by_pidfile() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$file"; return 0; fi
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  echo "[slurm stop] stopped $file ($pid)"
}
stop_by_pidfile /run/slurmd.pid
stop_by_pidfile /run/slurmctld.pid
stop_by_pidfile /run/slurmdbd.pid
if [ -x /etc/init.d/mariadb ] && [ -s /run/mysqld/mysqld.pid ]; then
  /etc/init.d/mariadb stop >/dev/null 2>&1 && echo "[slurm stop] stopped mariadb"
fi
stop_by_pidfile /run/munge/munged.pid
exit 0
