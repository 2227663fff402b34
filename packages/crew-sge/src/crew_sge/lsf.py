"""IBM Spectrum LSF: launcher, monitor and controller.

Each auto-scaling round submits one job array (``#BSUB -J "name[1-n]"``) as ``bsub < script``;
the monitor reads ``bjobs -o`` with a delimiter, or ``bjobs -o ... -json``.
"""

from __future__ import annotations

import collections
import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

import crew
from crew import Queued, SchedulerError, validate
from crew._build import CLUSTER_DEFAULTS, controller_helper

from ._common import _megabytes, _SchedulerLauncher, _SchedulerMonitor, _sibling

__all__ = ["LsfLauncher", "LsfMonitor", "lsf_controller", "parse_bjobs", "parse_bjobs_json", "parse_job_id"]

_SUBMITTED = re.compile(r"Job <(\d+)> is submitted")
_FIELDS = ("jobid", "jobindex", "stat", "exec_host", "start_time", "exit_code", "exit_reason", "pend_reason", "job_name")
"""What the monitor asks ``bjobs -o`` for; the name comes last since only it may hold the delimiter."""
_DELIMITER = "|"
_NO_JOB = re.compile(r"No (unfinished |pending |)job found")
_EMPTY = ("", "-")
_KILLED = re.compile(r"TERM_OWNER|TERM_ADMIN|killed by (owner|admin|root)", re.IGNORECASE)
"""How LSF's exit reason tells that ``bkill`` ended an element."""

STATES = {
    "PEND": "pending", "PSUSP": "pending", "WAIT": "pending", "PROV": "pending",
    "RUN": "running", "USUSP": "running", "SSUSP": "running", "UNKWN": "running",
    "DONE": "done", "EXIT": "failed", "ZOMBI": "cancelled",
}  # fmt: skip
"""LSF's job states and what crew calls them (``EXIT`` after ``bkill`` becomes ``cancelled``)."""


def parse_job_id(output: str) -> str:
    """The job id in what ``bsub`` prints: ``Job <123> is submitted to default queue <normal>.``"""
    match = _SUBMITTED.search(output)
    if not match:
        raise ValueError(f"no job id in {output!r}")
    return match.group(1)


def _value(text: Any) -> str | None:
    text = "" if text is None else str(text).strip()
    return None if text in _EMPTY else text


