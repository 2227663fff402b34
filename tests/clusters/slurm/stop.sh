#!/usr/bin/env bash
# Stop the SLURM cluster that start.sh started, by pid file (never by process name). A pid file
# counts only when its pid is a live process of that daemon's program (a stale file whose pid was
# reused by another process is removed, and that process left alone).
set -u
stop_by_pidfile() {  # stop_by_pidfile <pid file> <program>
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(tr -dc 0-9 < "$file")
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$2" ]; then rm -f "$file"; return 0; fi
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$file"
  echo "[slurm stop] stopped $file ($pid)"
}
stop_by_pidfile /run/slurmd.pid slurmd
stop_by_pidfile /run/slurmctld.pid slurmctld
stop_by_pidfile /run/slurmdbd.pid slurmdbd
if [ -x /etc/init.d/mariadb ] && [ -s /run/mysqld/mysqld.pid ]; then
  /etc/init.d/mariadb stop >/dev/null 2>&1 && echo "[slurm stop] stopped mariadb"
fi
stop_by_pidfile /run/munge/munged.pid munged
exit 0
