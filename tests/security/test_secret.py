"""The controller's secret: random per controller, never on a command line, carried only in the
worker's environment or an owner-only file; a worker without it (or with another controller's)
gets nothing. local_controller listens on loopback only."""

import os
import re
import stat

import psutil
import pytest
from _crewfaults import eventually, pids_alive
from _peers import LogRecorder, call_by_hand, controller_id, gated_controller, open_gate


def _command_lines_holding(text: str) -> list[tuple[int, str]]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if text in line:
            found.append((process.info["pid"], line))
    return found


def test_the_secret_is_on_no_command_line(workers):
    controller = workers.controller(workers=2)
    with controller:
        secret = controller.launcher.environment["CREW_SECRET"]
        assert secret not in controller.launcher.call()
        controller.walk("import time\ntime.sleep(0.5)\nindex", {"index": [1, 2]})
        eventually(lambda: len(pids_alive(workers.pids)) == 2 and len(controller.launcher.instances) == 2, 30)
        assert not _command_lines_holding(secret), "the secret is visible with ps"
        for pid in pids_alive(workers.pids):
            mode = os.stat(f"/proc/{pid}/environ").st_mode
            assert not mode & (stat.S_IRWXG | stat.S_IRWXO), f"other users can read {pid}'s environment"
        assert controller.wait(seconds_timeout=30)


def test_each_controller_has_its_own_random_secret(workers):
    secrets = set()
    for _ in range(3):
        controller = workers.controller()
        controller.start()
        secret = controller.launcher.environment["CREW_SECRET"]
        assert len(secret) >= 32 and len(set(secret)) > 8
        secrets.add(secret)
        controller.terminate()
    assert len(secrets) == 3


def test_a_secret_file_is_private_and_enough(workers, tmp_path):
    controller = gated_controller(workers, tmp_path)
    path = controller.launcher.write_secret_file(tmp_path / "secrets")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    worker = workers.spawn(call_by_hand(controller, launch="by-hand", secret_file=path))  # no CREW_* variables
    assert controller.wait(seconds_timeout=30)
    results = controller.collect()
    assert {result.pid for result in results} == {worker.pid} and all(result.ok for result in results)


@pytest.mark.parametrize("transport", ["nng", "unix"])
def test_a_worker_with_a_wrong_secret_gets_nothing(workers, tmp_path, transport):
    controller = gated_controller(workers, tmp_path, transport=transport)
    with LogRecorder() as log:
        call = re.sub(r" --secret-file \S+", "", call_by_hand(controller, launch="by-hand"))  # the file holds the right one
        worker = workers.spawn(call, {"CREW_SECRET": "0" * 64})
        assert worker.wait(timeout=30) == 0, worker.stdout.read()  # dropped: it leaves by itself
        eventually(lambda: log.count("wrong secret"), 10)
    assert controller.resolved() == 0 and controller.unresolved() == 3
    open_gate(controller, tmp_path)


@pytest.mark.parametrize("transport", ["nng", "unix"])
def test_a_worker_of_another_controller_gets_nothing(workers, tmp_path, transport):
    controller = gated_controller(workers, tmp_path, transport=transport)
    other = workers.controller()
    other.start()
    call = other.launcher.call(launch="by-hand").replace(other.client.url, controller.client.url)
    assert controller_id(other) in call and controller_id(controller) not in call
    with LogRecorder() as log:
        worker = workers.spawn(call, other.launcher.environment)
        assert worker.wait(timeout=30) == 0, worker.stdout.read()
        eventually(lambda: log.count("hello for another controller"), 10)
    assert controller.resolved() == 0
    open_gate(controller, tmp_path)


@pytest.mark.parametrize("transport", ["auto", "nng"])
def test_local_controller_listens_on_loopback_only(workers, transport):
    """By default on a Unix socket and no TCP port at all; over NNG, on 127.0.0.1 only."""
    controller = workers.controller(transport=transport)
    controller.start()
    port = controller.client.port
    listening = [c.laddr for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    if transport == "auto":
        path = controller.client.url[len("unix://"):]
        assert controller.client.url.startswith("unix:///") and not listening, listening
        assert path in [c.laddr for c in psutil.Process().net_connections(kind="unix")]
        return
    assert [address.ip for address in listening] == ["127.0.0.1"], listening
    assert controller.client.url == f"tcp://127.0.0.1:{port}"
