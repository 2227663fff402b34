"""Job scripts (exact text), option validation and job-id parsing for Grid Engine, LSF and PBS."""

from __future__ import annotations

import os

import crew
import pytest
from crew_sge import (
    LsfLauncher,
    PbsLauncher,
    SgeLauncher,
    lsf,
    lsf_controller,
    pbs,
    pbs_controller,
    sge,
    sge_controller,
)

CALL = (
    "/usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 "
    "--seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123"
)
LINES = ["module load python/3.11", "source /shared/venv/bin/activate"]

SCRIPTS = {
    "sge_minimal.sh": (SgeLauncher, 4, {"name": "demo"}),
    "sge_full.sh": (SgeLauncher, 3, {
        "name": "demo", "job_name": "analysis", "cwd": "/scratch/work", "envvars": True, "log_join": True,
        "log_output": "/shared/logs/worker_$JOB_ID.$TASK_ID.log", "memory_gigabytes_limit": 2.5,
        "memory_gigabytes_required": 1, "cores": 4, "gpu": 1, "queue": "all.q", "project": "genomics",
        "script_lines": LINES, "extra_directives": ["-l h_rt=01:00:00", "#$ -notify"],
    }),
    "sge_home.sh": (SgeLauncher, 1, {"name": "demo", "cwd": False}),
    "lsf_minimal.sh": (LsfLauncher, 3, {"name": "demo"}),
    "lsf_full.sh": (LsfLauncher, 5, {
        "name": "demo", "cwd": "/scratch/work", "memory_gigabytes_limit": 4, "memory_gigabytes_required": 1.5,
        "cores": 2, "queue": "short", "project": "genomics", "log_output": "/shared/logs/out_%J_%I.txt",
        "log_error": "/shared/logs/err_%J_%I.txt", "script_lines": LINES, "extra_directives": "-W 2:00",
    }),
    "pbs_array.sh": (PbsLauncher, 4, {
        "name": "demo", "cores": 2, "memory_gigabytes_required": 0.5, "walltime_hours": 1.25, "queue": "workq",
        "account": "proj01", "script_lines": ['cd "$PBS_O_WORKDIR"'],
    }),
    "pbs_single.sh": (PbsLauncher, 1, {"name": "demo", "log_join": True}),
    "torque_array.sh": (PbsLauncher, 3, {
        "name": "demo", "torque": True, "cores": 4, "memory_gigabytes_required": 8, "walltime_hours": 48,
        "queue": "batch", "account": "proj01",
    }),
    "torque_single.sh": (PbsLauncher, 1, {"name": "demo", "torque": True}),
}  # fmt: skip


@pytest.mark.parametrize("filename", sorted(SCRIPTS))
def test_script_matches_golden_file(filename, golden):
    launcher_class, n, options = SCRIPTS[filename]
    launcher = launcher_class(script_directory="/shared/crew", **options)
    with open(os.path.join(golden, filename)) as handle:
        expected = handle.read()
    assert launcher.script(n, call=CALL) == expected


def test_pbs_pro_never_submits_a_one_element_array():
    launcher = PbsLauncher(name="demo", script_directory="/shared/crew")
    assert "#PBS -J" not in launcher.script(1, call=CALL)
    assert "#PBS -J 1-2\n" in launcher.script(2, call=CALL)


def test_each_scheduler_writes_one_array_of_n():
    for n in (1, 2, 7):
        assert f"#$ -t 1-{n}\n" in SgeLauncher(name="x").script(n, call=CALL)
        assert f'#BSUB -J "crew-x[1-{n}]"\n' in LsfLauncher(name="x").script(n, call=CALL)
        assert f"#PBS -t 1-{n}\n" in PbsLauncher(name="x", torque=True).script(n, call=CALL)


def test_default_logs_are_one_file_per_array_task(tmp_path):
    directory = str(tmp_path / "crew")
    logs = os.path.join(directory, "logs")
    assert f"#$ -o {logs}/crew-x_$JOB_ID.$TASK_ID.out\n" in SgeLauncher(name="x", script_directory=directory).script(2, call=CALL)
    assert f"#BSUB -e {logs}/crew-x_%J_%I.err\n" in LsfLauncher(name="x", script_directory=directory).script(2, call=CALL)
    assert f"#PBS -o {logs}/\n" in PbsLauncher(name="x", script_directory=directory).script(2, call=CALL)


def test_the_secret_never_appears_in_a_script(tmp_path):
    for launcher_class in (SgeLauncher, LsfLauncher, PbsLauncher):
        launcher = launcher_class(name="x", script_directory=str(tmp_path))
        launcher.bind(crew.Contact("tcp://127.0.0.1:5555", "cid", "s3cr3t-value", None, "x"))
        text = launcher.script(2)
        assert "s3cr3t-value" not in text
        assert f"--secret-file {tmp_path}/crew-secret-cid" in text
        assert oct(os.stat(tmp_path / "crew-secret-cid").st_mode & 0o777) == "0o600"


