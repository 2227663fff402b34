"""SlurmMonitor without a cluster: parsing squeue and sacct, rows, and the cancel call."""

from __future__ import annotations

import contextlib
import datetime
import textwrap

import crew
import plumbum
import pytest
from crew.cluster import array_indices
from crew_slurm import SlurmMonitor
from crew_slurm.monitor import parse_sacct, parse_squeue

SQUEUE = """\
12_2|2|CANCELLED|None|vm|2026-11-24T18:27:19|crew-c96572
14_1|1|PENDING|BeginTime||2026-11-24T19:29:30|crew-mon
15|N/A|RUNNING|None|vm|2026-11-24T18:30:00|crew-odd|name
16|N/A|RUNNING|None|vm|2026-11-24T18:30:00|someone-else
"""

SACCT = """\
4_5|CANCELLED by 0|None|vm|2026-11-24T18:22:17|crew-probe2
4_[6-8]|CANCELLED by 0|None|None assigned|None|crew-probe2
12_2|COMPLETED|None|vm|2026-11-24T18:27:19|crew-c96572
14|CANCELLED by 0|None|None assigned|2026-11-24T18:29:31|allocation
"""


def test_parse_squeue():
    rows = parse_squeue(SQUEUE)
    assert rows[0] == {
        "id": "12_2", "array_index": 2, "name": "crew-c96572", "raw_state": "CANCELLED", "reason": None,
        "node": "vm", "start_time": datetime.datetime(2026, 11, 24, 18, 27, 19),
    }
    assert rows[1] == {
        "id": "14_1", "array_index": 1, "name": "crew-mon", "raw_state": "PENDING", "reason": "BeginTime",
        "node": None, "start_time": None,
    }
    assert rows[2]["array_index"] is None and rows[2]["name"] == "crew-odd|name"


def test_parse_sacct_expands_pending_arrays_and_trims_states():
    rows = parse_sacct(SACCT)
    assert [(row["id"], row["array_index"], row["raw_state"]) for row in rows] == [
        ("4_5", 5, "CANCELLED"), ("4_6", 6, "CANCELLED"), ("4_7", 7, "CANCELLED"), ("4_8", 8, "CANCELLED"),
        ("12_2", 2, "COMPLETED"), ("14", None, "CANCELLED"),
    ]
    assert rows[1]["node"] is None and rows[1]["start_time"] is None


@pytest.mark.parametrize(
    ("spec", "indices"),
    [("3", [3]), ("1-3", [1, 2, 3]), ("1-3,7,9-10", [1, 2, 3, 7, 9, 10]), ("2-8:3%2", [2, 5, 8]), ("1, 4", [1, 4])],
)
def test_array_indices(spec, indices):
    assert array_indices(spec) == indices


def _commands(tmp_path, squeue: str, sacct: str | None):
    """Stand-in squeue, sacct and scancel on a PATH of their own; scancel records its arguments."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    scripts = {
        "squeue": f"cat <<'END'\n{squeue}END\n",
        "sacct": f"cat <<'END'\n{sacct}END\n" if sacct is not None
        else "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1\n",
        "scancel": f'echo "$@" >> {tmp_path}/scancel\n',
        "scontrol": "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n",
    }
    for name, body in scripts.items():
        (bin_ / name).write_text("#!/bin/sh\n" + textwrap.dedent(body))
        (bin_ / name).chmod(0o755)
    return bin_


@pytest.fixture
def fake_path(tmp_path):
    """Put the stand-ins first on the PATH of plumbum's local machine (which the monitor uses)."""
    with contextlib.ExitStack() as stack:
        def make(squeue: str, sacct: str | None):
            bin_ = _commands(tmp_path, squeue, sacct)
            stack.enter_context(plumbum.local.env(PATH=f"{bin_}:{plumbum.local.env['PATH']}"))
            return tmp_path
        yield make


def test_jobs_merges_queue_and_accounting_and_keeps_crew_jobs_only(fake_path):
    fake_path(SQUEUE, SACCT)
    rows = SlurmMonitor().jobs()
    assert all(tuple(row) == crew.JOB_COLUMNS for row in rows)
    by_id = {row["id"]: row for row in rows}
    assert sorted(by_id) == ["12_2", "14_1", "15", "4_5", "4_6", "4_7", "4_8"]
    assert by_id["12_2"]["raw_state"] == "CANCELLED", "the queue's state wins over sacct's"
    assert by_id["14_1"]["state"] == "pending" and by_id["14_1"]["reason"] == "BeginTime"
    assert by_id["15"]["state"] == "running"
    assert by_id["4_6"]["state"] == "cancelled"
    assert SlurmMonitor(job_name="crew-mon").workers() == ["14_1"]


def test_jobs_without_accounting(fake_path):
    fake_path(SQUEUE, None)
    assert [row["id"] for row in SlurmMonitor().jobs()] == ["12_2", "14_1", "15"]
    with pytest.raises(crew.SchedulerError, match="accounting storage is disabled"):
        SlurmMonitor(accounting=True).jobs()


def test_terminate_cancels_in_one_call(fake_path):
    directory = fake_path(SQUEUE, SACCT)
    monitor = SlurmMonitor()
    assert monitor.terminate(["3_1", 4]) == ["3_1", "4"]
    assert monitor.terminate(all=True) == ["14_1", "15"]
    assert (directory / "scancel").read_text().splitlines() == ["3_1 4", "14_1 15"]
    with pytest.raises(crew.SettingError, match="ids"):
        monitor.terminate()


def test_log_falls_back_to_the_default_log_files(fake_path, tmp_path):
    fake_path(SQUEUE, SACCT)
    logs = tmp_path / "scripts" / "logs"
    logs.mkdir(parents=True)
    (logs / "crew-x_12_2.out").write_text("out text\n")
    (logs / "crew-x_12_2.err").write_text("err text")
    (logs / "crew-x_12_3.out").write_text("other task\n")
    assert SlurmMonitor(script_directory=tmp_path / "scripts").log("12_2") == "out text\nerr text\n"
