"""crew-ssh beyond the kit, through the real OpenSSH server of conftest.py: the secret on no command
line on either side, the bound on concurrent connections, SshMonitor's log and terminate, bad
options named, and the plugin listed by ``crew launchers``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import crew
import psutil
import pytest
from crew.testing import controller_id, eventually
from crew_ssh import SshError, SshMonitor, ssh_controller
from crew_ssh._ssh import Ssh

SECONDS = 60

# An ssh in front of the real one: logs its argv (one line), and when each call starts and ends.
RECORDER = """#!/bin/sh
log={log}
line="argv $(printf '%s ' "$@" | tr '\\n' ' ')"
printf '%s\\n' "$line" >> "$log"  # one write per line: concurrent calls append whole lines
printf 'start %s %s\\n' "$$" "$(date +%s.%N)" >> "$log"
ssh "$@"
code=$?
printf 'end %s %s\\n' "$$" "$(date +%s.%N)" >> "$log"
exit $code
"""


@pytest.fixture
def recorder(tmp_path):
    """An ``ssh_command`` that records every call in ``<tmp_path>/ssh.log``; yields (command, log)."""
    log = tmp_path / "ssh.log"
    log.touch()
    script = tmp_path / "recording-ssh"
    script.write_text(RECORDER.format(log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    yield str(script), log


def _controller(sshd, tmp_path, **options):
    return ssh_controller(host="127.0.0.1", hosts=[sshd.destination], ssh_options=sshd.ssh_options,
                          log_directory=str(tmp_path / "logs"), seconds_launch=SECONDS, **options)


def _monitor(sshd, tmp_path, **options):
    return SshMonitor(hosts=[sshd.destination], ssh_options=sshd.ssh_options, log_directory=str(tmp_path / "logs"),
                      **options)


def _overlap(log_text: str) -> int:
    """The most ssh calls the recorder saw running at once."""
    events = []
    for line in log_text.splitlines():
        kind, *rest = line.split() or [""]
        if kind in ("start", "end"):
            events.append((float(rest[1]), 1 if kind == "start" else -1))
    most = running = 0
    for _, step in sorted(events, key=lambda event: (event[0], event[1])):
        running += step
        most = max(most, running)
    return most


def _environ(pid: int) -> bytes:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        return handle.read()


def _worker_pid(controller: crew.Controller) -> int:
    """The remote pid of the controller's one worker, once it has dialled in."""
    return int(eventually(lambda: next((i.pid for i in controller.launcher.instances if i.pid), None), SECONDS))


# ------------------------------------------------------------------ the secret
def test_secret_is_on_no_command_line_on_either_side(sshd, tmp_path, recorder):
    """With TLS on: the secret and the certificate reach the remote worker's environment over
    ssh's standard input, and appear neither in the local ssh argv nor in the remote ``ps``."""
    command, log = recorder
    controller = _controller(sshd, tmp_path, tls=crew.TLS(mode="automatic"), ssh_command=command)
    try:
        controller.start()
        secret = controller.launcher.contact.secret
        certificate_line = controller.launcher.contact.certificate.splitlines()[1]
        controller.push(os.getpid, name="pid")
        assert controller.wait(seconds_timeout=SECONDS)
        result = controller.pop()
        assert result.status == "success", result
        pid = _worker_pid(controller)
        remote_ps = sshd.ssh("ps -u \"$(id -u)\" -o pid=,args=").stdout
        assert f"--controller {controller_id(controller)}" in remote_ps  # the listing shows the worker
        assert secret not in remote_ps and certificate_line not in remote_ps
        local = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
        assert not [line for line in local if secret in line]
        environment = _environ(pid)  # the same machine here, so /proc shows the remote side
        assert f"CREW_SECRET={secret}".encode() in environment and certificate_line.encode() in environment
    finally:
        controller.terminate()
    argv = [line for line in log.read_text().splitlines() if line.startswith("argv ")]
    assert argv and not [line for line in argv if secret in line or certificate_line in line], argv


# ------------------------------------------------------------------ the bound on connections
def test_connections_to_one_host_are_bounded(sshd, recorder):
    command, log = recorder
    ssh = Ssh([command], sshd.ssh_options, connections_max=2, seconds_timeout=SECONDS)
    threads = [threading.Thread(target=ssh.run, args=(sshd.destination, "sleep 0.4")) for _ in range(8)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS)
    assert time.monotonic() - began >= 4 * 0.4  # 8 calls, 2 at a time
    text = log.read_text()
    assert sum(line.startswith("end ") for line in text.splitlines()) == 8, text
    assert 1 <= _overlap(text) <= 2, text  # never more than the bound (on a busy machine, calls may not overlap)


