"""The ``crew`` command: every subcommand, its exit code, and errors on stderr.

A made-up plugin ("fake", registered by patching the entry-point lookup) stands in for a
scheduler; the real crew-local plugin is used for the end-to-end checks (by pid, never --all)."""

import json
import os
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import crew
import pytest
from crew import cli, discovery
from crew.testing import eventually, pids_alive
from crew_local import LocalLauncher, local_controller


class FakeMonitor(crew.Monitor):
    """Remembers what it was asked; two jobs, one log."""

    made = []

    def __init__(self, prefix="crew", seconds_timeout=60.0):
        self.options = {"prefix": prefix, "seconds_timeout": seconds_timeout}
        self.ended = []
        FakeMonitor.made.append(self)

    def jobs(self):
        return [
            dict(id="7_1", array_index=1, name=f"{self.options['prefix']}-a", state="running", reason=None,
                 node="n1", start_time="2024-01-01T00:00:00", raw_state="R"),
            dict(id="7_2", array_index=2, name=f"{self.options['prefix']}-a", state="pending", reason="Priority",
                 node=None, start_time=None, raw_state="PD"),
        ]

    def terminate(self, ids=None, all=False):
        chosen = [row["id"] for row in self.jobs()] if all else [i for i in ids if i in ("7_1", "7_2")]
        self.ended.extend(chosen)
        return chosen

    def log(self, id):
        if id != "7_1":
            raise crew.SchedulerError("cat", f"no log for {id}", 1)
        return "worker 7_1 says hello"


