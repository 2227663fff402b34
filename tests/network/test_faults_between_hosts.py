"""Controller on host a, workers on host b (network namespaces, a veth pair, TLS automatic), and
faults on the link while a few thousand short tasks run: packet loss of 15-20 % for seconds
(nftables), the link down for 1.5 s, the link down for longer than seconds_timeout, and workers
SIGKILLed, all mixed.

Every task must resolve exactly once, as a success with the right value; no result may come from
a worker whose execution of the task was superseded by a rerun (each execution appends
``index pid`` to a log; the result must carry the pid of the task's last execution). After a
partition longer than seconds_timeout, every worker of host b exits and the controller lets
every connected worker go, each within its check bound of the partition's start.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from crew.testing import pids_alive

CONTROLLER = str(Path(__file__).with_name("_remote_controller.py"))
TIMEOUT = 4.0  # seconds_timeout of the controller and its workers
RATE = 60  # tasks pushed per second
# The controller checks for silent workers every TIMEOUT / 3, a worker for a silent controller
# every TIMEOUT / 4: a side notices a partition within TIMEOUT plus its check period (plus 0.5 s
# of polling and process exit here).
CONTROLLER_BOUND = TIMEOUT + TIMEOUT / 3 + 0.5
WORKER_BOUND = TIMEOUT + TIMEOUT / 4 + 0.5


class Faults:
    """The fault schedule, run from the test process on host b's side of the link."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.counts: collections.Counter[str] = collections.Counter()
        self.partitions: list[dict] = []

    def calm(self, seconds: float) -> None:
        time.sleep(seconds)  # the schedule's pace: tasks keep flowing meanwhile

    def lossy(self, percent: int, seconds: float, kill_midway: bool = False) -> None:
        self.hosts.loss(percent)
        assert f"mod 100 < {percent} drop" in self.hosts.loss_rules()
        self.counts[f"loss {percent} % for {seconds:g} s"] += 1
        try:
            self.calm(seconds / 2)
            if kill_midway:
                self.kill(1)
            self.calm(seconds / 2)
        finally:
            self.hosts.no_loss()

    def blip(self, seconds: float) -> None:
        self.hosts.link(up=False)
        self.counts[f"link down {seconds:g} s"] += 1
        try:
            self.calm(seconds)
        finally:
            self.hosts.link(up=True)

    def kill(self, n: int) -> None:
        for pid in random.sample(self.hosts.pids(self.hosts.b), min(n, len(self.hosts.pids(self.hosts.b)))):
            try:
                os.kill(pid, signal.SIGKILL)
                self.counts["worker SIGKILLed"] += 1
            except ProcessLookupError:
                pass

    def partition(self) -> None:
        """The link down for longer than seconds_timeout; when each of b's processes exited."""
        before = self.hosts.pids(self.hosts.b)
        self.hosts.link(up=False)
        start = time.time()
        self.counts[f"link down {2 * TIMEOUT:g} s (> seconds_timeout)"] += 1
        exits: dict[int, float] = {}
        try:
            while time.time() < start + 2 * TIMEOUT:
                for pid in set(before) - set(exits) - set(pids_alive(before)):
                    exits[pid] = time.time()
                time.sleep(0.02)
        finally:
            self.hosts.link(up=True)
        self.partitions.append({"start": start, "workers": before, "exits": exits})

    def run(self) -> None:
        for _ in range(2):
            self.calm(2)
            self.lossy(15, 4)
            self.calm(2)
            self.blip(1.5)
            self.calm(2)
            self.kill(2)
            self.calm(2)
            self.lossy(20, 3, kill_midway=True)
            self.calm(2)
            self.partition()
            self.calm(3)


