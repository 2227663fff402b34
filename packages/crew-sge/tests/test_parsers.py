"""The monitors' and launchers' readers of scheduler output, on real-world samples."""

from __future__ import annotations

import datetime
import json

import crew
from crew_sge import LsfLauncher, PbsLauncher, SgeLauncher, lsf, pbs, sge
from crew_sge._common import _hms, _is_gone, _sibling

QSTAT_XML = """<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>4</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>crew-run</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-24T18:21:03</JAT_start_time>
      <queue_name>all.q@node07</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
    <job_list state="running">
      <JB_job_number>4</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>crew-run</JB_name>
      <JB_owner>root</JB_owner>
      <state>dr</state>
      <JAT_start_time>2026-11-24T18:21:04</JAT_start_time>
      <queue_name>all.q@node08</queue_name>
      <slots>1</slots>
      <tasks>2</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>4</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>crew-run</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-24T18:21:02</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>3-5:1</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>5</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>crew-held</JB_name>
      <JB_owner>root</JB_owner>
      <state>hqw</state>
      <JB_submission_time>2026-11-24T18:21:03</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>1,3</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>6</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>other</JB_name>
      <JB_owner>root</JB_owner>
      <state>Eqw</state>
      <JB_submission_time>2026-11-24T18:21:03</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""

QACCT = """==============================================================
qname        all.q
hostname     node07
group        root
owner        root
project      NONE
jobname      crew-run
jobnumber    3
taskid       1
qsub_time    Tue Nov 24 18:20:53 2026
start_time   Tue Nov 24 18:20:54 2026
end_time     Tue Nov 24 18:21:53 2026
failed       0
exit_status  0
==============================================================
qname        all.q
hostname     node08
jobname      crew-run
jobnumber    3
taskid       2
start_time   Tue Nov 24 18:20:54 2026
failed       100 : assumedly after job
exit_status  137                  (Killed)
==============================================================
qname        all.q
hostname     node08
jobname      crew-single
jobnumber    9
taskid       undefined
start_time   Tue Nov  3 08:05:09 2026
failed       0
exit_status  1
"""


def test_qstat_xml_rows():
    rows = sge.parse_qstat_xml(QSTAT_XML)
    assert [row["id"] for row in rows] == ["4.1", "4.2", "4.3", "4.4", "4.5", "5.1", "5.3", "6"]
    first = rows[0]
    assert (first["job"], first["array_index"], first["name"], first["raw_state"], first["node"]) == (
        "4", 1, "crew-run", "r", "node07"
    )
    assert first["start_time"] == datetime.datetime(2026, 11, 24, 18, 21, 3)
    assert rows[2]["start_time"] is None and rows[2]["node"] is None and rows[2]["reason"] == "queued and waiting"
    assert rows[5]["reason"] == "on hold"
    assert rows[7]["array_index"] is None and "error" in rows[7]["reason"]
    assert sge.parse_qstat_xml("") == []


def test_sge_queued_counts_waiting_tasks_but_not_errors():
    launcher = SgeLauncher(name="x")
    found = launcher._parse_status(QSTAT_XML)
    assert found == {"4": crew.Queued(3, "queued and waiting"), "5": crew.Queued(2, "on hold")}


def test_qacct_rows():
    rows = sge.parse_qacct(QACCT)
    assert [(row["id"], row["state"], row["node"]) for row in rows] == [
        ("3.1", "done", "node07"), ("3.2", "cancelled", "node08"), ("9", "failed", "node08"),
    ]
    assert rows[0]["start_time"] == datetime.datetime(2026, 11, 24, 18, 20, 54)
    assert rows[2]["start_time"] == datetime.datetime(2026, 11, 3, 8, 5, 9)
    assert rows[2]["reason"] == "failed 0, exit status 1" and rows[2]["raw_state"] == "z"
    assert sge.parse_qacct("") == []


BJOBS = """123|1|RUN|node07|Nov 24 18:20|-|-|-|crew-a[1]
123|2|PEND|-|-|-|-|Job slot limit reached;|crew-a[2]
124|0|DONE|4*node08:2*node09|Nov  3 09:01 L|-|-|-|crew-b
125|3|EXIT|node07|Nov 24 18:10|130|TERM_OWNER: job killed by owner|-|crew-c[3]
126|1|EXIT|node07|Nov 24 18:10|1|-|-|crew-d[1]
"""


def test_bjobs_rows():
    now = datetime.datetime(2026, 11, 30, 12, 0)
    rows = lsf.parse_bjobs(BJOBS)
    assert [(row["id"], row["array_index"], row["name"], row["state"]) for row in rows] == [
        ("123[1]", 1, "crew-a", "running"), ("123[2]", 2, "crew-a", "pending"), ("124", None, "crew-b", "done"),
        ("125[3]", 3, "crew-c", "cancelled"), ("126[1]", 1, "crew-d", "failed"),
    ]
    assert rows[1]["reason"] == "Job slot limit reached" and rows[1]["node"] is None
    assert rows[2]["node"] == "node08"
    assert rows[4]["reason"] == "exit code 1"
    assert lsf._start_time("Nov  3 09:01 L", now) == datetime.datetime(2026, 11, 3, 9, 1)
    assert lsf._start_time("Dec 31 23:00", datetime.datetime(2027, 1, 1, 1, 0)) == datetime.datetime(2026, 12, 31, 23, 0)
    assert lsf.parse_bjobs("No unfinished job found\n") == []


def test_bjobs_json_rows_equal_the_delimited_ones():
    records = []
    for line in BJOBS.splitlines():
        values = line.split("|")
        records.append({field.upper(): ("" if value == "-" else value) for field, value in zip(lsf._FIELDS, values)})
    text = json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records})
    assert lsf.parse_bjobs_json(text) == lsf.parse_bjobs(BJOBS)


def test_lsf_queued():
    launcher = LsfLauncher(name="x")
    output = "123|RUN|-\n123|PEND|Job slot limit reached;\n123|PEND|Job slot limit reached;\n124|DONE|-\n"
    assert launcher._parse_status(output) == {"123": crew.Queued(2, "Job slot limit reached")}


PBS_JSON = {
    "timestamp": 1795544817, "pbs_version": "2022.1.3", "pbs_server": "pbs01",
    "Jobs": {
        "12[].pbs01": {"Job_Name": "crew-a", "job_state": "B", "array": True, "array_indices_submitted": "1-3"},
        "12[1].pbs01": {"Job_Name": "crew-a", "job_state": "R", "array_id": "12[].pbs01", "array_index": 1,
                        "exec_host": "node07/0*2", "stime": "Tue Nov 24 18:26:55 2026"},
        "12[2].pbs01": {"Job_Name": "crew-a", "job_state": "Q", "array_id": "12[].pbs01", "array_index": 2,
                        "comment": "Not Running: Insufficient amount of resource: ncpus"},
        "12[3].pbs01": {"Job_Name": "crew-a", "job_state": "X", "array_id": "12[].pbs01", "array_index": 3,
                        "Exit_status": 271, "stime": "Tue Nov 24 18:26:55 2026", "exec_host": "node08/1"},
        "13.pbs01": {"Job_Name": "crew-b", "job_state": "F", "Exit_status": 0, "exec_host": "node09/0"},
        "14.pbs01": {"Job_Name": "crew-c", "job_state": "F", "Exit_status": 2},
        "15.pbs01": {"Job_Name": "crew-d", "job_state": "H"},
    },
}  # fmt: skip

TORQUE_TEXT = """Job Id: 20[].torque01
    Job_Name = crew-t
    job_state = R
    job_array_request = 1-2

