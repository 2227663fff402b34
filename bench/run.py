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

MIB = 1 << 20

FULL: dict[str, Any] = {
    "counts": [1000, 10000, 100000],
    "warmup": 200,
    "latency_tasks": 1000,
    "by_value_tasks": 10000,
    "payload_sizes": [1000, 10000, 100000, MIB, 10 * MIB],
    "payload_bytes": 200 * MIB,
    "payload_min_tasks": 10,
    "payload_max_tasks": 2000,
    "copy_sizes": [MIB, 10 * MIB],
    "budget_seconds": 120,
    "floor_tasks": 10000,
    "push_tasks": 1_000_000,
    "push_main_tasks": 20000,
    "push_main_rounds": 5,
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
    "payload_sizes": [1000, MIB, 10 * MIB],
    "payload_bytes": 2 * MIB,
    "payload_min_tasks": 2,
    "payload_max_tasks": 20,
    "copy_sizes": [MIB],
    "budget_seconds": 10,
    "floor_tasks": 500,
    "push_tasks": 20000,
    "push_main_tasks": 2000,
    "push_main_rounds": 2,
    "traced_tasks": 5000,
    "sim_workers": 20,
    "sim_per_process": 10,
    "sim_tasks": 2000,
    "reps": 1,
    "child_seconds": 180,
}

PEERS = ["crew-local", "crew-local-nng", "ppe", "loky", "dask", "ray", "parsl"]


# ---------------------------------------------------------------------------- child processes
def inc_in_main(x: int) -> int:
    """``x + 1`` defined in the script that runs (in a child, this file is ``__main__``), as
    scripts and notebooks define their work: cloudpickle ships it by value."""
    return x + 1


def _main_function() -> Callable[[int], int]:
    function = sys.modules["__main__"].__dict__.get("inc_in_main")
    if function is None or function.__module__ != "__main__":
        raise RuntimeError("bench/run.py must run as a script for the __main__ cases")
    return function


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
        row = peers.measure(peer, config, main_function=_main_function())
        row["status"] = "ok"
        return row
    if kind == "floors":
        import floors

        return {"status": "ok", **floors.measure(config)}
    if kind == "copies":
        import copies

        return {"status": "ok", **copies.measure(config["copy_sizes"])}
    import scale

    if kind == "push":
        return {"status": "ok", **scale.push(config["push_tasks"])}
    if kind == "push_main":
        return {"status": "ok", **scale.push_main(config["push_main_tasks"], config["push_main_rounds"],
                                                  _main_function())}
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
    for field in ("throughput", "payload", "map", "executor_map"):
        keys = {key for run in ok for key in run.get(field, {})}
        if keys:
            merged[field] = {key: _best_entry([run.get(field, {}).get(key) for run in ok], "tasks_per_second", _higher)
                             for key in keys}
    for field in ("by_value", "main"):
        if any(field in run for run in ok):
            merged[field] = _best_entry([run.get(field) for run in ok], "tasks_per_second", _higher)
    for field in ("latency", "executor_latency"):
        if any(field in run for run in ok):
            merged[field] = _best_latency([run[field] for run in ok if field in run])
    if any("start_spawn_seconds" in run for run in ok):
        merged["start_spawn_seconds"] = min(run["start_spawn_seconds"] for run in ok if "start_spawn_seconds" in run)
    merged["skipped"] = {key: value for run in ok for key, value in run.get("skipped", {}).items()
                         if not any(key in other.get("throughput", {}) for other in ok)}
    return merged


def _best_latency(entries: list[dict]) -> dict:
    """The lowest p50 and p99 over runs; ``p50s`` keeps every run's p50 (their median is reported too)."""
    p50s = sorted(entry["p50"] for entry in entries)
    return {"n": entries[0]["n"], "p50": p50s[0], "p99": min(entry["p99"] for entry in entries), "p50s": p50s}


def _merge_floors(runs: list[dict]) -> dict:
    ok = [run for run in runs if run["status"] == "ok"]
    if not ok:
        return dict(runs[0])
    merged = {"status": "ok", "runs": len(ok)}
    for key in ("pushpull_by_reference", "pushpull_by_value"):
        merged[key] = _best_entry([run[key] for run in ok], "tasks_per_second", _higher)
    for key in ("reqrep", "tcp_echo"):
        merged[key] = _best_latency([run[key] for run in ok])
    merged["fresh_workers"] = _best_entry([run["fresh_workers"] for run in ok], "seconds", _lower)
    return merged


