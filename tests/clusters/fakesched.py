"""Stand-ins for the LSF (bsub, bjobs, bkill) and PBS (qsub, qstat, qdel) commands, for crew's tests.

No free LSF or PBS runs on Debian, so crew's LSF and PBS launchers are tested end to end against
these commands instead. They take the options crew and common job scripts use, read the
``#BSUB`` / ``#PBS`` directives of a job script, start one local process per array index with the
scheduler's environment variables, keep a job table, print what the real commands print, and
reject what the real commands reject (an unknown option, PBS Pro's ``-J 1-1``, an LSF job name
with a malformed ``[...]`` array bracket, an unknown queue ...).

Settings (environment variables of the command):
    CREW_FAKE_SCHEDULER_DIR    folder of the job table (default: <tmp>/crew-fake-scheduler-<uid>)
    CREW_FAKE_PBS_FLAVOR       ``pro`` (PBS Professional / OpenPBS, default) or ``torque``
    CREW_FAKE_SCHEDULER_SLOTS  the most array tasks running at once (default: no limit); the
                               others wait as pending, with the scheduler's pending reason.
                               A file ``slots`` in the job table's folder overrides it, also
                               for tasks already waiting (tests open the queue with it).
    CREW_FAKE_SCHEDULER_QUEUES comma-separated queue names accepted (default: LSF ``normal,short,long``,
                               PBS Pro ``workq``, TORQUE ``batch``; the first is the default queue)

Each task runs in its own session; ``bkill`` / ``qdel`` end it by its process-group id (the pid
recorded in the job table), never by name.

The bin/ folders next to this file hold the commands; each calls :func:`main`.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

# ------------------------------------------------------------------------------------- job table

PENDING, RUNNING, DONE, FAILED, KILLED = "pending", "running", "done", "failed", "killed"
FINISHED = (DONE, FAILED, KILLED)
HOST = socket.gethostname().split(".")[0]
USER = getpass.getuser()


class Usage(Exception):
    """The command line or a directive is wrong: print ``message`` on stderr, exit with ``code``."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def state_dir(kind: str) -> str:
    """The job-table folder of one scheduler kind (``lsf`` or ``pbs``)."""
    base = os.environ.get("CREW_FAKE_SCHEDULER_DIR") or os.path.join(
        tempfile.gettempdir(), f"crew-fake-scheduler-{os.getuid()}"
    )
    path = os.path.join(base, kind)
    os.makedirs(os.path.join(path, "jobs"), exist_ok=True)
    os.makedirs(os.path.join(path, "scripts"), exist_ok=True)
    return path