Job Id: 20[1].torque01
    Job_Name = crew-t-1
    Job_Owner = alice@login01
    job_state = R
    queue = batch
    exec_host = node03/0-1
    start_time = Tue Nov 24 18:27:00 2026
    Resource_List.nodes = 1:ppn=2
    Resource_List.walltime = 01:00:00
    Variable_List = PBS_O_QUEUE=batch,PBS_O_HOME=/home/alice,
\tPBS_O_WORKDIR=/home/alice/work
    job_array_id = 1

Job Id: 20[2].torque01
    Job_Name = crew-t-2
    job_state = Q
    job_array_id = 2

Job Id: 21.torque01
    Job_Name = crew-u
    job_state = C
    exit_status = 0
"""


def test_pbs_json_rows():
    rows = pbs.job_rows(pbs.parse_qstat_json(json.dumps(PBS_JSON)))
    assert [(row["id"], row["array_index"], row["state"], row["node"]) for row in rows] == [
        ("12[1].pbs01", 1, "running", "node07"), ("12[2].pbs01", 2, "pending", None),
        ("12[3].pbs01", 3, "cancelled", "node08"), ("13.pbs01", None, "done", "node09"),
        ("14.pbs01", None, "failed", None), ("15.pbs01", None, "pending", None),
    ]
    assert rows[0]["start_time"] == datetime.datetime(2026, 11, 24, 18, 26, 55)
    assert rows[0]["parent"] == "12[].pbs01" and rows[3]["parent"] == "13.pbs01"
    assert rows[1]["reason"] == "Not Running: Insufficient amount of resource: ncpus"
    assert rows[4]["reason"] == "exit status 2"
    assert pbs.parse_qstat_json(json.dumps({"timestamp": 1, "pbs_server": "pbs01"})) == {}


def test_torque_text_rows():
    jobs = pbs.parse_qstat_full(TORQUE_TEXT)
    assert jobs["20[1].torque01"]["Resource_List"] == {"nodes": "1:ppn=2", "walltime": "01:00:00"}
    assert jobs["20[1].torque01"]["Variable_List"].endswith("PBS_O_HOME=/home/alice,PBS_O_WORKDIR=/home/alice/work")
    rows = pbs.job_rows(jobs)
    assert [(row["id"], row["array_index"], row["name"], row["state"]) for row in rows] == [
        ("20[1].torque01", 1, "crew-t-1", "running"), ("20[2].torque01", 2, "crew-t-2", "pending"),
        ("21.torque01", None, "crew-u", "done"),
    ]
    assert rows[0]["node"] == "node03" and rows[0]["parent"] == "20[].torque01"


def test_pbs_queued_matches_the_ids_qsub_gave():
    launcher = PbsLauncher(name="x")
    launcher._status_arguments(["12[].pbs01", "13.pbs01", "15.pbs01"])
    found = launcher._parse_status(json.dumps(PBS_JSON))
    assert found == {
        "12[].pbs01": crew.Queued(1, "Not Running: Insufficient amount of resource: ncpus"),
        "15.pbs01": crew.Queued(1, None),
    }
    torque = PbsLauncher(name="x", torque=True)
    assert torque._status_arguments(["20[].torque01"])[1:] == ["-f", "-t"]
    assert torque._parse_status(TORQUE_TEXT) == {"20[].torque01": crew.Queued(1, None)}


def test_shared_helpers():
    assert _hms(1.25) == "01:15:00" and _hms(0.0001) == "00:00:01" and _hms(100) == "100:00:00"
    assert _sibling(["/opt/pbs/bin/qsub"], "qstat") == "/opt/pbs/bin/qstat"
    assert _sibling(["qsub", "-p", "0"], "qstat") == "qstat"
    ended = SgeLauncher.ended_pattern
    assert _is_gone('root has registered the job-array task 7.1 for deletion\ndenied: job "9" does not exist', ended)
    assert _is_gone('denied: job "135" does not exist\njob 136 is already in deletion', ended)
    assert not _is_gone('denied: job "9" does not exist\nerror: you are not the owner', ended)
    assert not _is_gone("", ended)


def test_ended_jobs_fail_their_launch_at_once():
    sge_launcher = SgeLauncher(name="x")
    sge_launcher._status_arguments(["4", "5", "6", "9"])
    ended = sge_launcher._parse_ended(QSTAT_XML)
    assert sorted(ended) == ["6", "9"]
    assert "error state" in ended["6"] and "left the queue" in ended["9"]

    lsf_launcher = LsfLauncher(name="x")
    output = "123|RUN|-\n123|DONE|-\n124|DONE|-\n124|EXIT|-\n"
    assert lsf_launcher._parse_ended(output) == {"124": "LSF job 124 DONE, EXIT"}

    pbs_launcher = PbsLauncher(name="x")
    pbs_launcher._status_arguments(["12[].pbs01", "13.pbs01", "99.pbs01"])
    ended = pbs_launcher._parse_ended(json.dumps(PBS_JSON))
    assert sorted(ended) == ["13.pbs01", "99.pbs01"] and "left the queue" in ended["99.pbs01"]
    torque = PbsLauncher(name="x", torque=True)
    torque._status_arguments(["20[].torque01", "21.torque01"])
    assert torque._parse_ended(TORQUE_TEXT) == {"21.torque01": "PBS job 21.torque01 ended: done"}