def _start_time(text: str | None, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """LSF's ``Nov 24 18:20`` (no year; a trailing letter such as ``L`` or ``E`` is ignored)."""
    if not text:
        return None
    match = re.match(r"([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s+(\d{4}))?", text.strip())
    if not match:
        return None
    now = now or datetime.datetime.now()
    month, day, hour, minute, second, year = match.groups()
    stamp = datetime.datetime.strptime(f"{month} {day} {hour}:{minute}:{second or 0}", "%b %d %H:%M:%S")
    stamp = stamp.replace(year=int(year) if year else now.year)
    if not year and stamp > now + datetime.timedelta(days=1):
        stamp = stamp.replace(year=now.year - 1)  # December's job seen in January
    return stamp


def _record_row(record: dict[str, Any]) -> dict[str, Any]:
    """A monitor row from one bjobs record (keys: the upper-case field names)."""
    job = str(record.get("JOBID", "")).strip()
    index = _value(record.get("JOBINDEX"))
    array_index = int(index) if index and index.isdigit() and index != "0" else None
    raw_state = (_value(record.get("STAT")) or "UNKWN").upper()
    state = STATES.get(raw_state, "running")
    exit_reason = _value(record.get("EXIT_REASON"))
    if raw_state == "EXIT" and exit_reason and _KILLED.search(exit_reason):
        state = "cancelled"
    host = _value(record.get("EXEC_HOST"))
    node = re.sub(r"^\d+\*", "", host.split(":")[0]) if host else None
    if state == "pending":
        reason = _value(record.get("PEND_REASON"))
    elif state in ("failed", "cancelled"):
        code = _value(record.get("EXIT_CODE"))
        reason = exit_reason or (f"exit code {code}" if code else None)
    else:
        reason = None
    return {
        "id": job if array_index is None else f"{job}[{array_index}]",
        "job": job,
        "array_index": array_index,
        "name": re.sub(r"\[\d+\]$", "", _value(record.get("JOB_NAME")) or "") or None,
        "raw_state": raw_state,
        "state": state,
        "reason": reason.rstrip(";").strip() if reason else None,
        "node": None if state == "pending" else node,
        "start_time": None if state == "pending" else _start_time(_value(record.get("START_TIME"))),
    }


def parse_bjobs(output: str, fields: Sequence[str] = _FIELDS, delimiter: str = _DELIMITER) -> list[dict[str, Any]]:
    """Rows from ``bjobs -noheader -o "<fields> delimiter='|'"`` (one line per array element).

    Keys: ``id`` (``123[4]`` for element 4 of job 123, ``123`` for a job without array), ``job``,
    ``array_index``, ``name`` (without the ``[4]``), ``raw_state``, ``state``, ``reason``, ``node``,
    ``start_time``.
    """
    rows = []
    for line in output.splitlines():
        if not line.strip() or _NO_JOB.search(line):
            continue
        values = line.split(delimiter, len(fields) - 1)
        rows.append(_record_row({field.upper(): value for field, value in zip(fields, values)}))
    return rows


def parse_bjobs_json(output: str) -> list[dict[str, Any]]:
    """Rows, in :func:`parse_bjobs`' keys, from ``bjobs -o "<fields>" -json``."""
    if not output.strip():
        return []
    return [_record_row(record) for record in json.loads(output).get("RECORDS", [])]


class LsfLauncher(_SchedulerLauncher):
    """Launch crew workers on LSF: one ``bsub < script`` of a ``#BSUB -J "name[1-n]"`` job array per round.

    Arguments (all optional):
        cwd: the workers' working directory (``-cwd``); default the directory the controller
            submits from (LSF's default).
        memory_gigabytes_limit: memory limit per worker in GB (``-M <MB>MB``).
        memory_gigabytes_required: memory a worker needs, in GB (``-R "rusage[mem=<MB>MB]"``).
        cores: CPU cores per worker (``-n <cores>`` with ``-R "span[hosts=1]"``: all on one host).
        queue: ``-q``.
        project: ``-P``.

    and those of :class:`crew.cluster.ClusterLauncher` (``script_directory``, ``script_lines``,
    ``extra_directives``, ``log_output``, ``log_error``, ``job_name``, ``command_submit``,
    ``command_cancel``, ``machine``, ``seconds_status``) and :class:`crew.Launcher`. Memory is
    written with its unit (LSF 10.1.0.2 or later). By default each worker logs to
    ``<script_directory>/logs/<job name>_<job id>_<index>.out`` (and ``.err``). Queued elements
    are read with the ``bjobs`` next to ``command_submit``.
    """

    directive_prefix = "#BSUB"
    default_submit = "bsub"
    default_cancel = "bkill"
    log_pattern = "%J_%I"
    submit_stdin = True
    ended_pattern = re.compile(r"already finished|No matching job found|is not found")
    cwd: str | None
    memory_gigabytes_limit: float | None
    project: str | None

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        cwd: str | None = None,
        memory_gigabytes_limit: float | None = None,
        memory_gigabytes_required: float | None = None,
        cores: int | None = None,
        queue: str | None = None,
        project: str | None = None,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, **options)
        self._set_options(cwd=cwd, memory_gigabytes_limit=memory_gigabytes_limit,
                          memory_gigabytes_required=memory_gigabytes_required,
                          cores=cores, queue=queue, project=project)  # fmt: skip

    def _directives(self, n: int) -> list[str]:
        """``#BSUB`` options for a job array of ``n`` elements (1..n)."""
        lines = [f'-J "{self.job_name}[1-{n}]"', f"-o {self.log_path('output')}", f"-e {self.log_path('error')}"]
        lines += self._flagged(
            ("-cwd {}", self.cwd),
            ("-q {}", self.queue),
            ("-P {}", self.project),
            ("-n {}", self.cores),
            ("-M {}MB", _megabytes(self.memory_gigabytes_limit)),
        )
        sections = self._flagged(
            ("rusage[mem={}MB]", _megabytes(self.memory_gigabytes_required)),
            ("span[hosts=1]", self.cores),
        )
        if sections:
            lines.append(f'-R "{" ".join(sections)}"')
        return lines

    def _parse_job_id(self, output: str) -> str:
        return parse_job_id(output)

    def _status_arguments(self, job_ids: Sequence[str]) -> list[str]:
        fields = "jobid stat pend_reason"
        return [_sibling(self.command_submit, "bjobs"), "-a", "-noheader", "-o", f"{fields} delimiter='{_DELIMITER}'", *job_ids]

    def _parse_status(self, output: str) -> dict[str, Queued]:
        reasons: dict[str, collections.Counter] = {}
        for row in parse_bjobs(output, ("jobid", "stat", "pend_reason")):
            if row["state"] == "pending":
                reasons.setdefault(row["job"], collections.Counter())[row["reason"]] += 1
        return {job: Queued(sum(count.values()), count.most_common(1)[0][0]) for job, count in reasons.items()}

    def _parse_ended(self, output: str) -> dict[str, str]:
        """Jobs none of whose elements waits or runs: their final states (``DONE``, ``EXIT``)."""
        states: dict[str, list[str]] = {}
        for row in parse_bjobs(output, ("jobid", "stat", "pend_reason")):
            states.setdefault(row["job"], []).append(row["raw_state"])
        return {
            job: f"LSF job {job} {', '.join(dict.fromkeys(found))}"
            for job, found in states.items()
            if all(STATES.get(state) in ("done", "failed", "cancelled") for state in found)
        }


