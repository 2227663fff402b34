"""SlurmLauncher without a cluster: exact scripts, option checks, parsing, and the command seam
exercised for real through small stand-in commands."""

from __future__ import annotations

import os
import pathlib
import stat
import textwrap

import crew
import pytest
from crew.cluster import PLACEHOLDER_CALL
from crew_slurm import SlurmLauncher, slurm_controller
from crew_slurm.launcher import parse_ended, parse_job_id, parse_pending

GOLDEN = pathlib.Path(__file__).parent / "golden"
CALL = "python3 -m crew.worker tcp://10.0.0.1:5700 --controller c0 --launch 1"


def golden(name: str, text: str) -> None:
    """Compare ``text`` with the golden file; CREW_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("CREW_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()


def command(directory: pathlib.Path, name: str, body: str) -> str:
    """A stand-in command: an executable shell script in ``directory``."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def bound(launcher: SlurmLauncher) -> SlurmLauncher:
    """The launcher as a controller leaves it after start() (address, id and secret known)."""
    launcher.bind(crew.Contact("tcp://127.0.0.1:5700", "c0ffee", "the-secret", None, "unit"))
    return launcher


# ---------------------------------------------------------------------- scripts
def test_script_with_every_option():
    launcher = SlurmLauncher(
        name="analysis",
        workers=8,
        partition="short",
        account="lab",
        qos="normal",
        time_minutes=90.5,
        n_tasks=4,
        cpus_per_task=2,
        memory_gigabytes_required=1.5,
        gpus=2,
        constraint="avx2&intel",
        script_directory="/shared/crew",
        script_lines=["module load python/3.11", "source /shared/venv/bin/activate"],
        extra_directives=["--exclusive", "#SBATCH --mail-type=NONE"],
    )
    golden("every_option.sh", launcher.script(8, CALL))


def test_script_defaults_single_worker_is_an_array_of_one():
    launcher = SlurmLauncher(name="unit", script_directory="/shared/crew")
    golden("defaults.sh", launcher.script(1, CALL))


def test_script_given_logs_memory_per_cpu_and_gres_text():
    launcher = SlurmLauncher(
        job_name="my jobs!",
        script_directory="/shared/crew",
        log_output="/logs/%x-%A-%a.txt",
        log_error="/logs/%x-%A-%a.txt",
        memory_gigabytes_per_cpu=0.3,
        gpus="a100:1",
    )
    golden("given_logs.sh", launcher.script(3, CALL))


def test_dry_run_before_start_shows_a_placeholder_and_writes_nothing(tmp_path):
    launcher = SlurmLauncher(name="unit", script_directory=tmp_path / "scripts")
    text = launcher.script(2)
    assert text.endswith(f"exec {PLACEHOLDER_CALL}\n")
    assert not (tmp_path / "scripts").exists()


def test_dry_run_after_start_shows_the_worker_reading_its_secret_from_a_file(tmp_path):
    launcher = bound(SlurmLauncher(name="unit", script_directory=tmp_path))
    text = launcher.script(2)
    secret_file = tmp_path / "crew-secret-c0ffee"
    assert f"--secret-file {secret_file}" in text
    assert "the-secret" not in text
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "CREW_SECRET=the-secret" in secret_file.read_text()


def test_job_name_from_the_controller_name_gets_the_crew_prefix():
    assert SlurmLauncher(name="crew-1a2b").job_name == "crew-1a2b"
    assert SlurmLauncher(name="my analysis").job_name == "crew-my-analysis"
    assert SlurmLauncher(name="x", job_name="42/run").job_name == "crew-42-run"
    assert SlurmLauncher().job_name == "crew"


def test_default_script_directory_is_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    launcher = SlurmLauncher()
    assert launcher.script_directory == str(tmp_path / ".crew" / "scripts")
    assert launcher.log_path("output") == str(tmp_path / ".crew" / "scripts" / "logs" / "crew_%A_%a.out")


# ---------------------------------------------------------------------- option checks
@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("partition", ""),
        ("partition", "two words"),
        ("account", 3),
        ("qos", "a\nb"),
        ("time_minutes", 0),
        ("time_minutes", "1h"),
        ("n_tasks", 0),
        ("n_tasks", 2.5),
        ("n_tasks", "4"),
        ("cpus_per_task", 0),
        ("cpus_per_task", 1.5),
        ("memory_gigabytes_required", -1),
        ("memory_gigabytes_per_cpu", "2G"),
        ("gpus", 0),
        ("gpus", "a b"),
        ("constraint", "x y"),
        ("log_output", "/my logs/out"),
        ("log_error", ""),
        ("job_name", ""),
        ("extra_directives", ["--exclusive\n--mem=1"]),
        ("extra_directives", [1]),
        ("script_lines", [None]),
        ("script_directory", 7),
        ("command_submit", ""),
        ("command_cancel", []),
        ("machine", "login-node"),
        ("seconds_status", -1),
        ("workers", 0),
        ("seconds_idle", 0),
    ],
)
def test_bad_option_names_the_argument(argument, value):
    with pytest.raises(crew.SettingError, match=argument):
        SlurmLauncher(**{argument: value})


