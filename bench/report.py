"""Turning a benchmark result (the JSON that run.py writes) into markdown tables and a plot."""

from __future__ import annotations

PEER_ORDER = ["crew-local", "crew-local-nng", "ppe", "loky", "dask", "ray", "parsl"]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _us(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:,.0f}"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:,.0f}"


def size_label(size: int) -> str:
    """1 MiB and 10 MiB as such; decimal units otherwise."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    for unit, scale in (("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


_size = size_label


def payload_count(result: dict, size: int) -> int:
    """How many tasks the payload measurement of ``size`` bytes ran (as ``peers.payload_tasks``)."""
    config = result["config"]
    return max(config["payload_min_tasks"], min(config["payload_max_tasks"], config["payload_bytes"] // size))


def _tps(row: dict, tasks: int) -> float | None:
    entry = row.get("throughput", {}).get(str(tasks))
    return entry["tasks_per_second"] if entry else None


def peer_table(result: dict) -> str:
    counts = result["config"]["counts"]
    head = (["peer"] + [f"tasks/s ({n:,} tasks)" for n in counts]
            + [f"by value, closure ({result['config']['by_value_tasks']:,})",
               f"`__main__` function ({result['config']['by_value_tasks']:,})", "round trip p50 (µs)", "p99 (µs)",
               "start to first result (ms)", "note"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 2) + "---|"]
    for name in PEER_ORDER:
        row = result["peers"].get(name)
        if row is None:
            continue
        if row["status"] != "ok":
            cells = [row.get("label", name)] + ["—"] * (len(head) - 2) + [f"{row['status']}: {row.get('note', '')}"]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        note = []
        if row.get("import_seconds") is not None:
            note.append(f"import {_ms(row['import_seconds'])} ms (not in start)")
        for tasks, why in row.get("skipped", {}).items():
            note.append(f"{int(tasks):,} tasks skipped ({why})")
        if name == "ppe":
            note.append(f"fork; spawn start {_ms(row.get('start_spawn_seconds'))} ms")
        if name == "dask":
            note.append("client.map")
        by_value, main = row.get("by_value"), row.get("main")
        cells = ([row["label"]] + [_num(_tps(row, n)) for n in counts]
                 + [_num(by_value["tasks_per_second"]) if by_value else "n/a (pickle)",
                    _num(main["tasks_per_second"]) if main else "—",
                    _us(row["latency"]["p50"]), _us(row["latency"]["p99"]), _ms(row["start_seconds"]), "; ".join(note)])
        lines.append("| " + " | ".join(cells) + " |")
        for field in ("map", "executor_map"):
            maps = row.get(field)
            if not maps:
                continue
            label, note = f"{row['label']} Controller.map", "one task per element"
            if name == "ppe":
                label = "ProcessPoolExecutor map (best chunksize)"
            if field == "executor_map":
                label = f"{row['label']} executor().map (best chunksize)"
            if "chunksize" in next(iter(maps.values())):
                note = "chunksize " + ", ".join(f"{maps[str(n)]['chunksize']}" for n in counts if str(n) in maps)
            cells = ([label] + [_num(maps[str(n)]["tasks_per_second"]) if str(n) in maps else "—" for n in counts]
                     + ["—", "—", "—", "—", "—", note])
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def latency_table(result: dict) -> str:
    """Round trip, one task at a time on warm workers: best and median p50 over the runs."""
    lines = ["| round trip, one task at a time | p50 (µs), best run | p50 (µs), median of runs | p99 (µs) |",
             "|---|---:|---:|---:|"]
    rows = []
    for name in PEER_ORDER:
        row = result["peers"].get(name)
        if not row or row["status"] != "ok":
            continue
        how = "`submit(f, i).result()`" if not name.startswith("crew-local") else "`push`/`wait`/`pop`"
        if name in ("dask", "ray", "parsl"):
            how = "its own submit"
        rows.append((f"{row['label']} {how}", row["latency"]))
        if row.get("executor_latency"):
            rows.append((f"{row['label']} `executor().submit(f, i).result()`", row["executor_latency"]))
    floors = result.get("floors", {})
    if floors.get("status") == "ok":
        rows.append(("floor: pynng Req0/Rep0 + cloudpickle", floors["reqrep"]))
        rows.append(("floor: raw TCP echo, 64 bytes", floors["tcp_echo"]))
    for label, entry in rows:
        median = _median(entry["p50s"]) if entry.get("p50s") else entry["p50"]
        lines.append(f"| {label} | {_us(entry['p50'])} | {_us(median)} | {_us(entry['p99'])} |")
    return "\n".join(lines)


def copies_table(result: dict) -> str:
    copies = result.get("scale", {}).get("copies", {})
    if copies.get("status") != "ok":
        return f"copies: {copies.get('status', 'missing')}: {copies.get('note', '')}"
    sizes = result["config"]["copy_sizes"]
    head = ["payload-sized buffers alive at once (Python heap, tracemalloc peak)"]
    head += [f"{size_label(size)}, {side}" for size in sizes for side in ("controller", "worker")]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name in ("crew-local", "ppe"):
        entries = copies.get(name, {})
        label = result["peers"].get(name, {}).get("label", name)
        cells = [label] + [f"{entries[str(size)][side]:.2f}" if str(size) in entries else "—"
                           for size in sizes for side in ("controller", "worker")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floor_table(result: dict) -> str:
    floors = result.get("floors")
    if not floors or floors.get("status") != "ok":
        return f"floors: {floors.get('status') if floors else 'missing'}: {floors.get('note', '') if floors else ''}"
    rows = [
        ("pynng Push0/Pull0 + cloudpickle, by reference, 2 workers (tasks/s)",
         _num(floors["pushpull_by_reference"]["tasks_per_second"])),
        ("pynng Push0/Pull0 + cloudpickle, by value, 2 workers (tasks/s)",
         _num(floors["pushpull_by_value"]["tasks_per_second"])),
        ("pynng Req0/Rep0 + cloudpickle round trip p50 / p99 (µs)",
         f"{_us(floors['reqrep']['p50'])} / {_us(floors['reqrep']['p99'])}"),
        ("raw TCP echo p50 / p99 (µs)", f"{_us(floors['tcp_echo']['p50'])} / {_us(floors['tcp_echo']['p99'])}"),
        ("2 fresh Python workers (pynng + cloudpickle) to first result (ms)", _ms(floors["fresh_workers"]["seconds"])),
    ]
    lines = ["| floor | value |", "|---|---:|"] + [f"| {label} | {value} |" for label, value in rows]
    return "\n".join(lines)


def payload_table(result: dict) -> str:
    sizes = result["config"]["payload_sizes"]
    head = ["peer"] + [f"{_size(s)}" for s in sizes]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(sizes)]
    for name in PEER_ORDER:
        row = result["peers"].get(name)
        if not row or row["status"] != "ok":
            continue
        cells = [row["label"]]
        for size in sizes:
            entry = row.get("payload", {}).get(str(size))
            cells.append("—" if not entry else f"{entry['megabytes_per_second']:,.0f} MB/s ({entry['tasks_per_second']:,.0f}/s)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scale_table(result: dict) -> str:
    scale = result.get("scale", {})
    lines = ["| controller scale | value |", "|---|---:|"]
    push = scale.get("push", {})
    if push.get("status") == "ok":
        lines.append(f"| push {push['tasks']:,} tasks, no worker: µs per push | {push['seconds_per_push'] * 1e6:.1f} |")
        lines.append(f"| resident memory per queued task (bytes) | {push['rss_bytes_per_task']:,.0f} |")
    push_main = scale.get("push_main", {})
    if push_main.get("status") == "ok":
        lines.append(f"| push by reference, best of {push_main['rounds']} × {push_main['tasks']:,}, no worker: µs per push "
                     f"| {push_main['seconds_per_push_reference'] * 1e6:.1f} |")
        lines.append(f"| push of a `__main__` function (by value, cached), same: µs per push "
                     f"| {push_main['seconds_per_push_main'] * 1e6:.1f} |")
    traced = scale.get("traced", {})
    if traced.get("status") == "ok":
        lines.append(f"| Python heap per queued task, tracemalloc over {traced['tasks']:,} (bytes) "
                     f"| {traced['bytes_per_task']:,.0f} |")
    for key in ("sim_baseline", "sim"):
        sim = scale.get(key, {})
        if sim.get("status") == "ok":
            lines.append(f"| {sim['workers']:,} simulated workers: tasks/s over {sim['tasks']:,} tasks "
                         f"({sim['workers_used']:,} used; all connected in {sim['connect_seconds']:.1f} s) "
                         f"| {sim['tasks_per_second']:,.0f} |")
    for key, entry in scale.items():
        if entry.get("status") not in (None, "ok"):
            lines.append(f"| {key} | {entry['status']}: {entry.get('note', '')} |")
    return "\n".join(lines)


def target_table(result: dict) -> str:
    lines = ["| target | measured | limit | met |", "|---|---:|---:|:---:|"]
    for target in result.get("targets", []):
        value = "—" if target["value"] is None else f"{target['value']:.3g}{target['unit']}"
        met = {True: "yes", False: "**no**", None: "—"}[target["met"]]
        lines.append(f"| {target['name']} | {value} | {target['comparison']} {target['limit']:g}{target['unit']} | {met} |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    meta = result["meta"]
    parts = [
        f"## crew benchmark ({meta['mode']}, {meta['date']}, best of {meta['reps']} run(s) per peer)",
        (f"{meta['cpus']} CPUs, Python {meta['python']}, {meta['platform']}; load average before/after: "
         f"{meta['load_before']} / {meta.get('load_after', '?')}; crew commit {meta.get('commit', '?')}"),
        "### Peers: 2 worker processes, task `x + 1`", peer_table(result),
        "### Targets (ratios measured in this run)", target_table(result),
        "### Round trip", latency_table(result),
        "### Transport floors", floor_table(result),
        "### Payload throughput (task takes the payload, returns its length)", payload_table(result),
        "### Payload copies (1 worker)", copies_table(result),
        "### The controller itself", scale_table(result),
    ]
    return "\n\n".join(parts) + "\n"


def plot(result: dict, path: str) -> bool:
    """Draw throughput against task count and against payload size; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    counts = result["config"]["counts"]
    sizes = result["config"]["payload_sizes"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))
    for index, name in enumerate(PEER_ORDER):
        row = result["peers"].get(name)
        if not row or row["status"] != "ok":
            continue
        style = {"color": f"C{index}", "linewidth": 2.5 if name == "crew-local" else 1.5}
        xs = [n for n in counts if _tps(row, n)]
        left.plot(xs, [_tps(row, n) for n in xs], marker="o", label=row["label"], **style)
        if row.get("map"):
            xs = [n for n in counts if str(n) in row["map"]]
            label = "ProcessPoolExecutor map (best chunksize)" if name == "ppe" else f"{row['label']} Controller.map"
            left.plot(xs, [row["map"][str(n)]["tasks_per_second"] for n in xs], marker="s", linestyle=":", label=label,
                      **style)
        if row.get("executor_map"):
            xs = [n for n in counts if str(n) in row["executor_map"]]
            left.plot(xs, [row["executor_map"][str(n)]["tasks_per_second"] for n in xs], marker="^", linestyle="--",
                      label=f"{row['label']} executor().map (best chunksize)", **style)
        if row.get("main"):
            left.scatter([row["main"]["tasks"]], [row["main"]["tasks_per_second"]], marker="*", s=120, zorder=5,
                         color=style["color"], label=f"{row['label']}: `__main__` function, submit loop")
        payloads = row.get("payload", {})
        xs = [s for s in sizes if str(s) in payloads]
        right.plot(xs, [payloads[str(s)]["megabytes_per_second"] for s in xs], marker="o", label=row["label"], **style)
    floors = result.get("floors", {})
    if floors.get("status") == "ok":
        for key, style, label in (("pushpull_by_reference", "--", "floor: pynng push/pull, by reference"),
                                  ("pushpull_by_value", "-.", "floor: pynng push/pull, by value")):
            left.axhline(floors[key]["tasks_per_second"], color="grey", linestyle=style, linewidth=1, label=label)
    left.set(xscale="log", yscale="log", xlabel="tasks pushed at once", ylabel="tasks per second",
             title="Throughput, trivial task (x + 1), 2 workers")
    right.set(xscale="log", yscale="log", xlabel="payload bytes per task", ylabel="MB per second",
              title="Throughput against payload size")
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    right.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