def test_the_bound_can_fail(sshd, recorder, tmp_path):
    """The overlap count is real: without the bound, the same calls run together.

    Each remote command waits at a barrier (a folder it writes its name into) until all four have
    arrived, so on a busy machine the calls still overlap, however slowly ssh connects.
    """
    command, log = recorder
    arrived = tmp_path / "arrived"
    arrived.mkdir()
    barrier = (f"touch {arrived}/$$; n=0; while [ $(ls {arrived} | wc -l) -lt 4 ] && [ $n -lt 600 ]; "
               "do sleep 0.05; n=$((n+1)); done")
    ssh = Ssh([command], sshd.ssh_options, connections_max=8, seconds_timeout=SECONDS)
    threads = [threading.Thread(target=ssh.run, args=(sshd.destination, barrier)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS)
    assert len(list(arrived.iterdir())) == 4
    assert _overlap(log.read_text()) == 4  # all four ran at once: more than the bound of 2 above


def test_a_round_uses_one_connection_per_host(sshd, tmp_path, recorder):
    command, log = recorder
    controller = _controller(sshd, tmp_path, workers=6, ssh_command=command, seconds_status=3600)
    try:
        controller.start()
        controller.launch(6)
        eventually(lambda: sum(i.state == "connected" for i in controller.launcher.instances) == 6, SECONDS)
        starts = [line for line in log.read_text().splitlines() if line.startswith("argv ") and "crew-worker-" in line]
        assert len(starts) == 1, starts  # the six workers came from one ssh call
    finally:
        controller.terminate()


# ------------------------------------------------------------------ SshMonitor
def test_monitor_lists_reads_the_log_of_and_ends_a_worker(sshd, tmp_path):
    controller = _controller(sshd, tmp_path, crashes_max=0)
    monitor = _monitor(sshd, tmp_path)

    def chatty():
        print("hello from the task", flush=True)
        import time

        time.sleep(600)

    try:
        controller.start()
        controller.push(chatty, name="chatty")
        pid = _worker_pid(controller)
        worker = f"{sshd.destination}/{pid}"
        rows = eventually(lambda: [row for row in monitor.jobs() if row["id"] == worker], SECONDS)
        assert rows[0]["name"] == controller_id(controller) and rows[0]["state"] == "running"
        assert tuple(rows[0]) == crew.JOB_COLUMNS and rows[0]["node"] == sshd.destination
        eventually(lambda: "hello from the task" in monitor.log(worker), SECONDS)
        assert monitor.terminate([worker]) == [worker]
        assert worker not in monitor.workers()
        assert controller.wait(seconds_timeout=SECONDS)
        assert controller.pop().status == "crash"  # its worker was ended under it
    finally:
        controller.terminate()
    assert monitor.log(f"{sshd.destination}/999999999") == ""  # no such log: empty


def test_monitor_ends_several_workers_and_refuses_bad_ids(sshd, tmp_path):
    monitor = _monitor(sshd, tmp_path)
    with pytest.raises(crew.SettingError, match="ids or all"):
        monitor.terminate()
    with pytest.raises(crew.SettingError, match="<host>/<pid>"):
        monitor.log("12345")
    with pytest.raises(crew.SettingError, match="<host>/<pid>"):
        monitor.terminate(["node1/not-a-pid"])
    controller = _controller(sshd, tmp_path, workers=2)
    try:
        controller.start()
        controller.launch(2)
        mine = eventually(lambda: [r["id"] for r in monitor.jobs() if r["name"] == controller_id(controller)]
                          if len(monitor.workers()) >= 2 else None, SECONDS)
        assert len(mine) == 2, mine
        assert sorted(monitor.terminate(mine)) == sorted(mine)  # not all=True: other crew workers may run here
        assert not set(mine) & set(monitor.workers())
    finally:
        controller.terminate()


def test_unreachable_host_is_a_crew_error_naming_it(sshd, tmp_path):
    monitor = SshMonitor(hosts=["crew-no-such-host.invalid"], ssh_options=[*sshd.ssh_options, "-o", "ConnectTimeout=5"],
                         seconds_timeout=30)
    with pytest.raises(crew.CrewError, match="crew-no-such-host.invalid") as caught:
        monitor.jobs()
    assert isinstance(caught.value, SshError) and "\n" not in str(caught.value)


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(("argument", "value"), [
    ("hosts", None), ("hosts", []), ("hosts", ["-oProxyCommand=x"]), ("hosts", 5),
    ("ssh_command", ""), ("ssh_command", [1]), ("ssh_options", 5), ("connections_max", 0),
    ("log_directory", "a\nb"), ("seconds_status", -1),
])
def test_bad_options_name_the_argument(argument, value):
    options = {"hosts": ["node1"], argument: value}
    with pytest.raises(crew.SettingError, match=argument):
        ssh_controller(**options)


@pytest.mark.parametrize(("argument", "value"), [
    ("hosts", []), ("ssh_command", ""), ("connections_max", 0), ("seconds_timeout", 0), ("log_directory", 3),
])
def test_monitor_bad_options_name_the_argument(argument, value):
    options = {"hosts": ["node1"], argument: value}
    with pytest.raises(crew.SettingError, match=argument):
        SshMonitor(**options)


def test_listed_by_crew_launchers():
    listed = subprocess.run([sys.executable, "-m", "crew", "launchers"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    assert any(line.split()[:4] == ["ssh", "crew-ssh", "0.1.0", "crew_ssh:plugin"] for line in listed.splitlines()), listed