def test_slurm_controller_hands_each_option_to_its_part(tmp_path):
    controller = slurm_controller(
        name="unit", workers=3, host="127.0.0.1", seconds_timeout=7, crashes_max=1, partition="debug",
        script_directory=tmp_path, script_lines=["module load python"],
    )
    launcher = controller.launcher
    assert isinstance(launcher, SlurmLauncher)
    assert (launcher.name, launcher.workers, launcher.partition, launcher.seconds_timeout) == ("unit", 3, "debug", 7)
    assert launcher.script_lines == ["module load python"]
    assert (controller.client.host, controller.client.seconds_timeout, controller.crashes_max) == ("127.0.0.1", 7, 1)
    with pytest.raises(crew.SettingError, match="cpus_per_task"):
        slurm_controller(cpus_per_task=0)


def test_both_memory_options_are_refused():
    with pytest.raises(crew.SettingError, match="memory_gigabytes_required and memory_gigabytes_per_cpu"):
        SlurmLauncher(memory_gigabytes_required=1, memory_gigabytes_per_cpu=1)


def test_default_logs_need_a_script_directory_without_spaces():
    with pytest.raises(crew.SettingError, match="script_directory"):
        SlurmLauncher(script_directory="/my files/crew")
    SlurmLauncher(script_directory="/my files/crew", log_output="/logs/o", log_error="/logs/e")


def test_script_refuses_zero_workers():
    with pytest.raises(crew.SettingError, match="n must be"):
        SlurmLauncher().script(0, CALL)


# ---------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("output", "job_id"),
    [("123\n", "123"), ("4567;cluster2\n", "4567"), ("\n89\n", "89")],
)
def test_parse_job_id(output, job_id):
    assert parse_job_id(output) == job_id


@pytest.mark.parametrize("output", ["", "Submitted batch job 12\n", "12a\n"])
def test_parse_job_id_refuses_other_output(output):
    with pytest.raises(ValueError):
        parse_job_id(output)


SQUEUE_TASKS = """\
7|PENDING|Priority
7|PENDING|Priority
7|PENDING|Resources
7|RUNNING|None
8|RUNNING|None
8|COMPLETED|None
9|FAILED|NonZeroExitCode
9|CANCELLED|None
10|COMPLETED|None
"""


def test_parse_pending_counts_pending_tasks_and_takes_the_common_reason():
    assert parse_pending(SQUEUE_TASKS) == {
        "7": crew.Queued(3, "Priority"),
        "8": crew.Queued(0),
        "9": crew.Queued(0),
        "10": crew.Queued(0),
    }
    assert parse_pending("") == {}


def test_parse_ended_lists_jobs_none_of_whose_tasks_waits_or_runs():
    assert parse_ended(SQUEUE_TASKS) == {"9": "FAILED, CANCELLED", "10": "COMPLETED"}


# ---------------------------------------------------------------------- the command seam, for real
def test_launch_writes_an_owner_only_script_submits_it_and_keeps_the_job_id(tmp_path):
    record = tmp_path / "record"
    sbatch = command(tmp_path, "sbatch", f"""\
        echo "$@" > {record}
        stat -c %a "$2" >> {record}
        cat "$2" >> {record}
        echo "4242;crew"
    """)
    launcher = bound(SlurmLauncher(name="unit", workers=3, script_directory=tmp_path / "s", command_submit=sbatch))
    call = launcher.call(launch="1")
    handle = launcher.launch_workers(call, 3)
    assert handle == "4242"
    assert launcher.job_ids == ["4242"]
    arguments, mode, *script = record.read_text().splitlines()
    assert arguments.startswith("--parsable ") and arguments.endswith(".sh")
    assert mode == "700"
    assert "\n".join(script) + "\n" == launcher.script(3, call)
    assert not os.path.exists(arguments.split()[1]), "the script stays after a successful submission"
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    assert (tmp_path / "s" / "logs").is_dir()