def start_controller(hosts, tmp_path) -> subprocess.Popen:
    config = {"address": hosts.address_a, "namespace": hosts.b, "seconds_timeout": TIMEOUT, "workers": 4,
              "rate": RATE, "log": str(tmp_path / "executions.log")}
    stderr = open(tmp_path / "controller.err", "w")
    try:
        return subprocess.Popen(
            ["ip", "netns", "exec", hosts.a, sys.executable, CONTROLLER, json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True,
        )
    finally:
        stderr.close()


def last_executions(log: Path) -> tuple[dict[int, int], int]:
    """For each task index, the pid of its last execution; and how many executions in all."""
    last: dict[int, int] = {}
    lines = log.read_text().splitlines()
    for line in lines:
        index, pid = line.split()
        last[int(index)] = int(pid)
    return last, len(lines)


def check_results(report: dict, tmp_path: Path) -> dict:
    """Exactly once, right values, no superseded result; returns the figures."""
    names = collections.Counter(name for name, _, _ in report["results"])
    expected = {f"t{index}" for index in range(report["pushed"])}
    lost = expected - set(names)
    duplicated = [name for name, count in names.items() if count > 1]
    wrong = [row for row in report["results"] if row[1] != "success" or row[2][0] != int(row[0][1:]) ** 2]
    last, executions = last_executions(tmp_path / "executions.log")
    late = [row for row in report["results"] if row[1] == "success" and row[2][1] != last.get(int(row[0][1:]))]
    assert report["unresolved"] == 0
    assert not lost and not duplicated and set(names) == expected, (sorted(lost)[:10], duplicated[:10])
    assert not wrong, wrong[:10]
    assert not late, late[:10]
    return {"tasks": report["pushed"], "executions": executions, "lost": len(lost), "duplicated": len(duplicated),
            "wrong": len(wrong), "late": len(late), "launch_errors": report["launch_errors"]}


def check_partitions(faults: Faults, workers: dict[str, list]) -> list[dict]:
    """Both sides noticed each long partition within their bound; returns the measured delays."""
    measured = []
    for partition in faults.partitions:
        start = partition["start"]
        assert partition["workers"], "no worker on host b when the partition began"
        worker_delays = [partition["exits"].get(pid, float("inf")) - start for pid in partition["workers"]]
        assert max(worker_delays) <= WORKER_BOUND, worker_delays
        connected = [times for pid, times in workers.items()
                     if int(pid) in partition["workers"] and times[0] < start and (times[1] is None or times[1] > start)]
        assert connected, "no worker was connected when the partition began"
        controller_delays = [(times[1] or float("inf")) - start for times in connected]
        assert max(controller_delays) <= CONTROLLER_BOUND, controller_delays
        measured.append({"worker_exit_s": [round(d, 2) for d in sorted(worker_delays)],
                         "controller_drop_s": [round(d, 2) for d in sorted(controller_delays)]})
    return measured


def test_every_task_resolves_once_through_faults_between_hosts(hosts, tmp_path):
    controller = start_controller(hosts, tmp_path)
    try:
        ready = controller.stdout.readline()
        assert ready and json.loads(ready)["ready"] == ["success"], (tmp_path / "controller.err").read_text()[-3000:]
        assert json.loads(ready)["url"].startswith(f"tls+tcp://{hosts.address_a}:")
        faults = Faults(hosts)
        faults.run()
        out, _ = controller.communicate("stop\n", timeout=150)
        assert controller.returncode == 0, (tmp_path / "controller.err").read_text()[-3000:]
    finally:
        if controller.poll() is None:
            os.kill(controller.pid, signal.SIGKILL)
            controller.wait(timeout=10)
    report = json.loads(out.splitlines()[-1])
    figures = check_results(report, tmp_path)
    figures["faults"] = dict(faults.counts)
    figures["partitions"] = check_partitions(faults, report["workers"])
    print(json.dumps(figures, indent=1))  # the figures docs/reliability.md quotes (pytest -s shows them)
    assert faults.counts["worker SIGKILLed"] >= 2
    assert figures["executions"] > figures["tasks"]  # some tasks did run again after the faults
