"""The LSF and PBS stand-in commands behave like the real ones where crew depends on it.

They must print what the real commands print and reject what the real commands reject, or the
end-to-end tests through them would prove nothing.
"""

from __future__ import annotations

import json
import os
import re

import plumbum
import pytest
from crew.testing import eventually


def run(folder: str, command: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    program = plumbum.local[os.path.join(folder, command)][list(args)]
    if stdin is not None:
        program = program << stdin
    return program.run(retcode=None, timeout=30)


def script(tmp_path, prefix: str, directives: list[str], body: str) -> str:
    lines = ["#!/bin/bash", *(f"{prefix} {item}" for item in directives), body]
    return "\n".join(lines) + "\n"


@pytest.mark.lsf
def test_bsub_array_sets_lsf_variables_and_prints_the_job(lsf_bin, fake_scheduler, tmp_path):
    out = tmp_path / "out_%J_%I.txt"
    text = script(tmp_path, "#BSUB", ['-J "crew-a[1-3]"', f"-o {out}"], 'echo "$LSB_JOBID $LSB_JOBINDEX"')
    code, stdout, _ = run(lsf_bin, "bsub", stdin=text)
    assert code == 0
    match = re.fullmatch(r"Job <(\d+)> is submitted to default queue <normal>\.\n", stdout)
    assert match, stdout
    job = match.group(1)
    files = [tmp_path / f"out_{job}_{index}.txt" for index in (1, 2, 3)]
    eventually(lambda: all(path.exists() and path.read_text() for path in files))
    assert [path.read_text() for path in files] == [f"{job} {index}\n" for index in (1, 2, 3)]
    code, stdout, _ = run(lsf_bin, "bjobs", "-a", "-o", "jobid jobindex stat job_name", "-json")
    records = json.loads(stdout)["RECORDS"]
    assert [(r["JOBID"], r["JOBINDEX"], r["JOB_NAME"]) for r in records] == [(job, str(i), f"crew-a[{i}]") for i in (1, 2, 3)]


@pytest.mark.lsf
@pytest.mark.parametrize(("directive", "message"), [
    ('-J "crew-a[1-3"', "Bad job name"),
    ("-J crew-a]", "Bad job name"),
    ('-J "crew-a[3-1]"', "Bad job array index"),
    ("-q nosuch", "nosuch: No such queue"),
    ("-n zero", "Bad argument for option -n"),
    ("-M lots", "Bad argument for option -M"),
    ("-Z", "-Z: Illegal option"),
])  # fmt: skip
def test_bsub_rejects_what_lsf_rejects(lsf_bin, fake_scheduler, tmp_path, directive, message):
    code, stdout, stderr = run(lsf_bin, "bsub", stdin=script(tmp_path, "#BSUB", [directive], "true"))
    assert code != 0 and message in stderr and stdout == ""


@pytest.mark.lsf
def test_bkill_and_bjobs_states(lsf_bin, fake_scheduler, tmp_path):
    _, stdout, _ = run(lsf_bin, "bsub", stdin=script(tmp_path, "#BSUB", ['-J "crew-k[1-2]"', "-o /dev/null"], "sleep 300"))
    job = re.search(r"<(\d+)>", stdout).group(1)
    fields = "jobid jobindex stat exit_reason delimiter='|'"
    eventually(lambda: run(lsf_bin, "bjobs", "-noheader", "-o", fields)[1].count("|RUN|") == 2)
    code, stdout, _ = run(lsf_bin, "bkill", f"{job}[1]")
    assert code == 0 and stdout == f"Job <{job}[1]> is being terminated\n"
    _, stdout, _ = run(lsf_bin, "bjobs", "-a", "-noheader", "-o", fields)
    assert stdout.splitlines() == [f"{job}|1|EXIT|TERM_OWNER: job killed by owner", f"{job}|2|RUN|-"]
    assert run(lsf_bin, "bkill", job)[0] == 0
    code, _, stderr = run(lsf_bin, "bkill", job)
    assert code != 0 and "Job has already finished" in stderr
    code, stdout, stderr = run(lsf_bin, "bjobs")
    assert stdout == "" and "No unfinished job found" in stderr
    code, _, stderr = run(lsf_bin, "bjobs", "99999")
    assert code != 0 and "Job <99999> is not found" in stderr


@pytest.mark.pbs
def test_pbs_pro_array_and_plain_job(pbs_bin, fake_scheduler, tmp_path):
    body = 'echo "$PBS_JOBID $PBS_ARRAY_INDEX $PBS_ARRAY_ID $PBS_O_WORKDIR"'
    path = tmp_path / "job.sh"
    path.write_text(script(tmp_path, "#PBS", ["-N crew-p", "-J 1-2", f"-o {tmp_path}/", "-j oe"], body))
    code, stdout, _ = run(pbs_bin, "qsub", str(path))
    assert code == 0 and re.fullmatch(r"\d+\[\]\.[\w.-]+\n", stdout), stdout
    number, server = re.match(r"(\d+)\[\]\.(\S+)", stdout).groups()
    logs = [tmp_path / f"crew-p.o{number}.{index}" for index in (1, 2)]
    eventually(lambda: all(log.exists() and log.read_text() for log in logs))
    assert logs[1].read_text() == f"{number}[2].{server} 2 {number}[].{server} {os.getcwd()}\n"
    path.write_text(script(tmp_path, "#PBS", ["-N crew-q", f"-o {tmp_path}/", "-j oe"], body))
    _, stdout, _ = run(pbs_bin, "qsub", str(path))
    assert re.fullmatch(r"\d+\.[\w.-]+\n", stdout), stdout
    eventually(lambda: run(pbs_bin, "qstat", "-x", "-f", "-F", "json", stdout.strip())[1].count('"F"') == 1)


@pytest.mark.pbs
@pytest.mark.parametrize(("flavor", "directive", "message"), [
    ("pro", "-J 1-1", "illegal -J value"),
    ("pro", "-J 5", "illegal -J value"),
    ("pro", "-t 1-3", "invalid option -- 't'"),
    ("torque", "-J 1-3", "invalid option -- 'J'"),
    ("torque", "-t 3-1", "illegal -t value"),
    ("pro", "-l select=1:ncpus=two", "Illegal attribute or resource value"),
    ("pro", "-l mem=4gigs", "Illegal attribute or resource value Resource_List.mem"),
    ("pro", "-l walltime=1h", "Illegal attribute or resource value"),
    ("pro", "-l bogus=1", "Unknown resource Resource_List.bogus"),
    ("pro", "-j yes", "illegal -j value"),
    ("pro", "-q nosuch", "Unknown queue"),
    ("torque", "-q nosuch", "Unknown queue"),
])  # fmt: skip
def test_qsub_rejects_what_pbs_rejects(pbs_bin, fake_scheduler, tmp_path, flavor, directive, message):
    fake_scheduler.use(flavor)
    path = tmp_path / "job.sh"
    path.write_text(script(tmp_path, "#PBS", ["-N crew-r", directive], "true"))
    code, stdout, stderr = run(pbs_bin, "qsub", str(path))
    assert code != 0 and message in stderr and stdout == ""


@pytest.mark.pbs
def test_torque_array_variables_and_qdel(pbs_bin, fake_scheduler, tmp_path):
    fake_scheduler.use("torque")
    path = tmp_path / "job.sh"
    directives = ["-N crew-t", "-t 1-2", f"-o {tmp_path}/", "-j oe"]
    path.write_text(script(tmp_path, "#PBS", directives, 'echo "$PBS_ARRAYID"; sleep 300'))
    _, stdout, _ = run(pbs_bin, "qsub", str(path))
    array = stdout.strip()
    number = array.split("[")[0]
    eventually(lambda: all((tmp_path / f"crew-t.o{number}-{index}").exists() for index in (1, 2)))
    assert run(pbs_bin, "qstat", "-F", "json")[0] != 0  # TORQUE has no JSON output
    code, _, stderr = run(pbs_bin, "qdel", number)
    assert code == 153 and "Unknown Job Id" in stderr  # an array is named with its brackets
    assert run(pbs_bin, "qdel", array)[0] == 0
    _, stdout, _ = run(pbs_bin, "qstat", "-f", "-t")
    assert stdout.count("job_state = C") == 3
    code, _, stderr = run(pbs_bin, "qdel", array)
    assert code != 0 and "Job has finished" in stderr
