"""crew's benchmark: crew-local against its Python peers, side by side in one run.

Usage::

    python bench/run.py                  # the full run (about 10 minutes on 2 cores)
    python bench/run.py --quick          # a few seconds; proves the benchmark works, asserts no timing
    python bench/run.py --peers crew-local,ppe --reps 1

Each peer (and each floor) is measured in a fresh child process, peers taking turns, ``--reps``
times; the report keeps each peer's best run. It writes a JSON result (default:
``bench/results/bench-<time>.json``), prints markdown tables, and draws a plot when matplotlib is
installed. Only ratios measured within one run are meaningful: absolute figures drift with the
machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from common import HERE, environment, use_bench_path

FULL: dict[str, Any] = {
    "counts": [1000, 10000, 100000],
    "warmup": 200,
    "latency_tasks": 1000,
    "by_value_tasks": 10000,
    "payload_sizes": [1000, 10000, 100000, 1000000, 10000000],
    "payload_bytes": 100_000_000,
    "payload_min_tasks": 10,
    "payload_max_tasks": 2000,
    "budget_seconds": 120,
    "floor_tasks": 10000,
    "push_tasks": 1_000_000,
    "traced_tasks": 100_000,
    "sim_workers": 1000,
    "sim_per_process": 250,
    "sim_tasks": 50000,
    "reps": 3,
    "child_seconds": 900,
}

QUICK: dict[str, Any] = {
    "counts": [100, 400],
    "warmup": 20,
    "latency_tasks": 30,
    "by_value_tasks": 200,
    "payload_sizes": [1000, 100000],
    "payload_bytes": 1_000_000,
    "payload_min_tasks": 5,
    "payload_max_tasks": 20,
    "budget_seconds": 10,
    "floor_tasks": 500,
    "push_tasks": 20000,
    "traced_tasks": 5000,
    "sim_workers": 20,
    "sim_per_process": 10,
    "sim_tasks": 2000,
    "reps": 1,
    "child_seconds": 180,
}

PEERS = ["crew-local", "ppe", "loky", "dask", "ray", "parsl"]


# ---------------------------------------------------------------------------- child processes
def _child(kind: str, config: dict) -> dict:
    """Run one measurement in this (child) process; return ``{"status": ..., ...}``."""
    use_bench_path()
    if kind.startswith("peer:"):
        import peers

        peer = peers.import_peer(kind.split(":", 1)[1])
        try:
            peer.check()
        except peers.Skip as why:
            return {"status": "skipped", "note": str(why), "name": peer.name, "label": peer.label}
        row = peers.measure(peer, config)
        row["status"] = "ok"
        return row
    if kind == "floors":
        import floors

        return {"status": "ok", **floors.measure(config)}
    import scale

    if kind == "push":
        return {"status": "ok", **scale.push(config["push_tasks"])}
    if kind == "traced":
        return {"status": "ok", **scale.traced(config["traced_tasks"])}
    if kind == "sim_baseline":
        return {"status": "ok", **scale.simulated(2, config["sim_tasks"], config["sim_per_process"])}
    if kind == "sim":
        return {"status": "ok", **scale.simulated(config["sim_workers"], config["sim_tasks"], config["sim_per_process"])}
    raise SystemExit(f"unknown child {kind!r}")


def _spawn_child(kind: str, config: dict) -> dict:
    """Run ``kind`` in a fresh Python process; an error there becomes ``status: "error"``."""
    with tempfile.TemporaryDirectory(prefix="crew-bench-") as folder:
        output = os.path.join(folder, "out.json")
        log = os.path.join(folder, "log.txt")
        command = [sys.executable, str(HERE / "run.py"), "--child", kind, "--config", json.dumps(config),
                   "--child-output", output]
        with open(log, "wb") as handle:
            process = subprocess.Popen(command, env=environment(), stdin=subprocess.DEVNULL, stdout=handle,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = process.wait(timeout=config["child_seconds"])
            except subprocess.TimeoutExpired:
                _end_group(process)
                return {"status": "error", "note": f"did not finish within {config['child_seconds']} s"}
        _end_group(process)  # whatever the child left behind in its session
        if code == 0 and os.path.exists(output):
            with open(output) as handle:
                return json.load(handle)
        with open(log, errors="replace") as handle:
            tail = handle.read()[-2000:]
        return {"status": "error", "note": f"exit code {code}: {tail.strip()}"}


def _end_group(process: subprocess.Popen) -> None:
    """End what is left of the child's process group (the group we created for it, by its id)."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