class LsfMonitor(_SchedulerMonitor):
    """List, kill and read the logs of the user's crew jobs on LSF.

    Arguments: those of :class:`crew.cluster.ClusterMonitor` (the kill command ``command_cancel``
    defaults to ``bkill``; ``bjobs`` is taken from its folder when it is a path), and
        json: read ``bjobs -o ... -json`` (LSF 10.1) instead of delimited text.
    """

    default_cancel = "bkill"
    states = STATES
    ended_pattern = LsfLauncher.ended_pattern

    def __init__(self, *args: Any, json: bool = False, **options: Any):
        super().__init__(*args, **options)
        self.json = validate.flag("json", json)

    def _bjobs(self, *words: str) -> str:
        try:
            return self._run([self._command("bjobs"), *words])
        except SchedulerError as error:
            if _NO_JOB.search(error.scheduler_message):
                return ""
            raise

    def jobs(self) -> list[dict[str, Any]]:
        """The user's crew jobs (pending, running and recently finished), one row per array element."""
        fields = " ".join(_FIELDS)
        if self.json:
            return self._rows(parse_bjobs_json(self._bjobs("-a", "-o", fields, "-json")))
        return self._rows(parse_bjobs(self._bjobs("-a", "-noheader", "-o", f"{fields} delimiter='{_DELIMITER}'")))

    def _log_paths(self, id: str) -> list[str]:
        """The element's log files (``123[4]``) as bjobs names them (``%J``/``%I`` filled in), or
        the launchers' default names once LSF forgot the job."""
        match = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", id)
        if not match:
            raise crew.SettingError(f"id must be an LSF job id such as 123 or 123[4], not {id!r}")
        job, index = match.group(1), match.group(2) or "0"
        try:
            output = self._bjobs("-a", "-noheader", "-o", f"output_file error_file delimiter='{_DELIMITER}'", id)
        except SchedulerError:
            output = ""
        paths = []
        for line in output.splitlines()[:1]:
            for path in line.split(_DELIMITER):
                if path.strip() not in _EMPTY:
                    paths.append(path.strip().replace("%J", job).replace("%I", index))
        return paths or self._default_logs(f"*_{job}_{index}.*")


lsf_controller = controller_helper(
    LsfLauncher,
    name="lsf_controller",
    defaults=CLUSTER_DEFAULTS,
    doc="""A validated controller (not started) whose workers run as LSF job arrays.

    ``host`` is the address the workers dial back to (default: this machine's first address that
    is not loopback; the compute nodes must reach it). The first arguments are those of
    ``crew_local.local_controller``; the LSF options, keyword-only, are those of
    :class:`crew_sge.LsfLauncher`. Start it with ``controller.start()`` or a ``with`` block.
    """,
)
