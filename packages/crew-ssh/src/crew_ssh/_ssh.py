"""Running one shell script on a host over the ``ssh`` command: the only place crew-ssh connects.

The script goes on the remote command line (it holds no secret); what is secret goes on the
standard input of ``ssh``, which neither side's process table shows.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
from collections.abc import Sequence

import crew
from crew import validate

__all__ = ["SshError", "Ssh", "START", "STOP", "LIST", "checked_hosts", "checked_command"]

# Read the secret (one line) and the TLS certificate (the rest of standard input, maybe empty) into
# the environment, then start $2 workers running "$@" (after shift 2), detached from the SSH
# session, each logging to <log directory>/crew-worker-<pid>.log; print one pid per line.
START = r"""umask 077
IFS= read -r CREW_SECRET || { echo "crew-ssh: no secret on standard input" >&2; exit 97; }
CREW_TLS_CERTIFICATE=$(cat)
export CREW_SECRET
if [ -n "$CREW_TLS_CERTIFICATE" ]; then export CREW_TLS_CERTIFICATE; else unset CREW_TLS_CERTIFICATE; fi
logs=$1; n=$2; shift 2
mkdir -p -- "$logs" || exit 98
starter=; command -v setsid >/dev/null 2>&1 && starter=setsid
i=0
while [ "$i" -lt "$n" ]; do
  $starter sh -c 'exec >"$0/crew-worker-$$.log" 2>&1 </dev/null; exec "$@"' "$logs" "$@" </dev/null >/dev/null 2>&1 &
  echo "$!"
  i=$((i + 1))
done
"""

# End the crew workers among the pids "$@" (after shift 1) whose command line holds "$1" (the
# controller id, or "crew" for any worker): SIGTERM, up to 10 s, then SIGKILL. Print the pids ended.
# With no pids, every such worker of this user.
STOP = r"""mark=$1; shift
[ "$#" -gt 0 ] || set -- $(ps -u "$(id -u)" -o pid= 2>/dev/null)
mine=
for p in "$@"; do
  [ "$p" != "$$" ] && [ "$p" != "$PPID" ] || continue
  case "$(ps -o stat= -p "$p" 2>/dev/null)" in ""|Z*) continue ;; esac
  case " $(ps -o args= -p "$p" 2>/dev/null) " in
    *" crew.worker "*"$mark"*|*"crew-worker "*"$mark"*) mine="$mine $p" ;;
  esac
done
[ -n "$mine" ] || exit 0
kill -TERM $mine 2>/dev/null
i=0
while [ "$i" -lt 50 ]; do
  left=
  for p in $mine; do
    case "$(ps -o stat= -p "$p" 2>/dev/null)" in ""|Z*) ;; *) left="$left $p" ;; esac
  done
  [ -n "$left" ] || break
  sleep 0.2
  i=$((i + 1))
done
[ -z "$left" ] || kill -KILL $left 2>/dev/null
for p in $mine; do echo "$p"; done
"""

# This user's processes: pid, state, seconds since start, command line.
LIST = 'ps -u "$(id -u)" -o pid=,stat=,etimes=,args='


class SshError(crew.LaunchError):
    """An ``ssh`` call failed (could not connect, or the remote script failed)."""


class Ssh:
    """Runs scripts on hosts with the ``ssh`` command, at most ``connections_max`` at once per host."""

    def __init__(self, command: Sequence[str], options: Sequence[str], connections_max: int, seconds_timeout: float):
        self.command = list(command)
        self.options = list(options)
        self.connections_max = connections_max
        self.seconds_timeout = seconds_timeout
        self._gates: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def argv(self, host: str, script: str, arguments: Sequence[str] = ()) -> list[str]:
        """The local command line that runs ``script`` with ``arguments`` on ``host``."""
        remote = shlex.join(["sh", "-c", script, "sh", *arguments])
        return [*self.command, *self.options, "-T", "-o", "BatchMode=yes", "--", host, remote]

    def run(self, host: str, script: str, arguments: Sequence[str] = (), stdin: str = "") -> str:
        """Run ``script`` on ``host``; return its standard output. Raises :class:`SshError`."""
        argv = self.argv(host, script, arguments)
        with self._gate(host):
            try:
                done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                      timeout=self.seconds_timeout, check=False)
            except subprocess.TimeoutExpired:
                raise SshError(f"ssh to {host} gave no answer within {self.seconds_timeout:g} seconds") from None
            except OSError as error:
                raise SshError(f"ssh command {self.command[0]!r} could not run: {error.strerror or error}") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            detail = lines[-1].strip() if lines else "(no message)"
            what = "could not connect" if done.returncode == 255 else f"the remote script exited with {done.returncode}"
            raise SshError(f"ssh to {host}: {what}: {detail}")
        return done.stdout

    def _gate(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._gates:
                self._gates[host] = threading.BoundedSemaphore(self.connections_max)
            return self._gates[host]


def checked_hosts(hosts: object) -> list[str]:
    """The ``hosts`` option: SSH destinations, at least one, none that ssh would read as an option."""
    checked = validate.strings("hosts", hosts)
    if not checked or not all(host.strip() and not host.startswith("-") for host in checked):
        raise crew.SettingError(f"hosts must be a list of SSH destinations (e.g. ['node1']), not {hosts!r}")
    return list(checked)


def checked_command(ssh_command: object) -> list[str]:
    """The ``ssh_command`` option as words (a string is split as a shell would)."""
    command = shlex.split(ssh_command) if isinstance(ssh_command, str) else validate.strings("ssh_command", ssh_command)
    if not command:
        raise crew.SettingError(f"ssh_command must be a command (a string or a list of strings), not {ssh_command!r}")
    return list(command)