def test_submission_failure_raises_scheduler_error_with_its_message(tmp_path):
    sbatch = command(tmp_path, "sbatch", """\
        echo "sbatch: error: invalid partition specified: nope" >&2
        exit 1
    """)
    launcher = bound(SlurmLauncher(script_directory=tmp_path, command_submit=sbatch))
    with pytest.raises(crew.SchedulerError, match="invalid partition specified: nope") as caught:
        launcher.launch_workers(launcher.call(), 2)
    assert caught.value.returncode == 1
    assert caught.value.command.startswith(sbatch)
    assert launcher.job_ids == []


def test_missing_submit_command_raises_scheduler_error(tmp_path):
    launcher = bound(SlurmLauncher(script_directory=tmp_path, command_submit="crew-no-such-sbatch"))
    with pytest.raises(crew.SchedulerError, match="crew-no-such-sbatch is not installed"):
        launcher.launch_workers(launcher.call(), 1)
    launcher = bound(SlurmLauncher(script_directory=tmp_path, command_submit=str(tmp_path / "no-sbatch")))
    with pytest.raises(crew.SchedulerError, match="no-sbatch could not run: No such file or directory"):
        launcher.launch_workers(launcher.call(), 1)


def test_unreadable_submit_output_raises_scheduler_error(tmp_path):
    sbatch = command(tmp_path, "sbatch", "echo 'Submitted batch job 12'\n")
    launcher = bound(SlurmLauncher(script_directory=tmp_path, command_submit=sbatch))
    with pytest.raises(crew.SchedulerError, match="no job id"):
        launcher.launch_workers(launcher.call(), 1)


def test_slow_submit_command_times_out(tmp_path):
    sbatch = command(tmp_path, "sbatch", "exec sleep 30\n")
    launcher = bound(SlurmLauncher(script_directory=tmp_path, command_submit=sbatch, seconds_timeout=0.5))
    with pytest.raises(crew.SchedulerError, match="no answer within 0.5 seconds"):
        launcher.launch_workers(launcher.call(), 1)


def test_terminate_cancels_every_distinct_job_in_one_call(tmp_path):
    record = tmp_path / "record"
    scancel = command(tmp_path, "scancel", f'echo "$@" >> {record}\n')
    launcher = SlurmLauncher(command_cancel=[scancel, "--quiet"])
    launcher.terminate_workers(["11", "12", "11", None])
    launcher.terminate_worker("13")
    assert record.read_text().splitlines() == ["--quiet 11 12", "--quiet 13"]


def test_queued_and_exit_status_share_one_squeue_per_seconds_status(tmp_path):
    record = tmp_path / "record"
    squeue = command(tmp_path, "squeue", f"""\
        echo "$@" >> {record}
        printf '5|PENDING|Priority\\n5|PENDING|Priority\\n5|RUNNING|None\\n6|FAILED|None\\n'
    """)
    launcher = SlurmLauncher(seconds_status=60)
    launcher.command_status = squeue
    assert launcher.queued(["5", "6", "4"]) == [crew.Queued(2, "Priority"), crew.Queued(0), crew.Queued(0)]
    assert launcher.exit_status("5") is None
    assert launcher.exit_status("6") == "SLURM job 6 FAILED"
    assert launcher.exit_status("4") is None, "a job squeue does not know is not taken as ended"
    assert record.read_text().splitlines() == ["--noheader --array --states=all --jobs=5,6,4 --format=%F|%T|%r"]
    # A job the last answer did not cover is asked about, with the jobs still alive then.
    assert launcher.queued(["7"]) == [crew.Queued(0)]
    assert record.read_text().splitlines()[1] == "--noheader --array --states=all --jobs=7,5 --format=%F|%T|%r"


def test_queued_gives_none_when_squeue_fails(tmp_path):
    squeue = command(tmp_path, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n")
    launcher = SlurmLauncher()
    launcher.command_status = squeue
    assert launcher.queued(["5"]) is None


class _RemoteLike(SlurmLauncher):
    """Writes its files through shell commands, as it does on a plumbum SshMachine."""

    def _is_local(self) -> bool:
        return False


def test_files_are_written_through_commands_on_a_remote_machine(tmp_path):
    record = tmp_path / "record"
    sbatch = command(tmp_path, "sbatch", f'stat -c %a "$2" > {record}; echo 77\n')
    launcher = bound(_RemoteLike(script_directory=tmp_path / "remote", command_submit=sbatch))
    assert launcher.launch_workers(launcher.call(), 2) == "77"
    assert record.read_text().strip() == "700"
    secret_file = tmp_path / "remote" / "crew-secret-c0ffee"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text() == "CREW_SECRET=the-secret\n"
    assert stat.S_IMODE((tmp_path / "remote").stat().st_mode) == 0o700
    assert [path.name for path in (tmp_path / "remote").iterdir() if path.suffix == ".sh"] == []
    launcher.close()
    assert not secret_file.exists()