@pytest.fixture(autouse=True)
def fake_plugin(monkeypatch, tmp_path):
    """Register "fake" beside the installed plugins; keep site configuration out of the way."""
    module = types.ModuleType("crew_fake_for_cli")
    module.plugin = crew.Plugin(name="fake", package="crew-fake", controller=local_controller,
                                launcher=LocalLauncher, monitor=FakeMonitor)
    monkeypatch.setitem(sys.modules, "crew_fake_for_cli", module)
    real = discovery._entry_points
    fake = EntryPoint(name="fake", value="crew_fake_for_cli:plugin", group=crew.ENTRY_POINT_GROUP)
    monkeypatch.setattr(discovery, "_entry_points", lambda: [*real(), fake])
    monkeypatch.setattr(discovery, "SYSTEM_CONFIG", tmp_path / "etc-crew.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CREW_CONFIG", raising=False)
    FakeMonitor.made.clear()


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------- help and usage
def test_help_lists_every_command_and_the_exit_codes(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0 and err == ""
    for command in ("launchers", "workers", "terminate", "logs", "demo", "new-plugin", "config"):
        assert f"    {command}" in out
    assert "exit codes" in out


@pytest.mark.parametrize("command", ["launchers", "workers", "terminate", "logs", "demo", "new-plugin", "config"])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: crew {command}")


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run(capsys)
    assert code == 2 and out == "" and "usage: crew" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"crew {crew.__version__}"


def test_missing_launcher_option_is_a_usage_error(capsys):
    code, _, err = run(capsys, "workers")
    assert code == 2 and "--launcher" in err


# ---------------------------------------------------------------------- launchers
def test_launchers_table(capsys):
    code, out, err = run(capsys, "launchers")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PACKAGE", "VERSION", "ENTRY_POINT"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["local"] == ["local", "crew-local", crew.__version__, "crew_local:plugin"]
    assert rows["fake"][-1] == "crew_fake_for_cli:plugin"


def test_launchers_json(capsys):
    code, out, _ = run(capsys, "launchers", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and rows["local"]["package"] == "crew-local"


# ---------------------------------------------------------------------- workers, terminate, logs
def test_workers_table_and_monitor_options(capsys):
    code, out, err = run(capsys, "workers", "--launcher", "fake", "-o", "prefix=crew-lab", "-o", "seconds_timeout=5")
    assert code == 0 and err == ""
    assert FakeMonitor.made[-1].options == {"prefix": "crew-lab", "seconds_timeout": 5}
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "ARRAY_INDEX", "NAME", "STATE", "REASON", "NODE", "START_TIME"]
    assert lines[1].split() == ["7_1", "1", "crew-lab-a", "running", "n1", "2024-01-01T00:00:00"]
    assert lines[2].split() == ["7_2", "2", "crew-lab-a", "pending", "Priority"]


def test_workers_json(capsys):
    code, out, _ = run(capsys, "workers", "-l", "fake", "--json")
    assert code == 0 and [row["id"] for row in json.loads(out)] == ["7_1", "7_2"]


def test_monitor_options_from_site_configuration(capsys, tmp_path):
    (tmp_path / "etc-crew.toml").write_text('[monitors.fake]\nprefix = "site"\n')
    code, _, _ = run(capsys, "workers", "-l", "fake", "-o", "seconds_timeout=2.5")
    assert code == 0 and FakeMonitor.made[-1].options == {"prefix": "site", "seconds_timeout": 2.5}


def test_bad_option_syntax_is_a_usage_error(capsys):
    code, _, err = run(capsys, "workers", "-l", "fake", "-o", "no-equals-sign")
    assert code == 2 and "KEY=VALUE" in err


def test_unknown_monitor_option_fails_on_stderr(capsys):
    code, out, err = run(capsys, "workers", "-l", "fake", "-o", "colour=red")
    assert code == 1 and out == "" and "'colour' is not an argument of FakeMonitor" in err


def test_missing_plugin_says_what_to_install(capsys):
    code, out, err = run(capsys, "workers", "--launcher", "nope")
    assert code == 1 and out == ""
    assert err.startswith("crew workers: error:") and "pip install crew-nope" in err


def test_terminate_ids(capsys):
    code, out, err = run(capsys, "terminate", "-l", "fake", "7_2")
    assert (code, err) == (0, "") and out.strip() == "terminated 1 job(s): 7_2"
    assert FakeMonitor.made[-1].ended == ["7_2"]


def test_terminate_all(capsys):
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--all")
    assert code == 0 and out.strip() == "terminated 2 job(s): 7_1 7_2"


def test_terminate_needs_ids_or_all_but_not_both(capsys):
    assert run(capsys, "terminate", "-l", "fake")[0] == 2
    code, _, err = run(capsys, "terminate", "-l", "fake", "--all", "7_1")
    assert code == 2 and "not both" in err
    assert FakeMonitor.made == [] or FakeMonitor.made[-1].ended == []


def test_terminate_unknown_id_fails(capsys):
    code, out, err = run(capsys, "terminate", "-l", "fake", "7_1", "9_9")
    assert code == 1 and "terminated 1 job(s): 7_1" in out and "9_9" in err


def test_logs(capsys):
    code, out, err = run(capsys, "logs", "-l", "fake", "7_1")
    assert (code, out, err) == (0, "worker 7_1 says hello\n", "")


def test_logs_failure_is_reported(capsys):
    code, out, err = run(capsys, "logs", "-l", "fake", "8_1")
    assert code == 1 and out == "" and "no log for 8_1" in err


def test_logs_of_a_monitor_without_logs(capsys):
    code, _, err = run(capsys, "logs", "-l", "local", "1")
    assert code == 1 and "keeps no worker logs" in err


def test_local_workers_listed_and_terminated_by_pid(capsys):
    with local_controller(workers=1, crashes_max=0) as controller:
        controller.push("import os; os.getpid()", name="pid")
        assert controller.wait(seconds_timeout=60)
        pid = controller.pop().result
        code, out, _ = run(capsys, "workers", "--launcher", "local", "--json")
        assert code == 0 and pid in [row["id"] for row in json.loads(out)]
        code, out, _ = run(capsys, "terminate", "--launcher", "local", str(pid))
        assert code == 0 and out.strip() == f"terminated 1 job(s): {pid}"
        eventually(lambda: not pids_alive([pid]), 30)


# ---------------------------------------------------------------------- demo, new-plugin, config
def test_demo(capsys):
    code, out, _ = run(capsys, "demo", "--workers", "1", "--tasks", "10")
    assert code == 0 and "crew demo: 10 tasks on 1 local workers" in out and "exactly 1..10" in out


def test_demo_bad_arguments(capsys):
    assert run(capsys, "demo", "--workers", "0")[0] == 2


def test_new_plugin(capsys, tmp_path):
    code, out, _ = run(capsys, "new-plugin", "tiny", "--directory", str(tmp_path))
    assert code == 0 and out.splitlines()[0] == f"created {tmp_path / 'crew-tiny'}"
    assert (tmp_path / "crew-tiny" / "src" / "crew_tiny" / "launcher.py").is_file()
    code, _, err = run(capsys, "new-plugin", "tiny", "--directory", str(tmp_path))
    assert code == 1 and "already exists" in err
    assert run(capsys, "new-plugin", "tiny", "--directory", str(tmp_path), "--force")[0] == 0


def test_new_plugin_defaults_to_the_packages_folder(capsys, tmp_path, monkeypatch):
    (tmp_path / "packages").mkdir()
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "new-plugin", "here")[0] == 0
    assert (tmp_path / "packages" / "crew-here" / "pyproject.toml").is_file()


def test_new_plugin_bad_name(capsys, tmp_path):
    code, _, err = run(capsys, "new-plugin", "Bad-Name", "-d", str(tmp_path))
    assert code == 2 and "lower case" in err


def test_config(capsys, tmp_path):
    (tmp_path / "etc-crew.toml").write_text('[launchers.local]\nworkers = 4\n[monitors.fake]\nprefix = "x"\n')
    code, out, _ = run(capsys, "config")
    assert code == 0
    assert f"{tmp_path / 'etc-crew.toml'}: read" in out
    assert f"[launchers.local]\nworkers = 4  # {tmp_path / 'etc-crew.toml'}" in out
    assert '[monitors.fake]\nprefix = "x"' in out


# ---------------------------------------------------------------------- the installed command
def test_console_script_and_python_m():
    script = Path(sys.executable).parent / "crew"
    assert script.is_file(), "crew-core installs the `crew` console script"
    for argv in ([str(script), "launchers"], [sys.executable, "-m", "crew", "launchers"]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False)
        assert done.returncode == 0, done.stderr
        assert "crew_local:plugin" in done.stdout
    done = subprocess.run([str(script), "logs"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == "" and "usage: crew logs" in done.stderr