# ---------------------------------------------------------------------------- best of reps
def _best_entry(entries: list[dict | None], key: str, better: Callable[[float, float], bool]) -> dict | None:
    best = None
    for entry in entries:
        if entry and (best is None or better(entry[key], best[key])):
            best = entry
    return best


def _higher(a: float, b: float) -> bool:
    return a > b


def _lower(a: float, b: float) -> bool:
    return a < b


def _merge_peer(runs: list[dict]) -> dict:
    ok = [run for run in runs if run["status"] == "ok"]
    if not ok:
        return dict(runs[0])
    merged = dict(ok[0])
    merged["runs"] = len(ok)
    merged["errors"] = [run.get("note") for run in runs if run["status"] != "ok"]
    merged["start_seconds"] = min(run["start_seconds"] for run in ok)
    merged["import_seconds"] = min(run.get("import_seconds", 0.0) for run in ok)
    for field in ("throughput", "payload", "map"):
        keys = {key for run in ok for key in run.get(field, {})}
        if keys:
            merged[field] = {key: _best_entry([run.get(field, {}).get(key) for run in ok], "tasks_per_second", _higher)
                             for key in keys}
    if any("by_value" in run for run in ok):
        merged["by_value"] = _best_entry([run.get("by_value") for run in ok], "tasks_per_second", _higher)
    merged["latency"] = {"n": ok[0]["latency"]["n"], "p50": min(run["latency"]["p50"] for run in ok),
                         "p99": min(run["latency"]["p99"] for run in ok)}
    if any("start_spawn_seconds" in run for run in ok):
        merged["start_spawn_seconds"] = min(run["start_spawn_seconds"] for run in ok if "start_spawn_seconds" in run)
    merged["skipped"] = {key: value for run in ok for key, value in run.get("skipped", {}).items()
                         if not any(key in other.get("throughput", {}) for other in ok)}
    return merged


def _merge_floors(runs: list[dict]) -> dict:
    ok = [run for run in runs if run["status"] == "ok"]
    if not ok:
        return dict(runs[0])
    merged = {"status": "ok", "runs": len(ok)}
    for key in ("pushpull_by_reference", "pushpull_by_value"):
        merged[key] = _best_entry([run[key] for run in ok], "tasks_per_second", _higher)
    for key in ("reqrep", "tcp_echo"):
        merged[key] = {"n": ok[0][key]["n"], "p50": min(run[key]["p50"] for run in ok),
                       "p99": min(run[key]["p99"] for run in ok)}
    merged["fresh_workers"] = _best_entry([run["fresh_workers"] for run in ok], "seconds", _lower)
    return merged


# ---------------------------------------------------------------------------- targets
def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(result: dict) -> list[dict]:
    """The issue's targets, as ratios measured in this run."""
    config = result["config"]
    tasks = 10000 if 10000 in config["counts"] else config["counts"][-1]
    crew = result["peers"].get("crew-local", {})
    ppe = result["peers"].get("ppe", {})
    floors = result.get("floors", {})
    push = result.get("scale", {}).get("push", {})
    ok = crew.get("status") == "ok"
    ppe_ok = ppe.get("status") == "ok"
    floors_ok = floors.get("status") == "ok"

    def tps(row: dict) -> float | None:
        entry = row.get("throughput", {}).get(str(tasks))
        return entry["tasks_per_second"] if entry else None

    rows = [
        (f"crew-local / ProcessPoolExecutor submit loop, throughput at {tasks:,} tasks",
         _ratio(tps(crew), tps(ppe)) if ok and ppe_ok else None, ">=", 5, "x"),
        (f"crew-local / ProcessPoolExecutor map at best chunksize, throughput at {tasks:,} tasks",
         _ratio(tps(crew), ppe.get("map", {}).get(str(tasks), {}).get("tasks_per_second")) if ok and ppe_ok else None,
         ">=", 1, "x"),
        ("crew-local round trip p50 / pynng Req/Rep + cloudpickle floor p50",
         _ratio(crew["latency"]["p50"], floors["reqrep"]["p50"]) if ok and floors_ok else None, "<=", 1.3, "x"),
        ("crew-local start to first result / two fresh workers floor",
         _ratio(crew["start_seconds"], floors["fresh_workers"]["seconds"]) if ok and floors_ok else None, "<=", 1.5, "x"),
        (f"push: µs per task ({push.get('tasks', 0):,} tasks)",
         push["seconds_per_push"] * 1e6 if push.get("status") == "ok" else None, "<=", 10, " µs"),
        (f"controller memory per queued task ({push.get('tasks', 0):,} tasks, RSS)",
         push["rss_bytes_per_task"] / 1024 if push.get("status") == "ok" else None, "<=", 2, " KB"),
    ]
    out = []
    for name, value, comparison, limit, unit in rows:
        met = None if value is None else (value >= limit if comparison == ">=" else value <= limit)
        out.append({"name": name, "value": value, "comparison": comparison, "limit": limit, "unit": unit, "met": met})
    return out