# ---------------------------------------------------------------------------- targets
def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(result: dict) -> list[dict]:
    """Issue #13's targets (and the ones kept from before), as ratios measured in this run."""
    config = result["config"]
    counts = config["counts"]
    tasks = 10000 if 10000 in counts else counts[-1]
    map_tasks = 100000 if 100000 in counts else counts[-1]
    crew = result["peers"].get("crew-local", {})
    ppe = result["peers"].get("ppe", {})
    floors = result.get("floors", {})
    scale = result.get("scale", {})
    push = scale.get("push", {})
    push_main = scale.get("push_main", {})
    sim, sim_baseline = scale.get("sim", {}), scale.get("sim_baseline", {})
    both = crew.get("status") == "ok" and ppe.get("status") == "ok"
    floors_ok = floors.get("status") == "ok"

    def get(row: dict, *keys: str) -> Any:
        for key in keys:
            if not isinstance(row, dict) or key not in row:
                return None
            row = row[key]
        return row

    def versus(keys: tuple[str, ...], ppe_keys: tuple[str, ...] | None = None) -> float | None:
        return _ratio(get(crew, *keys), get(ppe, *(ppe_keys or keys))) if both else None

    big = [size for size in config["payload_sizes"] if size >= 1 << 20]
    rows = [
        (f"{tasks:,} × a function pickled by reference (`bench_tasks.inc`), submit loop: crew-local / ProcessPoolExecutor",
         versus(("throughput", str(tasks), "tasks_per_second")), ">=", 8, "x"),
        (f"{tasks:,} × a function defined in `__main__`, submit loop: crew-local / ProcessPoolExecutor",
         versus(("main", "tasks_per_second")), ">=", 5, "x"),
        ("`push` of a `__main__` function / `push` by reference (µs per push, no worker)",
         _ratio(push_main.get("seconds_per_push_main"), push_main.get("seconds_per_push_reference"))
         if push_main.get("status") == "ok" else None, "<=", 2, "x"),
        (f"{map_tasks:,}-element map, best chunksize for each: crew-local `executor().map` / ProcessPoolExecutor `map`",
         versus(("executor_map", str(map_tasks), "tasks_per_second"), ("map", str(map_tasks), "tasks_per_second")),
         ">=", 1.2, "x"),
    ]
    for size in big:
        rows.append((f"{report.size_label(size)} payload in, its length out "
                     f"({report.payload_count(result, size)} tasks): crew-local / ProcessPoolExecutor",
                     versus(("payload", str(size), "tasks_per_second")), ">=", 1.0, "x"))
    rows += [
        ("round trip p50, `executor().submit(f, i).result()`: crew-local / ProcessPoolExecutor `submit().result()`",
         versus(("executor_latency", "p50"), ("latency", "p50")), "<=", 1.0, "x"),
        ("round trip p50, `push`/`wait`/`pop`: crew-local / ProcessPoolExecutor `submit().result()`",
         versus(("latency", "p50")), "<=", 1.0, "x"),
        ("round trip p50, `executor().submit(f, i).result()`: crew-local / pynng Req/Rep + cloudpickle floor",
         _ratio(get(crew, "executor_latency", "p50"), get(floors, "reqrep", "p50")) if floors_ok else None,
         "<=", 1.3, "x"),
        ("start to first result: crew-local / two fresh workers floor",
         _ratio(get(crew, "start_seconds"), get(floors, "fresh_workers", "seconds")) if floors_ok else None,
         "<=", 1.5, "x"),
        (f"{sim.get('workers', 0):,} connected simulated workers / 2, throughput",
         _ratio(sim.get("tasks_per_second"), sim_baseline.get("tasks_per_second"))
         if sim.get("status") == "ok" and sim_baseline.get("status") == "ok" else None, ">=", 0.8, "x"),
        (f"`push`: µs per task ({push.get('tasks', 0):,} tasks, no worker)",
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
    for kind in ("push", "push_main", "traced", "copies", "sim_baseline", "sim"):
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