@contextlib.contextmanager
def locked(folder: str) -> Iterator[None]:
    """Hold the job table's lock (one writer at a time across all the commands)."""
    with open(os.path.join(folder, "lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def job_path(folder: str, job_id: int) -> str:
    return os.path.join(folder, "jobs", f"{job_id}.json")


def load(folder: str, job_id: int) -> dict[str, Any] | None:
    try:
        with open(job_path(folder, job_id)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def save(folder: str, job: dict[str, Any]) -> None:
    target = job_path(folder, job["id"])
    with open(target + ".new", "w") as handle:
        json.dump(job, handle)
    os.replace(target + ".new", target)


def all_jobs(folder: str) -> list[dict[str, Any]]:
    jobs = []
    for entry in os.listdir(os.path.join(folder, "jobs")):
        if entry.endswith(".json"):
            job = load(folder, int(entry[: -len(".json")]))
            if job is not None:
                jobs.append(job)
    return sorted(jobs, key=lambda job: job["id"])


def next_id(folder: str) -> int:
    counter = os.path.join(folder, "counter")
    try:
        with open(counter) as handle:
            value = int(handle.read().strip() or 0) + 1
    except FileNotFoundError:
        value = 1
    with open(counter, "w") as handle:
        handle.write(str(value))
    return value


def alive(pid: int | None) -> bool:
    """True when ``pid`` is a live process (a zombie left unreaped does not count)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def end_group(pgid: int, grace: float = 3.0) -> None:
    """SIGTERM a task's process group, then SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in group_members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def refresh(folder: str, job: dict[str, Any]) -> bool:
    """Mark tasks whose runner vanished without a word as failed; True when something changed."""
    changed = False
    for task in job["tasks"].values():
        if task["state"] in (PENDING, RUNNING) and not alive(task["pid"]):
            task.update(state=FAILED, end=time.time(), exit=task.get("exit") or 1)
            changed = True
    if changed:
        save(folder, job)
    return changed


def refreshed_jobs(folder: str) -> list[dict[str, Any]]:
    with locked(folder):
        jobs = all_jobs(folder)
        for job in jobs:
            refresh(folder, job)
    return jobs


def kill_tasks(folder: str, job_id: int, indices: list[str]) -> None:
    """Mark tasks killed (under the lock), then end their process groups."""
    groups = []
    with locked(folder):
        job = load(folder, job_id)
        for index in indices:
            task = job["tasks"][index]
            if task["state"] in FINISHED:
                continue
            was_running = task["state"] == RUNNING
            task.update(state=KILLED, end=time.time(), exit=271 if was_running else None)
            groups.append(task["pid"])
        save(folder, job)
    for pgid in groups:
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
            # Like the real schedulers, answer at once and escalate to SIGKILL in the background.
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--end-group", str(pgid)],
                start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True,
            )  # fmt: skip


# ------------------------------------------------------------------------------------- task runner


def spawn(folder: str, job: dict[str, Any]) -> None:
    """Start one runner process (own session) per array task; record its pid."""
    for index, task in job["tasks"].items():
        runner = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--run-task", folder, str(job["id"]), index],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        task["pid"] = runner.pid


def slots(folder: str) -> float:
    """The most tasks running at once: the file ``slots`` in the job table's folder (a test may
    write it to open or close the queue), else CREW_FAKE_SCHEDULER_SLOTS; empty means no limit."""
    try:
        with open(os.path.join(folder, "slots")) as handle:
            value = handle.read()
    except FileNotFoundError:
        value = os.environ.get("CREW_FAKE_SCHEDULER_SLOTS", "")
    return int(value) if value.strip() else float("inf")


def run_task(folder: str, job_id: int, index: str) -> int:
    """The runner: wait for a free slot, run the job script with the task's environment, record the end."""
    while True:
        with locked(folder):
            job = load(folder, job_id)
            task = job["tasks"][index]
            if task["state"] != PENDING:
                return 0
            running = sum(
                1 for other in all_jobs(folder) for item in other["tasks"].values() if item["state"] == RUNNING
            )
            if running < slots(folder):
                task.update(state=RUNNING, start=time.time(), host=HOST)
                save(folder, job)
                break
        time.sleep(0.1)
    environment = dict(job["env"])
    environment.update(job["task_env"][index])
    stdout_path, stderr_path = job["logs"][index]
    problem = None
    try:
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(open(stdout_path, "a"))
            stderr = stdout if stderr_path in (None, stdout_path) else files.enter_context(open(stderr_path, "a"))
            code = subprocess.call(
                [*interpreter(job["script"]), job["script"]],
                cwd=job["workdir"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
    except OSError as error:  # the log folder or the working directory is missing
        code, problem = 1, str(error)
    with locked(folder):
        job = load(folder, job_id)
        task = job["tasks"][index]
        if task["state"] == RUNNING:
            task.update(state=DONE if code == 0 else FAILED, end=time.time(), exit=code if code >= 0 else 256 - code)
            if problem:
                task["error"] = problem
            save(folder, job)
    return 0


def interpreter(script: str) -> list[str]:
    """The shebang line's command, or /bin/sh."""
    with open(script) as handle:
        first = handle.readline()
    return shlex.split(first[2:]) if first.startswith("#!") else ["/bin/sh"]


# ------------------------------------------------------------------------------------- parsing


def parse_options(
    args: list[str], spec: dict[str, bool], unknown: Callable[[str], Usage], attached: bool
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Split ``args`` into (option, value) pairs and positional words.

    ``spec`` maps each option to whether it takes a value; ``attached`` allows ``-lvalue`` for
    one-letter options (getopt style, as PBS parses). The first positional word ends the options.
    """
    options: list[tuple[str, str | None]] = []
    words = list(args)
    while words:
        word = words[0]
        if word == "--":
            words.pop(0)
            break
        if not word.startswith("-") or word == "-":
            break
        words.pop(0)
        if word in spec:
            if spec[word]:
                if not words:
                    raise unknown(word)
                options.append((word, words.pop(0)))
            else:
                options.append((word, None))
        elif attached and word[:2] in spec and spec[word[:2]]:
            options.append((word[:2], word[2:]))
        else:
            raise unknown(word)
    return options, words


def directives(script: str, prefix: str) -> list[str]:
    """Words of the ``prefix`` directive lines at the top of a job script (before its first command)."""
    words: list[str] = []
    for number, line in enumerate(script.splitlines()):
        stripped = line.strip()
        if number == 0 and stripped.startswith("#!"):
            continue
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        if stripped.startswith((prefix + " ", prefix + "\t")):
            body = stripped[len(prefix) :].split(" #", 1)[0]
            words += shlex.split(body)
    return words


def store_script(folder: str, job_id: int, text: str) -> str:
    path = os.path.join(folder, "scripts", f"{job_id}.sh")
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o700)
    return path


def queues(default: str) -> list[str]:
    listed = os.environ.get("CREW_FAKE_SCHEDULER_QUEUES", "")
    return [name.strip() for name in listed.split(",") if name.strip()] or default.split(",")


def expand_range(text: str) -> list[int] | None:
    """``1-5:2,8`` -> [1, 3, 5, 8]; None when malformed or empty."""
    indices: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not match:
            return None
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        step = int(match.group(3)) if match.group(3) else 1
        if end < start or step < 1:
            return None
        indices += list(range(start, end + 1, step))
    return indices or None


def lsf_time(stamp: float | None) -> str:
    if not stamp:
        return "-"
    moment = time.localtime(stamp)
    return f"{time.strftime('%b', moment)} {moment.tm_mday:>2} {time.strftime('%H:%M', moment)}"


def pbs_time(stamp: float | None) -> str:
    return time.ctime(stamp) if stamp else ""


# ------------------------------------------------------------------------------------- LSF

LSF_SUBMIT = {
    "-J": True, "-o": True, "-oo": True, "-e": True, "-eo": True, "-q": True, "-P": True,
    "-n": True, "-M": True, "-R": True, "-W": True, "-cwd": True, "-env": True, "-G": True,
    "-app": True, "-m": True, "-gpu": True, "-L": True, "-u": True, "-x": False, "-B": False,
    "-N": False, "-r": False, "-rn": False,
}  # fmt: skip
LSF_STAT = {PENDING: "PEND", RUNNING: "RUN", DONE: "DONE", FAILED: "EXIT", KILLED: "EXIT"}


def lsf_usage(word: str) -> Usage:
    return Usage(f"{word}: Illegal option.\nUsage: bsub [options] command [arguments] | bsub [options] < script", 255)


def bsub(args: list[str]) -> int:
    given, command = parse_options(args, LSF_SUBMIT, lsf_usage, attached=False)
    if command:
        script = "#!/bin/sh\n" + shlex.join(command) + "\n"
    else:
        script = sys.stdin.read()
        if not script.strip():
            raise Usage("No command is specified. Job not submitted.", 255)
    from_script, extra = parse_options(directives(script, "#BSUB"), LSF_SUBMIT, lsf_usage, attached=False)
    if extra:
        raise Usage(f"{extra[0]}: Illegal option in #BSUB line. Job not submitted.", 255)
    settings: dict[str, str | None] = {}
    for option, value in from_script + given:  # the command line overrides the script
        settings[option] = value

    name, indices = lsf_name(settings.get("-J"))
    for option in ("-n",):
        if option in settings and not re.fullmatch(r"[1-9]\d*(,[1-9]\d*)?", settings[option] or ""):
            raise Usage(f"Bad argument for option {option}. Job not submitted.", 255)
    if "-M" in settings and not re.fullmatch(r"\d+(\.\d+)?\s*([KMGTPE]B?)?!?", settings["-M"] or "", re.IGNORECASE):
        raise Usage("Bad argument for option -M. Job not submitted.", 255)
    if "-W" in settings and not re.fullmatch(r"(\d+:)?\d+", settings["-W"] or ""):
        raise Usage("Bad argument for option -W. Job not submitted.", 255)
    if "-R" in settings and (settings["-R"] or "").count("[") != (settings["-R"] or "").count("]"):
        raise Usage("Bad resource requirement syntax. Job not submitted.", 255)
    known = queues("normal,short,long")
    queue = settings.get("-q") or known[0]
    if queue not in known:
        raise Usage(f"{queue}: No such queue. Job not submitted.", 255)

    folder = state_dir("lsf")
    workdir = os.path.abspath(settings.get("-cwd") or os.getcwd())
    with locked(folder):
        job_id = next_id(folder)
        path = store_script(folder, job_id, script)
        keys = [str(index) for index in indices] if indices else ["0"]
        out = settings.get("-oo") or settings.get("-o")
        err = settings.get("-eo") or settings.get("-e")
        job = {
            "id": job_id,
            "kind": "lsf",
            "name": name or (shlex.join(command) if command else "STDIN"),
            "array": indices is not None,
            "queue": queue,
            "project": settings.get("-P") or "default",
            "user": USER,
            "script": path,
            "workdir": workdir,
            "submit": time.time(),
            "settings": settings,
            "env": dict(os.environ),
            "task_env": {},
            "logs": {},
            "tasks": {},
        }
        slots = settings.get("-n") or "1"
        for key in keys:
            job["task_env"][key] = {
                "LSB_JOBID": str(job_id),
                "LSB_JOBINDEX": key,
                "LSB_JOBNAME": job["name"],
                "LSB_QUEUE": queue,
                "LSB_DJOB_NUMPROC": slots.split(",")[0],
                "LSB_HOSTS": " ".join([HOST] * int(slots.split(",")[0])),
                "LSB_SUB_HOST": HOST,
                "LS_SUBCWD": os.getcwd(),
                "LSB_JOBINDEX_END": str(max(indices)) if indices else "0",
            }
            job["logs"][key] = (
                lsf_log(out, job_id, key, workdir, ".out"),
                lsf_log(err, job_id, key, workdir, ".err") if err else None,
            )
            job["tasks"][key] = {"state": PENDING, "pid": None, "start": None, "end": None, "exit": None}
        spawn(folder, job)
        save(folder, job)
    where = "queue" if settings.get("-q") else "default queue"
    print(f"Job <{job_id}> is submitted to {where} <{queue}>.")
    return 0


def lsf_name(value: str | None) -> tuple[str | None, list[int] | None]:
    """Split ``-J "name[1-4]%2"`` into the name and the array indices (None: not an array)."""
    if value is None:
        return None, None
    if "[" not in value and "]" not in value:
        return value, None
    match = re.fullmatch(r"([^\[\]]*)\[([^\[\]]+)\](%\d+)?", value)
    if not match:
        raise Usage("Bad job name. Job not submitted.", 255)
    indices = expand_range(match.group(2))
    if indices is None or min(indices) < 1:
        raise Usage("Bad job array index list. Job not submitted.", 255)
    if max(indices) > 1000:
        raise Usage("Job array index too large. Job not submitted.", 255)
    return match.group(1), indices


def lsf_log(template: str | None, job_id: int, index: str, workdir: str, suffix: str) -> str:
    if not template:  # a real LSF mails the output; keep it in the job table's folder instead
        return os.path.join(state_dir("lsf"), "scripts", f"{job_id}.{index}{suffix}")
    path = template.replace("%J", str(job_id)).replace("%I", index)
    path = os.path.join(workdir, path)
    if path.endswith("/") or os.path.isdir(path):
        path = os.path.join(path, f"{job_id}{suffix}" if index == "0" else f"{job_id}_{index}{suffix}")
    return path


LSF_FIELDS: dict[str, Callable[[dict, str, dict], str]] = {
    "jobid": lambda job, key, task: str(job["id"]),
    "id": lambda job, key, task: str(job["id"]),
    "jobindex": lambda job, key, task: key,
    "stat": lambda job, key, task: LSF_STAT[task["state"]],
    "job_name": lambda job, key, task: f"{job['name']}[{key}]" if job["array"] else job["name"],
    "name": lambda job, key, task: f"{job['name']}[{key}]" if job["array"] else job["name"],
    "user": lambda job, key, task: job["user"],
    "queue": lambda job, key, task: job["queue"],
    "proj_name": lambda job, key, task: job["project"],
    "from_host": lambda job, key, task: HOST,
    "exec_host": lambda job, key, task: task.get("host") or "-",
    "submit_time": lambda job, key, task: lsf_time(job["submit"]),
    "start_time": lambda job, key, task: lsf_time(task["start"]),
    "finish_time": lambda job, key, task: lsf_time(task["end"]),
    "exit_code": lambda job, key, task: str(task["exit"]) if task["state"] in (FAILED, KILLED) and task["exit"] else "-",
    "exit_reason": lambda job, key, task: "TERM_OWNER: job killed by owner" if task["state"] == KILLED else "-",
    "pend_reason": lambda job, key, task: lsf_pending_reason(task),
}  # fmt: skip


def lsf_pending_reason(task: dict) -> str:
    if task["state"] != PENDING:
        return "-"
    limited = slots(state_dir("lsf")) != float("inf")
    return "Job slot limit reached" if limited else "New job is waiting for scheduling"


BJOBS = {
    "-a": False, "-d": False, "-p": False, "-r": False, "-w": False, "-W": False, "-noheader": False,
    "-json": False, "-o": True, "-J": True, "-u": True, "-q": True, "-P": True,
}  # fmt: skip


def bjobs(args: list[str]) -> int:
    given, ids = parse_options(
        args, BJOBS, lambda word: Usage(f"{word}: Illegal option.\nUsage: bjobs [options] [jobId ...]", 255), attached=False
    )
    flags = {option for option, _ in given}
    settings = dict(given)
    if "-json" in flags and "-noheader" in flags:
        raise Usage("The -json and -noheader options cannot be used together.", 255)
    fields, delimiter = ["jobid", "user", "stat", "queue", "from_host", "exec_host", "job_name", "submit_time"], None
    if "-o" in settings:
        fields, delimiter = lsf_format(settings["-o"] or "")
    folder = state_dir("lsf")
    jobs = refreshed_jobs(folder)
    rows: list[tuple[dict, str, dict]] = []
    code = 0
    if ids:
        for word in ids:
            match = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", word)
            job = load(folder, int(match.group(1))) if match else None
            keys = [match.group(2)] if match and match.group(2) else (list(job["tasks"]) if job else [])
            found = [(job, key, job["tasks"][key]) for key in keys if job and key in job["tasks"]]
            if not found:
                print(f"Job <{word}> is not found", file=sys.stderr)
                code = 255
            rows += found
    else:
        for job in jobs:
            for key, task in job["tasks"].items():
                finished = task["state"] in FINISHED
                if ("-d" in flags and not finished) or ("-a" not in flags and "-d" not in flags and finished):
                    continue
                if "-p" in flags and task["state"] != PENDING or "-r" in flags and task["state"] != RUNNING:
                    continue
                rows.append((job, key, task))
    if "-J" in settings:
        pattern = settings["-J"] or ""
        rows = [row for row in rows if _name_matches(row[0]["name"] or "", pattern)]
    if "-u" in settings and settings["-u"] not in ("all", USER):
        rows = []
    if "-q" in settings:
        rows = [row for row in rows if row[0]["queue"] == settings["-q"]]
    if "-json" in flags and "-o" in settings:
        records = [{field.upper(): _json_value(LSF_FIELDS[field](*row)) for field in fields} for row in rows]
        print(json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}, indent=2))
        return code
    if not rows:
        if not ids:
            print("No job found" if "-a" in flags or "-d" in flags else "No unfinished job found", file=sys.stderr)
        return code
    table = [[LSF_FIELDS[field](*row) for field in fields] for row in rows]
    if delimiter is not None:
        if "-noheader" not in flags:
            print(delimiter.join(field.upper() for field in fields))
        for line in table:
            print(delimiter.join(line))
    else:
        header = [field.upper() for field in fields]
        widths = [max(len(text) for text in column) for column in zip(header, *table)]
        for line in ([] if "-noheader" in flags else [header]) + table:
            print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())
    return code


def _json_value(text: str) -> str:
    return "" if text == "-" else text


def _name_matches(name: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def lsf_format(spec: str) -> tuple[list[str], str | None]:
    """Fields and delimiter of ``bjobs -o "jobid stat:8 job_name delimiter='^'"``."""
    delimiter = None
    found = re.search(r"delimiter=(['\"])(.*?)\1", spec)
    if found:
        delimiter = found.group(2)
        spec = spec[: found.start()] + spec[found.end() :]
    fields = []
    for word in spec.split():
        field = word.split(":", 1)[0].lower()
        if field not in LSF_FIELDS:
            raise Usage(f"{field}: Illegal field name.", 255)
        fields.append(field)
    if not fields:
        raise Usage("No field specified for the -o option.", 255)
    return fields, delimiter


def bkill(args: list[str]) -> int:
    given, ids = parse_options(
        args, {"-J": True, "-u": True, "-q": True, "-s": True, "-r": False},
        lambda word: Usage(f"{word}: Illegal option.\nUsage: bkill [options] [jobId | \"jobId[index_list]\" ...]", 255),
        attached=False,
    )  # fmt: skip
    settings = dict(given)
    folder = state_dir("lsf")
    refreshed_jobs(folder)
    targets: list[tuple[str, dict, list[str]]] = []
    code = 0
    if "-J" in settings:
        for job in all_jobs(folder):
            if _name_matches(job["name"] or "", settings["-J"] or ""):
                targets.append((str(job["id"]), job, list(job["tasks"])))
    for word in ids:
        if word == "0":
            targets += [(str(job["id"]), job, list(job["tasks"])) for job in all_jobs(folder)]
            continue
        match = re.fullmatch(r"(\d+)(?:\[([\d,\-:]+)\])?", word)
        job = load(folder, int(match.group(1))) if match else None
        if job is None:
            print(f"Job <{word}>: No matching job found", file=sys.stderr)
            code = 255
            continue
        keys = list(job["tasks"])
        if match.group(2):
            keys = [str(index) for index in expand_range(match.group(2)) or []]
            keys = [key for key in keys if key in job["tasks"]]
        targets.append((word, job, keys))
    if not ids and "-J" not in settings:
        raise Usage("Usage: bkill [options] [jobId | \"jobId[index_list]\" ...]", 255)
    for word, job, keys in targets:
        live = [key for key in keys if job["tasks"][key]["state"] not in FINISHED]
        if not live:
            if ids:
                print(f"Job <{word}>: Job has already finished", file=sys.stderr)
                code = 255
            continue
        kill_tasks(folder, job["id"], live)
        print(f"Job <{word}> is being terminated")
    return code


# ------------------------------------------------------------------------------------- PBS

PBS_COMMON_SUBMIT = {
    "-N": True, "-o": True, "-e": True, "-j": True, "-l": True, "-q": True, "-A": True, "-V": False,
    "-v": True, "-W": True, "-r": True, "-S": True, "-m": True, "-M": True, "-k": True, "-h": False,
    "-a": True, "-c": True, "-p": True, "-u": True, "-z": False,
}  # fmt: skip
PBS_PRO_SUBMIT = {**PBS_COMMON_SUBMIT, "-J": True, "-P": True, "-f": False}
TORQUE_SUBMIT = {**PBS_COMMON_SUBMIT, "-t": True, "-d": True, "-D": True, "-w": True}
PBS_RESOURCES = {"select", "ncpus", "mem", "vmem", "pmem", "walltime", "place", "ngpus", "cput", "host", "software"}
TORQUE_RESOURCES = {"nodes", "ncpus", "mem", "vmem", "pmem", "walltime", "gpus", "cput", "host", "software", "procs"}
MEMORY = r"\d+(b|kb|mb|gb|tb|w|kw|mw|gw|tw)?"
PBS_STATE = {PENDING: "Q", RUNNING: "R", DONE: "F", FAILED: "F", KILLED: "F"}
PRO_SUBJOB_STATE = {PENDING: "Q", RUNNING: "R", DONE: "X", FAILED: "X", KILLED: "X"}
TORQUE_STATE = {PENDING: "Q", RUNNING: "R", DONE: "C", FAILED: "C", KILLED: "C"}


def flavor() -> str:
    value = os.environ.get("CREW_FAKE_PBS_FLAVOR", "pro")
    if value not in ("pro", "torque"):
        raise Usage(f"CREW_FAKE_PBS_FLAVOR must be pro or torque, not {value!r}", 2)
    return value


def pbs_usage(word: str) -> Usage:
    letter = word[1:2] or word
    return Usage(f"qsub: invalid option -- '{letter}'\nusage: qsub [-a date_time] [-A account_string] ... [script]", 2)


def qsub(args: list[str]) -> int:
    kind = flavor()
    spec = PBS_PRO_SUBMIT if kind == "pro" else TORQUE_SUBMIT
    given, words = parse_options(args, spec, pbs_usage, attached=True)
    if len(words) > 1:
        raise Usage("usage: qsub [-a date_time] [-A account_string] ... [script]", 2)
    if words:
        try:
            with open(words[0]) as handle:
                script = handle.read()
        except OSError:
            raise Usage("qsub: script file:: No such file or directory", 2) from None
        default_name = os.path.basename(words[0])
    else:
        script = sys.stdin.read()
        default_name = "STDIN"
    from_script, extra = parse_options(directives(script, "#PBS"), spec, pbs_usage, attached=True)
    if extra:
        raise Usage(f"qsub: directive error: {extra[0]}", 2)
    settings: dict[str, Any] = {}
    resources: dict[str, str] = {}
    variables: dict[str, str] = {}
    for option, value in from_script + given:
        if option == "-l":
            resources.update(pbs_resources(value or "", kind))
        elif option == "-v":
            for item in (value or "").split(","):
                key, _, text = item.partition("=")
                variables[key.strip()] = text if "=" in item else os.environ.get(key.strip(), "")
        else:
            settings[option] = value

    indices: list[int] | None = None
    if "-J" in settings:
        match = re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?(%\d+)?", settings["-J"] or "")
        if not match or int(match.group(2)) <= int(match.group(1)):
            raise Usage("qsub: illegal -J value", 2)
        indices = list(range(int(match.group(1)), int(match.group(2)) + 1, int(match.group(3) or 1)))
    if "-t" in settings:
        indices = expand_range(re.sub(r"%\d+$", "", settings["-t"] or ""))
        if indices is None:
            raise Usage("qsub: illegal -t value", 2)
    name = settings.get("-N") or default_name
    if not name or re.search(r"\s", name) or len(name) > 236:
        raise Usage("qsub: illegal -N value", 2)
    if settings.get("-j", "n") not in ("oe", "eo", "n"):
        raise Usage("qsub: illegal -j value", 2)
    known = queues("workq" if kind == "pro" else "batch")
    queue = settings.get("-q") or known[0]
    if queue not in known:
        raise Usage(
            "qsub: Unknown queue" if kind == "pro" else "qsub: submit error (Unknown queue MSG=requested queue not found)",
            170 if kind == "pro" else 1,
        )

    folder = state_dir("pbs")
    home = os.path.expanduser("~")
    workdir = os.path.abspath(settings["-d"]) if settings.get("-d") else home
    cpus = pbs_cpus(resources)
    with locked(folder):
        job_id = next_id(folder)
        path = store_script(folder, job_id, script)
        suffix = f"[].{HOST}" if indices is not None else f".{HOST}"
        keys = [str(index) for index in indices] if indices is not None else ["0"]
        base_env = {
            "HOME": home,
            "USER": USER,
            "LOGNAME": USER,
            "SHELL": "/bin/sh",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }
        if "-V" in settings:
            base_env.update(os.environ)
        for variable in ("HOME", "LANG", "LOGNAME", "PATH", "MAIL", "SHELL", "TZ"):
            if variable in os.environ:
                base_env[f"PBS_O_{variable}"] = os.environ[variable]
        base_env.update(
            PBS_O_WORKDIR=os.getcwd(), PBS_O_HOST=HOST, PBS_O_QUEUE=queue, PBS_QUEUE=queue,
            PBS_SERVER=HOST, PBS_O_SYSTEM="Linux", PBS_ENVIRONMENT="PBS_BATCH",
        )  # fmt: skip
        base_env.update(variables)
        job = {
            "id": job_id,
            "kind": kind,
            "name": name,
            "array": indices is not None,
            "range": settings.get("-J") or settings.get("-t"),
            "queue": queue,
            "account": settings.get("-A"),
            "resources": resources,
            "user": USER,
            "script": path,
            "workdir": workdir,
            "submit": time.time(),
            "settings": {key: value for key, value in settings.items()},
            "env": base_env,
            "task_env": {},
            "logs": {},
            "tasks": {},
        }
        for key in keys:
            full_id = f"{job_id}[{key}].{HOST}" if indices is not None else f"{job_id}.{HOST}"
            task_env = {"PBS_JOBID": full_id, "PBS_JOBNAME": name, "NCPUS": str(cpus), "OMP_NUM_THREADS": str(cpus)}
            if indices is not None and kind == "pro":
                task_env.update(PBS_ARRAY_INDEX=key, PBS_ARRAY_ID=f"{job_id}[].{HOST}")
            if indices is not None and kind == "torque":
                task_env.update(PBS_ARRAYID=key, PBS_JOBNAME=f"{name}-{key}")
            job["task_env"][key] = task_env
            job["logs"][key] = pbs_logs(job, key, settings)
            job["tasks"][key] = {"state": PENDING, "pid": None, "start": None, "end": None, "exit": None}
        spawn(folder, job)
        save(folder, job)
    print(f"{job_id}{suffix}")
    return 0


def pbs_resources(text: str, kind: str) -> dict[str, str]:
    """Check a ``-l`` list the way the server does; return its resources."""
    found = {}
    allowed = PBS_RESOURCES if kind == "pro" else TORQUE_RESOURCES
    for item in text.split(","):
        key, sign, value = item.strip().partition("=")
        if key not in allowed or not sign:
            if kind == "pro":
                raise Usage(f"qsub: Unknown resource Resource_List.{key}", 168)
            raise Usage(f"qsub: submit error (Unknown resource type  Resource_List.{key})", 1)
        bad = (
            (key in ("mem", "vmem", "pmem") and not re.fullmatch(MEMORY, value, re.IGNORECASE))
            or (key in ("walltime", "cput") and not re.fullmatch(r"(\d+:){0,2}\d+", value))
            or (key == "ncpus" and not re.fullmatch(r"\d+", value))
            or (key == "nodes" and not re.fullmatch(r"\d+(:ppn=\d+)?(:gpus=\d+)?", value))
            or (key == "select" and not pbs_select_ok(value))
        )
        if bad:
            raise Usage(f"qsub: Illegal attribute or resource value Resource_List.{key}", 188 if kind == "pro" else 1)
        found[key] = value
    return found


def pbs_select_ok(value: str) -> bool:
    for chunk in value.split("+"):
        parts = chunk.split(":")
        start = 1 if re.fullmatch(r"\d+", parts[0]) else 0
        for part in parts[start:]:
            key, sign, amount = part.partition("=")
            if not sign or not key or not amount:
                return False
            if key == "mem" and not re.fullmatch(MEMORY, amount, re.IGNORECASE):
                return False
            if key in ("ncpus", "ngpus", "mpiprocs", "ompthreads") and not amount.isdigit():
                return False
    return True


def pbs_cpus(resources: dict[str, str]) -> int:
    match = re.search(r"ncpus=(\d+)", resources.get("select", "")) or re.search(r"ppn=(\d+)", resources.get("nodes", ""))
    if match:
        return int(match.group(1))
    return int(resources.get("ncpus", "1"))


def pbs_logs(job: dict, key: str, settings: dict[str, Any]) -> tuple[str, str | None]:
    """Output and error files of one task: ``-o``/``-e`` (a folder gets the default name), ``-j``."""
    array = job["array"]

    def default(letter: str) -> str:
        if not array:
            return f"{job['name']}.{letter}{job['id']}"
        if job["kind"] == "pro":
            return f"{job['name']}.{letter}{job['id']}.{key}"
        return f"{job['name']}.{letter}{job['id']}-{key}"

    def resolve(option: str, letter: str) -> str:
        given = settings.get(option)
        if not given:
            return os.path.join(os.getcwd(), default(letter))
        given = given.split(":", 1)[1] if re.match(r"^[\w.-]+:/", given) else given
        given = os.path.join(os.getcwd(), given)
        if given.endswith("/") or os.path.isdir(given):
            return os.path.join(given, default(letter))
        return given.replace("^array_index^", key) if job["kind"] == "pro" else given

    out, err = resolve("-o", "o"), resolve("-e", "e")
    join = settings.get("-j", "n")
    if join == "oe":
        return out, None
    if join == "eo":
        return err, None
    return out, err


def pbs_id(word: str) -> tuple[int, str | None, bool] | None:
    """``12``, ``12.host``, ``12[]``, ``12[3].host`` -> (12, "3" or None, bracketed)."""
    match = re.fullmatch(r"(\d+)(\[(\d*)\])?(\.[\w.-]+)?", word)
    if not match:
        return None
    return int(match.group(1)), match.group(3) or None, bool(match.group(2))


def pbs_lookup(folder: str, word: str) -> tuple[dict | None, list[str]]:
    """The job and task keys a PBS job id names; (None, []) when unknown (an array needs its brackets)."""
    parsed = pbs_id(word)
    job = load(folder, parsed[0]) if parsed else None
    if job is None or job["array"] != parsed[2]:
        return None, []
    if parsed[1] is not None:
        return (job, [parsed[1]]) if parsed[1] in job["tasks"] else (None, [])
    return job, list(job["tasks"])


def unknown_job(kind: str, command: str, word: str) -> str:
    full = word if "." in word else f"{word}.{HOST}"
    return f"{command}: Unknown Job Id {full}" if kind == "pro" else f"{command}: Unknown Job Id Error {full}"


QSTAT_PRO = {
    "-f": False, "-F": True, "-x": False, "-t": False, "-J": False, "-u": True, "-w": False, "-a": False,
    "-n": False, "-s": False, "-H": False, "-1": False,
}  # fmt: skip
QSTAT_TORQUE = {
    "-f": False, "-t": False, "-u": True, "-a": False, "-n": False, "-1": False, "-e": False, "-r": False, "-i": False,
}  # fmt: skip


def qstat(args: list[str]) -> int:
    kind = flavor()
    given, ids = parse_options(
        args, QSTAT_PRO if kind == "pro" else QSTAT_TORQUE,
        lambda word: Usage(f"qstat: invalid option -- '{word[1:2]}'\nusage: qstat [-f] [-t] [-x] [job_identifier...]", 2),
        attached=True,
    )  # fmt: skip
    settings = dict(given)
    flags = set(settings)
    if "-F" in settings and settings["-F"] not in ("json", "dsv"):
        raise Usage("qstat: invalid output format, supported formats are json and dsv", 2)
    folder = state_dir("pbs")
    jobs = [job for job in refreshed_jobs(folder) if job["kind"] == kind]
    history = "-x" in flags or "-H" in flags or kind == "torque"  # TORQUE keeps completed jobs a while
    expand = "-t" in flags or "-J" in flags
    entries: list[tuple[str, dict, str | None]] = []  # (id, job, task key or None for an array parent)
    code = 0
    if ids:
        for word in ids:
            job, keys = pbs_lookup(folder, word)
            if job is None or job["kind"] != kind:
                print(unknown_job(kind, "qstat", word), file=sys.stderr)
                code = 153
                continue
            if not history and all(job["tasks"][key]["state"] in FINISHED for key in keys):
                print(f"qstat: {word} Job has finished, use -x or -H to obtain historical job information", file=sys.stderr)
                code = 35
                continue
            entries += pbs_entries(job, keys if pbs_id(word)[1] else None, expand)
    else:
        for job in jobs:
            finished = all(task["state"] in FINISHED for task in job["tasks"].values())
            if finished and not history:
                continue
            entries += pbs_entries(job, None, expand)
    if "-u" in settings and settings["-u"] != USER:
        entries = []
    if "-f" in flags and settings.get("-F") == "json":
        body = {"timestamp": int(time.time()), "pbs_version": "22.05.11", "pbs_server": HOST}
        if entries:
            body["Jobs"] = {full: pbs_attributes(job, key) for full, job, key in entries}
        print(json.dumps(body, indent=4))
    elif "-f" in flags:
        for full, job, key in entries:
            print(f"Job Id: {full}")
            for name, value in pbs_attributes(job, key).items():
                if isinstance(value, dict):
                    for inner, item in value.items():
                        print(f"    {name}.{inner} = {item}")
                else:
                    print(f"    {name} = {value}")
            print()
    elif entries:
        print(f"{'Job id':<17} {'Name':<16} {'User':<16}  {'Time Use':>8} S Queue")
        print(f"{'-' * 16}  {'-' * 16} {'-' * 16}  {'-' * 8} - {'-' * 5}")
        for full, job, key in entries:
            state = pbs_attributes(job, key)["job_state"]
            print(f"{full[:16]:<17} {job['name'][:16]:<16} {job['user'][:16]:<16}  {0:>8} {state} {job['queue']}")
    return code


def pbs_entries(job: dict, keys: list[str] | None, expand: bool) -> list[tuple[str, dict, str | None]]:
    """Rows for one job: a plain job, an array parent, and (expanded or asked for) its subjobs."""
    host = HOST
    if not job["array"]:
        return [(f"{job['id']}.{host}", job, "0")]
    if keys is not None:
        return [(f"{job['id']}[{key}].{host}", job, key) for key in keys]
    rows: list[tuple[str, dict, str | None]] = [(f"{job['id']}[].{host}", job, None)]
    if expand:
        rows += [(f"{job['id']}[{key}].{host}", job, key) for key in job["tasks"]]
    return rows


def pbs_attributes(job: dict, key: str | None) -> dict[str, Any]:
    """The job's attributes as ``qstat -f`` shows them (for an array parent when ``key`` is None)."""
    kind = job["kind"]
    tasks = job["tasks"]
    if key is None:
        states = [task["state"] for task in tasks.values()]
        if all(state in FINISHED for state in states):
            state = "F" if kind == "pro" else "C"
        elif any(state != PENDING for state in states):
            state = "B" if kind == "pro" else "R"
        else:
            state = "Q"
        task = None
    else:
        task = tasks[key]
        if kind == "torque":
            state = TORQUE_STATE[task["state"]]
        else:
            state = (PRO_SUBJOB_STATE if job["array"] else PBS_STATE)[task["state"]]
    owner = f"{job['user']}@{HOST}"
    out, err = job["logs"][key or next(iter(tasks))]
    name = job["name"] if not (kind == "torque" and job["array"] and key) else f"{job['name']}-{key}"
    attributes: dict[str, Any] = {
        "Job_Name": name,
        "Job_Owner": owner,
        "job_state": state,
        "queue": job["queue"],
        "server": HOST,
        "ctime": pbs_time(job["submit"]),
        "qtime": pbs_time(job["submit"]),
        "Output_Path": f"{HOST}:{out}",
        "Error_Path": f"{HOST}:{err or out}",
        "Join_Path": job["settings"].get("-j") or "n",
        "Resource_List": {"ncpus": pbs_cpus(job["resources"]), "nodect": 1, **job["resources"]},
    }
    if job.get("account"):
        attributes["Account_Name"] = job["account"]
    if task is not None:
        if task["start"]:
            attributes["stime" if kind == "pro" else "start_time"] = pbs_time(task["start"])
        if task["state"] == RUNNING or (task["state"] in FINISHED and task["start"]):
            attributes["exec_host"] = f"{HOST}/0"
            attributes["exec_vnode"] = f"({HOST}:ncpus={pbs_cpus(job['resources'])})"
        if task["state"] == PENDING:
            attributes["comment"] = (
                "Not Running: Insufficient amount of resource: ncpus"
                if slots(state_dir("pbs")) != float("inf")
                else "Not Running"
            )
        if task["state"] in FINISHED:
            exit_status = task["exit"] if task["exit"] is not None else (-3 if task["state"] == KILLED else 1)
            attributes["Exit_status" if kind == "pro" else "exit_status"] = exit_status
            if task["end"]:
                attributes["obittime" if kind == "pro" else "comp_time"] = pbs_time(task["end"])
        if job["array"]:
            if kind == "pro":
                attributes["array_id"] = f"{job['id']}[].{HOST}"
                attributes["array_index"] = int(key)
            else:
                attributes["job_array_id"] = int(key)
    elif job["array"]:
        counts = {"Queued": 0, "Running": 0, "Exiting": 0, "Expired": 0}
        for item in tasks.values():
            counts["Queued" if item["state"] == PENDING else "Running" if item["state"] == RUNNING else "Expired"] += 1
        if kind == "pro":
            attributes.update(
                array=True,
                array_indices_submitted=job["range"],
                array_state_count=" ".join(f"{label}:{count}" for label, count in counts.items()),
            )
        else:
            attributes["job_array_request"] = job["range"]
    return attributes


def qdel(args: list[str]) -> int:
    kind = flavor()
    spec = {"-W": True, "-x": False} if kind == "pro" else {"-W": True, "-t": True, "-p": False, "-m": True, "-a": False}
    _given, ids = parse_options(
        args, spec, attached=True,
        unknown=lambda word: Usage(f"qdel: invalid option -- '{word[1:2]}'\nusage: qdel [-W force] job_identifier...", 2),
    )  # fmt: skip
    if not ids:
        raise Usage("usage: qdel [-W force] job_identifier...", 2)
    folder = state_dir("pbs")
    refreshed_jobs(folder)
    code = 0
    for word in ids:
        job, keys = pbs_lookup(folder, word)
        if job is None or job["kind"] != kind:
            print(unknown_job(kind, "qdel", word), file=sys.stderr)
            code = 153
            continue
        live = [key for key in keys if job["tasks"][key]["state"] not in FINISHED]
        if not live:
            full = word if "." in word else f"{word}.{HOST}"
            print(f"qdel: Job has finished {full}", file=sys.stderr)
            code = 35
            continue
        kill_tasks(folder, job["id"], live)
    return code


# ------------------------------------------------------------------------------------- entry point

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "bsub": bsub, "bjobs": bjobs, "bkill": bkill, "qsub": qsub, "qstat": qstat, "qdel": qdel,
}  # fmt: skip


def main(command: str, args: list[str]) -> int:
    """Run one stand-in command; the exit code of the real one."""
    try:
        return COMMANDS[command](args)
    except Usage as problem:
        print(str(problem), file=sys.stderr)
        return problem.code


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--end-group":
        sys.exit(end_group(int(sys.argv[2])))
    if len(sys.argv) == 5 and sys.argv[1] == "--run-task":
        sys.exit(run_task(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    if len(sys.argv) >= 2 and sys.argv[1] in COMMANDS:
        sys.exit(main(sys.argv[1], sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} {{{','.join(COMMANDS)}}} [arguments]")
