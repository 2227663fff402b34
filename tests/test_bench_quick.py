"""The benchmark's quick mode runs end to end and writes a well-formed result (no timing asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "bench" / "run.py"
PEERS = ["crew-local", "crew-local-nng", "ppe", "loky", "dask", "ray", "parsl"]
ALWAYS = ["crew-local", "crew-local-nng", "ppe"]  # need nothing beyond crew and the standard library


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    folder = tmp_path_factory.mktemp("bench")
    output = folder / "quick.json"
    process = subprocess.run(
        [sys.executable, str(RUNNER), "--quick", "--output", str(output), "--plot", str(folder / "quick.png")],
        check=False, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return json.loads(output.read_text()), process.stdout, folder


def test_every_peer_has_a_row(quick):
    result, _, _ = quick
    assert set(result["peers"]) == set(PEERS)
    for name, row in result["peers"].items():
        assert row["status"] in ("ok", "skipped"), (name, row.get("note"))
        if row["status"] == "skipped":
            assert "not installed" in row["note"]
    for name in ALWAYS:
        assert result["peers"][name]["status"] == "ok"


def test_measured_rows_are_complete(quick):
    result, _, _ = quick
    config = result["config"]
    for name, row in result["peers"].items():
        if row["status"] != "ok":
            continue
        assert _positive(row["start_seconds"]), name
        assert set(row["throughput"]) | set(row.get("skipped", {})) == {str(n) for n in config["counts"]}, name
        for entry in row["throughput"].values():
            assert _positive(entry["tasks_per_second"]) and entry["tasks"] in config["counts"]
        assert row["latency"]["n"] == config["latency_tasks"]
        assert _positive(row["latency"]["p50"]) and row["latency"]["p99"] >= row["latency"]["p50"]
        assert set(row["payload"]) == {str(size) for size in config["payload_sizes"]}, name
        assert all(_positive(entry["megabytes_per_second"]) for entry in row["payload"].values())
    crew = result["peers"]["crew-local"]
    assert _positive(crew["by_value"]["tasks_per_second"])
    assert set(crew["map"]) == {str(n) for n in config["counts"]}
    assert set(crew["executor_map"]) == {str(n) for n in config["counts"]}
    assert all(entry["chunksize"] >= 1 for entry in crew["executor_map"].values())
    assert _positive(crew["executor_latency"]["p50"])
    ppe = result["peers"]["ppe"]
    assert "by_value" not in ppe
    for row in (crew, ppe):  # a function defined in __main__: both ship it (crew by value, a forked pool by reference)
        assert _positive(row["main"]["tasks_per_second"])
    assert set(ppe["map"]) == {str(n) for n in config["counts"]}
    assert all(entry["chunksize"] >= 1 for entry in ppe["map"].values())
    assert _positive(ppe["start_spawn_seconds"])


def test_floors_and_scale(quick):
    result, _, _ = quick
    floors = result["floors"]
    assert floors["status"] == "ok", floors.get("note")
    for key in ("pushpull_by_reference", "pushpull_by_value"):
        assert _positive(floors[key]["tasks_per_second"])
    for key in ("reqrep", "tcp_echo"):
        assert _positive(floors[key]["p50"])
    assert _positive(floors["fresh_workers"]["seconds"])
    scale = result["scale"]
    assert {"push", "push_main", "traced", "copies", "sim_baseline", "sim"} <= set(scale)
    assert all(entry["status"] == "ok" for entry in scale.values()), scale
    assert scale["push"]["tasks"] == result["config"]["push_tasks"] and _positive(scale["push"]["seconds_per_push"])
    assert _positive(scale["push_main"]["seconds_per_push_main"]) and _positive(scale["push_main"]["seconds_per_push_reference"])
    for name in ("crew-local", "ppe"):
        assert set(scale["copies"][name]) == {str(size) for size in result["config"]["copy_sizes"]}
        assert all(_positive(entry["worker"]) for entry in scale["copies"][name].values())
    assert scale["sim"]["workers"] == result["config"]["sim_workers"]
    assert scale["sim"]["workers_used"] >= 1


def test_targets_and_report(quick):
    result, stdout, folder = quick
    assert len(result["targets"]) == 11 + sum(size >= 1 << 20 for size in result["config"]["payload_sizes"])
    for target in result["targets"]:
        assert target["met"] in (True, False) and isinstance(target["value"], float)
    assert result["meta"]["mode"] == "quick"
    for label in ("crew-local", "ProcessPoolExecutor", "Round trip", "Transport floors", "Payload copies",
                  "The controller itself"):
        assert label in stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (folder / "quick.png").stat().st_size > 0


@pytest.mark.parametrize("transport", ["auto", "nng"])
def test_the_round_trip_trace_times_every_step_in_both_processes(transport):
    """bench/trace.py still finds the functions it wraps: each step of a round trip shows up."""
    process = subprocess.run([sys.executable, str(ROOT / "bench" / "trace.py"), "--round-trips", "60",
                              "--transport", transport],
                             check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in process.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| step")}
    for step in ("controller: push returns", "controller: seal ends", "worker: open ends", "worker: decode ends",
                 "worker: run the task begins", "worker: send begins", "controller: receive ends",
                 "controller: publish ends", "controller: the caller wakes"):
        assert step in rows, (step, process.stdout)
        assert float(rows[step]) > 0
    assert float(rows["controller: the caller wakes"]) > float(rows["worker: run the task begins"])
