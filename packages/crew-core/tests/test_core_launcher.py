"""The launcher contract: what a plugin implements, and what crew.Launcher gives it."""

import math
import os
import shlex
import stat
import sys

import crew
import pytest
from crew.launcher import SECRET_ENV


class Recorder(crew.Launcher):
    """Records what it is asked to launch and starts nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def launch_worker(self, call):
        self.calls.append(call)
        return len(self.calls)


@pytest.fixture
def bound():
    """Launchers bound to a started controller (which launches nothing without tasks)."""
    controllers = []

    def bind(launcher, tls=None):
        controller = crew.Controller(crew.Client(host="127.0.0.1", tls=tls), launcher)
        controllers.append(controller)
        controller.start()
        return launcher

    yield bind
    for controller in controllers:
        controller.terminate()


def test_launcher_without_launch_methods_is_a_type_error():
    class Incomplete(crew.Launcher):
        pass

    with pytest.raises(TypeError, match=r"Incomplete must implement launch_worker\(self, call\)"):
        Incomplete()


def test_the_base_class_itself_cannot_be_used():
    with pytest.raises(TypeError, match="launch_worker"):
        crew.Launcher()


def test_launch_workers_alone_is_enough_and_supersedes():
    class Array(crew.Launcher):
        def launch_workers(self, call, n):
            return ("array", n)

    launcher = Array()
    assert launcher.launch_workers("call", 3) == ("array", 3)
    with pytest.raises(NotImplementedError):
        launcher.launch_worker("call")


def test_default_launch_workers_calls_launch_worker_n_times():
    launcher = Recorder()
    assert launcher.launch_workers("the call", 3) == [1, 2, 3]
    assert launcher.calls == ["the call"] * 3


def test_default_terminate_workers_ends_each_handle():
    ended = []

    class Ending(Recorder):
        def terminate_worker(self, handle):
            ended.append(handle)

    Ending().terminate_workers([3, 1, 2])
    assert ended == [3, 1, 2]


def test_optional_methods_have_harmless_defaults():
    launcher = Recorder()
    assert launcher.queued([1, 2]) is None
    assert launcher.exit_status(1) is None
    assert launcher.terminate_worker(1) is None
    assert launcher.close() is None


def test_launcher_defaults():
    launcher = Recorder()
    assert (launcher.name, launcher.workers, launcher.tls, launcher.metrics) == (None, 1, None, None)
    assert launcher.python == sys.executable
    assert math.isinf(launcher.seconds_idle) and math.isinf(launcher.seconds_wall) and math.isinf(launcher.tasks_max)
    assert launcher.instances == []
    assert repr(launcher) == "Recorder(name=None, workers=1)"


@pytest.mark.parametrize("option, value", [
    ("workers", 0), ("workers", 1.5), ("workers", "2"), ("seconds_interval", 0), ("seconds_timeout", -1),
    ("seconds_launch", 0), ("seconds_idle", -5), ("seconds_idle", "10"), ("seconds_wall", 0),
    ("tasks_max", 0), ("tasks_max", 2.5), ("tasks_timers", -1), ("name", ""), ("python", 3), ("metrics", 3),
    ("tls", "automatic"),
])
def test_launcher_rejects_bad_settings(option, value):
    with pytest.raises(crew.SettingError, match=f"^{option} must"):
        Recorder(**{option: value})


def test_call_needs_a_started_controller():
    launcher = Recorder()
    with pytest.raises(crew.CrewError, match="not started"):
        launcher.call()
    with pytest.raises(crew.CrewError, match="not started"):
        _ = launcher.environment


def test_controller_names_its_launcher():
    launcher = Recorder()
    controller = crew.Controller(crew.Client(host="127.0.0.1"), launcher)
    assert launcher.name == controller.name and controller.name.startswith("crew-")
    named = Recorder(name="mine")
    assert crew.Controller(crew.Client(host="127.0.0.1"), named).name == "mine"


def test_call_text(bound):
    launcher = bound(Recorder())
    words = shlex.split(launcher.call(launch="7"))
    url = words[3]
    assert words[:3] == [sys.executable, "-m", "crew.worker"]
    assert url.startswith("tcp://127.0.0.1:")
    controller_id = words[words.index("--controller") + 1]
    secret_file = words[-1]
    assert words[4:] == ["--controller", controller_id, "--launch", "7", "--seconds-timeout", "60",
                         "--secret-file", secret_file]
    assert shlex.split(launcher.call())[words.index("--launch") + 1] == "0"
    # the call names a private file that holds the secret; the secret itself is not on it
    assert launcher.contact.secret not in launcher.call()
    assert os.stat(secret_file).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(secret_file)).st_mode & 0o777 == 0o700
    with open(secret_file) as handle:
        assert handle.read().startswith(f"CREW_SECRET={launcher.contact.secret}\n")


def test_call_carries_every_worker_setting(bound, tmp_path):
    python = str(tmp_path / "my python")
    launcher = bound(Recorder(seconds_timeout=30, seconds_idle=2.5, seconds_wall=60, tasks_max=10, tasks_timers=3,
                              python=python, metrics=tmp_path / "metrics"))
    words = shlex.split(launcher.call(launch="2", secret_file="/run/secret file"))
    assert words[0] == python  # quoted in the text, one word once split
    options = dict(zip(words[4::2], words[5::2]))
    assert options == {
        "--controller": options["--controller"], "--launch": "2", "--seconds-timeout": "30",
        "--seconds-idle": "2.5", "--seconds-wall": "60", "--tasks-max": "10", "--tasks-timers": "3",
        "--metrics": str(tmp_path / "metrics"), "--secret-file": "/run/secret file",
    }


def test_call_never_holds_the_secret(bound):
    launcher = bound(Recorder())
    secret = launcher.environment[SECRET_ENV]
    assert len(secret) >= 32
    assert secret not in launcher.call(launch="1")


def test_environment_holds_the_secret_only_without_tls(bound):
    assert set(bound(Recorder()).environment) == {"CREW_SECRET"}


def test_environment_holds_the_certificate_with_tls(bound):
    launcher = bound(Recorder(), tls=crew.TLS(mode="automatic"))
    assert launcher.environment["CREW_TLS_CERTIFICATE"].startswith("-----BEGIN CERTIFICATE-----")


def test_write_secret_file_is_private(bound, tmp_path):
    launcher = bound(Recorder())
    umask = os.umask(0)  # even a permissive umask must not widen the file's permissions
    try:
        path = launcher.write_secret_file(tmp_path / "secrets")
    finally:
        os.umask(umask)
    assert os.path.dirname(path) == str(tmp_path / "secrets")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        assert handle.read() == f"CREW_SECRET={launcher.environment['CREW_SECRET']}\n"


def test_write_secret_file_replaces_a_readable_file(bound, tmp_path):
    launcher = bound(Recorder())
    path = launcher.write_secret_file(tmp_path)
    os.chmod(path, 0o644)
    assert launcher.write_secret_file(tmp_path) == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_next_launch_counts_rounds():
    launcher = Recorder()
    assert [launcher.next_launch() for _ in range(3)] == ["1", "2", "3"]


def test_launch_errors_carry_the_platform_message():
    error = crew.SchedulerError("sbatch", "  sbatch: error: invalid partition\n", 1)
    assert isinstance(error, crew.LaunchError)
    assert str(error) == "sbatch failed (exit code 1): sbatch: error: invalid partition"
    assert (error.command, error.returncode) == ("sbatch", 1)