# ---------------------------------------------------------------------------- the run
def _meta(mode: str, config: dict) -> dict:
    versions = {}
    from importlib import metadata

    for package in ("crew-core", "crew-local", "pynng", "cloudpickle", "loky", "dask", "distributed", "ray", "parsl"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = None
    try:
        commit = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], check=False, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "mode": mode, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "reps": config["reps"],
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "load_before": [round(x, 2) for x in os.getloadavg()], "versions": versions, "commit": commit,
    }


def run(config: dict, mode: str, names: list[str], say: Callable[[str], None]) -> dict:
    result: dict[str, Any] = {"meta": _meta(mode, config), "config": config, "peers": {}, "scale": {}}
    peer_runs: dict[str, list[dict]] = {name: [] for name in names}
    floor_runs: list[dict] = []
    for rep in range(config["reps"]):
        for name in names:
            if peer_runs[name] and peer_runs[name][0]["status"] == "skipped":
                continue
            begin = time.monotonic()
            outcome = _spawn_child(f"peer:{name}", config)
            peer_runs[name].append(outcome)
            say(f"[{rep + 1}/{config['reps']}] {name}: {outcome['status']} ({time.monotonic() - begin:.1f} s)"
                + (f": {outcome.get('note', '')[:300]}" if outcome["status"] != "ok" else ""))
        begin = time.monotonic()
        floor_runs.append(_spawn_child("floors", config))
        say(f"[{rep + 1}/{config['reps']}] floors: {floor_runs[-1]['status']} ({time.monotonic() - begin:.1f} s)")
    result["peers"] = {name: _merge_peer(runs) for name, runs in peer_runs.items()}
    result["floors"] = _merge_floors(floor_runs)
    for kind in ("push", "traced", "sim_baseline", "sim"):
        begin = time.monotonic()
        result["scale"][kind] = _spawn_child(kind, config)
        say(f"scale {kind}: {result['scale'][kind]['status']} ({time.monotonic() - begin:.1f} s)")
    result["targets"] = targets(result)
    result["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: finishes in seconds, for CI")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    parser.add_argument("--reps", type=int, default=None, help="runs per peer (the best is kept)")
    parser.add_argument("--output", default=None, help="where to write the JSON result")
    parser.add_argument("--plot", default=None, help="where to draw the plot (default: next to the JSON)")
    parser.add_argument("--markdown", default=None, help="also write the markdown report to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        try:
            outcome = _child(args.child, json.loads(args.config))
        except Exception:  # any failure is reported to the parent as this child's error
            traceback.print_exc()
            sys.stdout.flush()
            os._exit(1)
        with open(args.child_output, "w") as handle:
            json.dump(outcome, handle)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip the frameworks' exit hooks: everything was closed already

    mode = "quick" if args.quick else "full"
    config = dict(QUICK if args.quick else FULL)
    if args.reps is not None:
        config["reps"] = max(1, args.reps)
    names = [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {PEERS}")

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(config, mode, names, say)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = Path(args.output) if args.output else HERE / "results" / f"bench-{mode}-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    plot_path = Path(args.plot) if args.plot else output.with_suffix(".png")
    if report.plot(result, str(plot_path)):
        result["plot"] = str(plot_path)
    with open(output, "w") as handle:
        json.dump(result, handle, indent=1)
    text = report.markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    say(f"wrote {output}" + (f" and {plot_path}" if "plot" in result else " (no plot: matplotlib is not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
