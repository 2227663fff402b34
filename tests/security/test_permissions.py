"""Files and folders crew creates are the user's only, whatever the umask; a shared
script_directory is named in a warning; no password shows in a repr."""

from __future__ import annotations

import os
import stat

import crew
import pytest
from crew._secret_file import private_directory
from crew_local import local_controller


@pytest.fixture
def open_umask():
    before = os.umask(0)
    yield
    os.umask(before)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_private_folders_and_their_parents_are_0700_under_umask_000(tmp_path, open_umask):
    target = tmp_path / ".crew" / "scripts" / "deep"
    private_directory(str(target))
    for folder in (tmp_path / ".crew", tmp_path / ".crew" / "scripts", target):
        assert _mode(folder) == 0o700, folder


def test_a_folder_others_can_write_to_is_named_in_a_warning(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.warns(UserWarning, match="writable by other users"):
        private_directory(str(shared))
    os.chmod(shared, 0o700)


def test_the_secret_folder_worker_logs_and_secret_file_are_private_under_umask_000(tmp_path, open_umask,
                                                                                     monkeypatch):
    monkeypatch.setenv(crew._secret_file.ROOT_ENV, str(tmp_path / "run"))
    logs = tmp_path / "logs"
    with local_controller(workers=1, log_directory=str(logs)) as controller:
        assert controller.map("1 + 1", {"x": [0]})[0].result == 2
        secret_file = controller.launcher.contact.secret_file
        assert _mode(tmp_path / "run") == 0o700 and _mode(os.path.dirname(secret_file)) == 0o700
        assert _mode(secret_file) == 0o600
        (log,) = logs.iterdir()
        assert _mode(log) == 0o600 and _mode(logs) == 0o700


def test_a_tls_password_never_shows(tmp_path):
    from _certificates import Authority, write_key

    key, chain = Authority().issue(("127.0.0.1",))
    (tmp_path / "chain.pem").write_bytes(chain)
    tls = crew.TLS(mode="custom", key=write_key(tmp_path / "key.pem", key, "hunter2"),
                   certificates=str(tmp_path / "chain.pem"), password="hunter2")
    assert "hunter2" not in repr(tls) and "hunter2" not in str(tls)
    assert "password" in repr(tls)  # it says there is one


def test_a_worker_refuses_the_secret_file_of_a_controller_that_is_gone(tmp_path):
    import socket
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    secret = tmp_path / "secret"
    secret.write_text(f"CREW_SECRET=abc\nCREW_CONTROLLER_PID={ended.pid}\nCREW_CONTROLLER_HOST={socket.gethostname()}\n")
    run = subprocess.run([sys.executable, "-m", "crew.worker", "tcp://127.0.0.1:9", "--controller", "c",
                          "--seconds-timeout", "5", "--secret-file", str(secret)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and f"the controller (pid {ended.pid}) that wrote the secret file is gone" in run.stderr
    # the same file from a live controller (this process) is accepted: the worker goes on to dial
    secret.write_text(f"CREW_SECRET=abc\nCREW_CONTROLLER_PID={os.getpid()}\nCREW_CONTROLLER_HOST={socket.gethostname()}\n")
    run = subprocess.run([sys.executable, "-m", "crew.worker", "tcp://127.0.0.1:9", "--controller", "c",
                          "--seconds-timeout", "1", "--secret-file", str(secret)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 3 and "no controller at tcp://127.0.0.1:9" in run.stderr


def test_a_starting_controller_removes_the_folders_of_killed_controllers(tmp_path, monkeypatch):
    """A SIGKILLed controller leaves its folder (and secret file); the next controller of the host
    removes it, and leaves alone the folders of live controllers and of other hosts."""
    import signal
    import socket
    import subprocess
    import sys

    import crew_local

    monkeypatch.setenv("CREW_RUN_DIRECTORY", str(tmp_path))
    script = ("import signal, crew, crew_local; c = crew_local.local_controller(workers=1); c.start(); "
              "print(c._id, flush=True); signal.pause()")
    killed = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "CREW_RUN_DIRECTORY": str(tmp_path)})
    try:
        killed_id = killed.stdout.readline().strip()
        assert (tmp_path / killed_id / "secret").exists()
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
        killed.stdout.close()
    assert (tmp_path / killed_id / "secret").exists()  # nothing removed it
    here = socket.gethostname()
    for name, pid, host in (("live", os.getpid(), here), ("elsewhere", killed.pid, here + "-other")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "secret").write_text(f"CREW_SECRET=x\nCREW_CONTROLLER_PID={pid}\nCREW_CONTROLLER_HOST={host}\n")
    controller = crew_local.local_controller(workers=1, name="sweeper")
    try:
        controller.start()
        assert not (tmp_path / killed_id).exists()
        assert (tmp_path / "live" / "secret").exists() and (tmp_path / "elsewhere" / "secret").exists()
    finally:
        controller.terminate()