# ---------------------------------------------------------------------------------------- options

BAD_OPTIONS = [
    (SgeLauncher, "cores", 0), (SgeLauncher, "cores", "2"), (SgeLauncher, "gpu", 1.5),
    (SgeLauncher, "memory_gigabytes_limit", -1), (SgeLauncher, "memory_gigabytes_required", 0),
    (SgeLauncher, "queue", "all q"), (SgeLauncher, "project", ""), (SgeLauncher, "cwd", 3),
    (SgeLauncher, "cwd", "/a b"), (SgeLauncher, "envvars", "yes"), (SgeLauncher, "log_join", 1),
    (LsfLauncher, "cwd", "/a b"), (LsfLauncher, "cores", 0), (LsfLauncher, "memory_gigabytes_limit", 0),
    (LsfLauncher, "memory_gigabytes_required", float("nan")), (LsfLauncher, "queue", ""),
    (LsfLauncher, "project", 5), (PbsLauncher, "walltime_hours", 0), (PbsLauncher, "torque", "yes"),
    (PbsLauncher, "account", "a\nb"), (PbsLauncher, "cores", -2), (PbsLauncher, "log_join", None),
    (PbsLauncher, "memory_gigabytes_required", True), (PbsLauncher, "queue", 7),
    (SgeLauncher, "extra_directives", "-l a\n-l b"), (LsfLauncher, "command_submit", ""),
    (PbsLauncher, "log_output", "/logs with space/"), (SgeLauncher, "workers", 0),
]  # fmt: skip


@pytest.mark.parametrize(("launcher_class", "option", "value"), BAD_OPTIONS)
def test_bad_option_names_itself(launcher_class, option, value):
    with pytest.raises(crew.SettingError) as caught:
        launcher_class(name="x", **{option: value})
    assert option in str(caught.value)


@pytest.mark.parametrize("launcher_class", [SgeLauncher, PbsLauncher])
def test_log_join_excludes_log_error(launcher_class):
    with pytest.raises(crew.SettingError, match="log_error and log_join"):
        launcher_class(name="x", log_join=True, log_error="/logs/err")


@pytest.mark.parametrize("helper", [sge_controller, lsf_controller, pbs_controller])
def test_controller_helpers_validate_and_pass_options(helper, tmp_path):
    with pytest.raises(crew.SettingError, match="cores"):
        helper(name="x", cores=0)
    with pytest.raises(crew.SettingError, match="seconds_idle"):
        helper(name="x", seconds_idle=-1)
    controller = helper(name="x", workers=3, cores=2, queue="q1", script_directory=str(tmp_path), seconds_launch=5)
    launcher = controller.launcher
    assert (launcher.workers, launcher.cores, launcher.queue, launcher.seconds_launch) == (3, 2, "q1", 5)
    assert launcher.script_directory == str(tmp_path)
    assert not controller._started


def test_plugins_are_registered():
    from importlib.metadata import entry_points

    found = {entry.name: entry.load() for entry in entry_points(group=crew.ENTRY_POINT_GROUP)}
    assert found["sge"].launcher is SgeLauncher and found["sge"].controller is sge_controller
    assert found["lsf"].launcher is LsfLauncher and found["lsf"].monitor.__name__ == "LsfMonitor"
    assert found["pbs"].launcher is PbsLauncher and found["pbs"].package == "crew-sge"


# ---------------------------------------------------------------------------------------- job ids


@pytest.mark.parametrize(("output", "expected"), [
    ("7.1-3:1\n", "7"), ("12\n", "12"), ("4711.1-1:1", "4711"),
    ('Your job-array 7.1-3:1 ("crew-x") has been submitted\n', "7"),
    ('Your job 15 ("crew-x") has been submitted\n', "15"),
])  # fmt: skip
def test_sge_job_id(output, expected):
    assert sge.parse_job_id(output) == expected


@pytest.mark.parametrize(("output", "expected"), [
    ("Job <123> is submitted to default queue <normal>.\n", "123"),
    ("Job <5> is submitted to queue <short>.", "5"),
    ("Warning: project x not found\nJob <88> is submitted to queue <long>.\n", "88"),
])  # fmt: skip
def test_lsf_job_id(output, expected):
    assert lsf.parse_job_id(output) == expected


@pytest.mark.parametrize(("output", "expected"), [
    ("12[].pbs01\n", "12[].pbs01"), ("4711.pbs01.cluster.example.org\n", "4711.pbs01.cluster.example.org"),
    ("35\n", "35"), ("qsub: waiting for job\n99[].server\n", "99[].server"),
])  # fmt: skip
def test_pbs_job_id(output, expected):
    assert pbs.parse_job_id(output) == expected


@pytest.mark.parametrize("parse", [sge.parse_job_id, lsf.parse_job_id, pbs.parse_job_id])
def test_no_job_id_is_an_error(parse):
    with pytest.raises(ValueError, match="no job id"):
        parse("Unable to run job: something went wrong\n")
