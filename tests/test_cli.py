"""The ``crew`` command: every subcommand, its exit code, and errors on stderr.

A made-up plugin ("fake", registered by patching the entry-point lookup) stands in for a
scheduler; the real crew-local plugin is used for the end-to-end checks (by pid, never --all)."""

import io
import json
import os
import signal
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import crew
import plumbum
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


def test_terminate_all_with_yes(capsys):
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--all", "--yes")
    assert code == 0 and out.strip() == "terminated 2 job(s): 7_1 7_2"


class _Terminal:
    """Standard input that is a terminal, answering ``answer``."""

    def __init__(self, answer):
        self.answer = answer

    def isatty(self):
        return True

    def readline(self):
        return self.answer


def test_terminate_all_asks_first(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    code, out, err = run(capsys, "terminate", "-l", "fake", "--all")
    assert code == 1 and out == "" and "end all 2 fake crew worker job(s)" in err and "nothing ended" in err
    assert FakeMonitor.made[-1].ended == []
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--all")
    assert code == 0 and out.strip() == "terminated 2 job(s): 7_1 7_2"


def test_terminate_all_without_a_terminal_needs_yes(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, err = run(capsys, "terminate", "-l", "fake", "--all")
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "confirm with --yes" in err
    assert FakeMonitor.made[-1].ended == []


_FAKE_JOBS = FakeMonitor.jobs


def _jobs_with_controllers(monitor):
    rows = _FAKE_JOBS(monitor) + [dict(id="8_1", array_index=1, name="crew-b", state="running", reason=None,
                                             node="n2", start_time=None, raw_state="R")]
    for row, (controller, alive) in zip(rows, [("c1", True), ("c1", True), ("c2", False)]):
        row.update(controller=controller, controller_alive=alive)
    return rows


def test_terminate_orphans_and_one_controllers_workers(capsys, monkeypatch):
    monkeypatch.setattr(FakeMonitor, "jobs", _jobs_with_controllers)
    monkeypatch.setattr(FakeMonitor, "terminate", lambda self, ids=None, all=False: self.ended.extend(ids) or ids)
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--orphans")
    assert code == 0 and out.strip() == "terminated 1 job(s): 8_1"
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--controller", "c1")
    assert code == 0 and out.strip() == "terminated 2 job(s): 7_1 7_2" and FakeMonitor.made[-1].ended == ["7_1", "7_2"]
    code, out, _ = run(capsys, "terminate", "-l", "fake", "--controller", "c9")
    assert code == 0 and out.strip() == "terminated 0 job(s)"
    code, out, _ = run(capsys, "workers", "-l", "fake")
    assert out.splitlines()[0].split()[-2:] == ["CONTROLLER", "CONTROLLER_ALIVE"]
    assert out.splitlines()[3].split()[-2:] == ["c2", "False"]


def test_terminate_by_controller_needs_a_monitor_that_knows_controllers(capsys):
    code, out, err = run(capsys, "terminate", "-l", "fake", "--orphans")
    assert code == 1 and out == "" and "does not tell which controller" in err


def test_terminate_needs_one_scope(capsys):
    assert run(capsys, "terminate", "-l", "fake")[0] == 2
    for extra in (["--all", "7_1"], ["--orphans", "--all"], ["--controller", "abc", "7_1"]):
        code, _, err = run(capsys, "terminate", "-l", "fake", *extra)
        assert code == 2 and "exactly one of: job ids, --controller ID, --orphans, --all" in err
    code, _, err = run(capsys, "terminate", "-l", "fake", "--yes", "7_1")
    assert code == 2 and "--yes only applies to --all" in err
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


def _local_worker_rows(capsys, pids):
    code, out, _ = run(capsys, "workers", "--launcher", "local", "--json")
    assert code == 0
    return {row["id"]: row for row in json.loads(out) if row["id"] in pids}


def _orphan_worker():
    """A process that the local monitor takes for a worker whose controller has exited: its
    command line is a worker's, and the process recorded as its launcher (a shell) is gone."""
    fake = f"{sys.executable} -c 'import time; time.sleep(300)' -m crew.worker tcp://127.0.0.1:9 --controller gone0123"
    done = subprocess.run(["sh", "-c", f"CREW_CONTROLLER_PID=$$ {fake} >/dev/null 2>&1 & echo $!"],
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout.split()[-1])


def test_terminate_scopes_local_workers_to_a_controller_or_orphans(capsys):
    """--controller ends one controller's workers; --orphans only those whose controller has exited."""
    orphan = _orphan_worker()
    try:
        with local_controller(workers=1) as controller:
            controller.push("import os; os.getpid()", name="pid")
            assert controller.wait(seconds_timeout=60)
            mine = controller.pop().result
            rows = _local_worker_rows(capsys, {mine, orphan})
            assert rows[mine]["controller_alive"] is True and rows[orphan]["controller_alive"] is False
            assert rows[orphan]["controller"] == "gone0123" and rows[mine]["controller"] != "gone0123"
            # (--orphans would also end other programs' orphans on this machine: tested below, on a fake.)
            code, out, _ = run(capsys, "terminate", "-l", "local", "--controller", "gone0123")
            assert code == 0 and out.strip() == f"terminated 1 job(s): {orphan}"
            eventually(lambda: not pids_alive([orphan]), 30)
            assert pids_alive([mine]) == [mine]
            code, out, _ = run(capsys, "terminate", "-l", "local", "--controller", rows[mine]["controller"])
            assert code == 0 and out.strip() == f"terminated 1 job(s): {mine}"
            eventually(lambda: not pids_alive([mine]), 30)
    finally:
        for pid in pids_alive([orphan]):
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------- one-line errors
class _MissingMonitor(crew.Monitor):
    """Needs a queue, as AWS Batch's monitor does."""

    def __init__(self, job_queue, region=None):
        self.job_queue = job_queue

    def jobs(self):
        raise crew.SchedulerError("qstat -f", "SGE 8.1.9\nusage: qstat [options]\n  [-ext] view additional attributes")

    def terminate(self, ids=None, all=False):
        return []


def test_a_required_monitor_argument_is_named(capsys, monkeypatch):
    monkeypatch.setattr(FakeMonitor, "__init__", _MissingMonitor.__init__)
    code, out, err = run(capsys, "workers", "-l", "fake")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert "the fake monitor needs job_queue: pass -o job_queue=VALUE" in err


def test_a_schedulers_many_lines_become_one(capsys, monkeypatch):
    monkeypatch.setattr(FakeMonitor, "jobs", _MissingMonitor.jobs)
    code, out, err = run(capsys, "workers", "-l", "fake")
    assert code == 1 and out == ""
    assert err == "crew workers: error: qstat -f failed: SGE 8.1.9 [2 more line(s) of output not shown]\n"


@pytest.mark.parametrize("argv, expected", [
    (["workers", "-l", "aws_batch"], "the aws_batch monitor needs job_queue: pass -o job_queue=VALUE"),
    (["workers", "-l", "lsf"], "bjobs failed: bjobs is not installed (not found on this machine)"),
    (["logs", "-l", "slurm", "not-a-job"], "id must be a SLURM job id such as 123 or 123_4, not 'not-a-job'"),
])
def test_installed_plugins_fail_in_one_line(capsys, tmp_path, argv, expected):
    """The real plugins, as the installed command runs them: one line on stderr, exit code 1
    (LSF's commands are looked up on a PATH that has none of them)."""
    with plumbum.local.env(PATH=str(tmp_path)):
        code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and expected in err, err
    assert "0x" not in err and "Traceback" not in err


def test_slurm_logs_of_an_unknown_job_fail(capsys, tmp_path):
    """No such job and no log file: an error naming the job, never empty output and exit code 0."""
    code, out, err = run(capsys, "logs", "-l", "slurm", "-o", f"script_directory={str(tmp_path)!r}", "99999999_1")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert "no log of job 99999999_1" in err and str(tmp_path) in err


# ---------------------------------------------------------------------- demo, new-plugin, config
def test_demo(capsys):
    code, out, _ = run(capsys, "demo", "--workers", "2", "--tasks", "40")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("crew demo: 40 tasks of 20 ms each, on ") and "exactly 1..40" in out
    header = lines[1].split()
    assert header[:4] == ["worker", "tasks", "busy", "(s)"]
    rows = [line.split() for line in lines[2:4]]
    assert sum(int(row[1]) for row in rows) == 40
    idle = [row[0] for row in rows if row[1] == "0"]
    if idle:  # a worker that ran nothing is explained
        assert lines[4].startswith(f"worker(s) {', '.join(idle)} ran no task")
    else:
        assert "of 2 local worker(s)" in lines[0]


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
