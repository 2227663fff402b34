"""One adapter per task framework, and the measurements every adapter goes through.

An adapter builds its pool of 2 worker processes in :meth:`Peer.open` and runs a list of calls
(:meth:`Peer.many`: all pushed at once, then all collected) or one call (:meth:`Peer.one`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import Any

from bench_tasks import by_value, inc, size_of
from common import clock, latency_summary, rate

WORKERS = 2
STUCK_SECONDS = 120  # a wait that takes this long is a hang, reported as this run's error


class Skip(Exception):
    """The peer cannot run here (not installed); the message says why."""


class Peer:
    """Base class: a framework with ``WORKERS`` worker processes."""

    name = "peer"
    label = "peer"
    modules: tuple[str, ...] = ()  # what must be installed
    imports: tuple[str, ...] = ()  # what the controller side imports (before the start clock runs)
    by_value = True  # can it ship a function that is not importable by name?

    def check(self) -> None:
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                raise Skip(f"{module} is not installed")

    def prepare(self) -> None:
        """Import the framework in this process; the start measurement begins after this."""
        for module in self.imports:
            importlib.import_module(module)

    def open(self) -> None:
        raise NotImplementedError

    def many(self, function: Callable, args: Sequence[Any]) -> list:
        raise NotImplementedError

    def one(self, function: Callable, arg: Any) -> Any:
        return self.many(function, [arg])[0]

    def close(self) -> None:
        pass

    def extra(self, config: dict) -> dict:
        """Measurements only this peer makes."""
        return {}

    def _wrapped(self, function: Callable, wrap: Callable) -> Any:
        """``wrap(function)``, made once per function (for frameworks that decorate tasks)."""
        cache = self.__dict__.setdefault("_wraps", {})
        if id(function) not in cache:
            cache[id(function)] = (function, wrap(function))
        return cache[id(function)][1]


class CrewLocal(Peer):
    name = "crew-local"
    label = "crew-local"
    modules = ("crew", "crew_local")
    imports = ("crew_local", "crew.client", "crew._controller", "crew.launcher")

    transport = "auto"  # local_controller's default: a Unix socket on Linux

    def open(self) -> None:
        import crew_local

        self.controller = crew_local.local_controller(workers=WORKERS, transport=self.transport)
        self.controller.start()

    def many(self, function, args):
        push = self.controller.push
        for arg in args:
            push(function, args=(arg,))
        self._wait("all")
        results = self.controller.collect()
        return [_value(result) for result in results]

    def one(self, function, arg):
        controller = self.controller
        controller.push(function, args=(arg,))
        self._wait("one")
        return _value(controller.pop())

    def _wait(self, mode: str) -> None:
        if not self.controller.wait(mode=mode, seconds_timeout=STUCK_SECONDS):
            raise TimeoutError(f"crew: {self.controller.unresolved()} task(s) unresolved after {STUCK_SECONDS} s")

    def close(self) -> None:
        self.controller.terminate()

    def extra(self, config: dict) -> dict:
        """crew's own bulk call, ``Controller.map`` (one task per element, results in order);
        ``controller.executor().map`` at its best chunksize (tried as for ProcessPoolExecutor);
        and the round trip through ``controller.executor().submit(f, i).result()``."""
        maps = {}
        for tasks in config["counts"]:
            start = clock()
            results = self.controller.map(inc, {"x": range(tasks)})
            seconds = clock() - start
            _check([_value(result) for result in results], tasks)
            maps[str(tasks)] = rate(tasks, seconds)
        executor = self.controller.executor()
        try:
            executor_maps = {str(tasks): best_chunksize(executor, tasks) for tasks in config["counts"]}
            submit = executor.submit
            for i in range(config["warmup"]):
                submit(inc, i).result()
            times = []
            for i in range(config["latency_tasks"]):
                begin = clock()
                value = submit(inc, i).result()
                times.append(clock() - begin)
                if value != i + 1:
                    raise AssertionError(f"crew executor: inc({i}) returned {value!r}")
        finally:
            executor.shutdown(wait=True)
        return {"map": maps, "executor_map": executor_maps, "executor_latency": latency_summary(times)}


class CrewLocalNNG(CrewLocal):
    """crew-local with its workers on NNG over loopback TCP, the transport of remote workers."""

    name = "crew-local-nng"
    label = "crew-local, transport='nng'"
    transport = "nng"


def _value(result) -> Any:
    if result.status != "success":
        raise RuntimeError(f"crew task failed: {result.status}: {result.error}")
    return result.result


class _Futures(Peer):
    """A concurrent.futures executor: submit loop, then results."""

    executor: Any

    def many(self, function, args):
        submit = self.executor.submit
        futures = [submit(function, arg) for arg in args]
        return [future.result() for future in futures]

    def one(self, function, arg):
        return self.executor.submit(function, arg).result()


class ProcessPool(_Futures):
    name = "ppe"
    label = "ProcessPoolExecutor"
    by_value = False  # plain pickle: functions go by reference only
    imports = ("concurrent.futures", "multiprocessing")

    def open(self) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(max_workers=WORKERS)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def extra(self, config: dict) -> dict:
        """``map`` at its best chunksize for each task count, and the start time with spawn."""
        maps = {str(tasks): best_chunksize(self.executor, tasks) for tasks in config["counts"]}
        return {"map": maps, "start_spawn_seconds": _spawn_start()}


def best_chunksize(executor, tasks: int) -> dict[str, Any]:
    """``executor.map(inc, range(tasks), chunksize=...)`` at each of :func:`_chunksizes`; the best."""
    tried = {}
    for chunksize in _chunksizes(tasks):
        start = clock()
        total = sum(executor.map(inc, range(tasks), chunksize=chunksize))
        tried[str(chunksize)] = tasks / (clock() - start)
        if total != tasks * (tasks + 1) // 2:
            raise AssertionError("map returned wrong results")
    best = max(tried, key=tried.get)
    return {"tasks": tasks, "chunksize": int(best), "tasks_per_second": tried[best], "tried": tried}


def _chunksizes(tasks: int) -> list[int]:
    per_worker = -(-tasks // WORKERS)
    return sorted({size for size in (16, 64, 256, 1024, 4096, per_worker) if size <= per_worker} or {per_worker})


def _spawn_start() -> float:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = clock()
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("spawn")) as executor:
        executor.submit(inc, 0).result()
        seconds = clock() - start
    return seconds


class Loky(_Futures):
    name = "loky"
    label = "loky"
    modules = ("loky",)
    imports = ("loky",)

    def open(self) -> None:
        import loky

        self.executor = loky.get_reusable_executor(max_workers=WORKERS, timeout=600)

    def close(self) -> None:
        self.executor.shutdown(wait=True, kill_workers=True)


class Dask(Peer):
    name = "dask"
    label = "dask.distributed"
    modules = ("distributed",)
    imports = ("distributed",)

    def open(self) -> None:
        import logging

        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        self.cluster = LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
        )
        self.client = Client(self.cluster)

    def many(self, function, args):
        return self.client.gather(self.client.map(function, list(args), pure=False))

    def one(self, function, arg):
        return self.client.submit(function, arg, pure=False).result()

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class Ray(Peer):
    """Runs only where ray is installed already (the benchmark never installs it)."""

    name = "ray"
    label = "ray"
    modules = ("ray",)
    imports = ("ray",)

    def open(self) -> None:
        import ray

        self.ray = ray
        ray.init(num_cpus=WORKERS, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)

    def many(self, function, args):
        remote = self._wrapped(function, self.ray.remote)
        return self.ray.get([remote.remote(arg) for arg in args])

    def close(self) -> None:
        self.ray.shutdown()


class Parsl(Peer):
    """Runs only where parsl is installed already (the benchmark never installs it)."""

    name = "parsl"
    label = "parsl HighThroughputExecutor"
    modules = ("parsl",)
    imports = ("parsl", "parsl.config", "parsl.executors", "parsl.providers")

    def open(self) -> None:
        import parsl
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor
        from parsl.providers import LocalProvider

        provider = LocalProvider(init_blocks=1, max_blocks=1)
        try:
            executor = HighThroughputExecutor(address="127.0.0.1", max_workers_per_node=WORKERS, provider=provider)
        except TypeError:  # older parsl
            executor = HighThroughputExecutor(address="127.0.0.1", max_workers=WORKERS, provider=provider)
        self.parsl = parsl
        self.dfk = parsl.load(Config(executors=[executor]))

    def many(self, function, args):
        app = self._wrapped(function, self.parsl.python_app)
        return [future.result() for future in [app(arg) for arg in args]]

    def close(self) -> None:
        self.dfk.cleanup()


PEERS: dict[str, type[Peer]] = {peer.name: peer for peer in (CrewLocal, CrewLocalNNG, ProcessPool, Loky, Dask, Ray,
                                                              Parsl)}


def measure(peer: Peer, config: dict, main_function: Callable | None = None) -> dict[str, Any]:
    """Every measurement of one peer, in a fresh process: start, throughput, latency, payloads.

    ``main_function`` is an ``x + 1`` defined in the running script's ``__main__`` (as scripts
    and notebooks define their work): cloudpickle ships it by value, a forked
    ProcessPoolExecutor by reference (its workers are copies of ``__main__``).

    ``start_seconds`` runs from building the pool (the framework already imported here, as the
    floors have pynng and cloudpickle imported) to the first result of ``inc(0)``."""
    row: dict[str, Any] = {"name": peer.name, "label": peer.label}
    start = clock()
    peer.prepare()
    row["import_seconds"] = clock() - start
    start = clock()
    peer.open()
    first = peer.one(inc, 0)
    row["start_seconds"] = clock() - start
    if first != 1:
        raise AssertionError(f"{peer.name}: inc(0) returned {first!r}")
    try:
        _check(peer.many(inc, range(config["warmup"])), config["warmup"])
        row["throughput"] = {}
        row["skipped"] = {}
        previous = None
        for tasks in config["counts"]:
            if previous is not None:
                estimate = tasks / previous
                if estimate > config["budget_seconds"]:
                    row["skipped"][str(tasks)] = f"estimated {estimate:.0f} s > budget {config['budget_seconds']:g} s"
                    continue
            row["throughput"][str(tasks)] = _throughput(peer, inc, tasks)
            previous = row["throughput"][str(tasks)]["tasks_per_second"]
        times = []
        for i in range(config["latency_tasks"]):
            begin = clock()
            value = peer.one(inc, i)
            times.append(clock() - begin)
            if value != i + 1:
                raise AssertionError(f"{peer.name}: inc({i}) returned {value!r}")
        row["latency"] = latency_summary(times)
        if peer.by_value:
            function = by_value()
            _check(peer.many(function, range(config["warmup"])), config["warmup"])
            row["by_value"] = _throughput(peer, function, config["by_value_tasks"])
        if main_function is not None:
            if main_function.__module__ != "__main__":
                raise AssertionError(f"{main_function!r} is not defined in __main__")
            _check(peer.many(main_function, range(config["warmup"])), config["warmup"])
            row["main"] = _throughput(peer, main_function, config["by_value_tasks"])
        row["payload"] = {}
        for size in config["payload_sizes"]:
            row["payload"][str(size)] = _payload(peer, size, config)
        row.update(peer.extra(config))
    finally:
        peer.close()
    return row


def _check(values: list, tasks: int) -> None:
    if sorted(values) != list(range(1, tasks + 1)):
        raise AssertionError("wrong results")


def _throughput(peer: Peer, function, tasks: int) -> dict[str, float]:
    start = clock()
    values = peer.many(function, range(tasks))
    seconds = clock() - start
    if len(values) != tasks or sum(values) != tasks * (tasks + 1) // 2:
        raise AssertionError(f"{peer.name}: wrong results")
    return rate(tasks, seconds)


def payload_tasks(size: int, config: dict) -> int:
    return max(config["payload_min_tasks"], min(config["payload_max_tasks"], config["payload_bytes"] // size))


def _payload(peer: Peer, size: int, config: dict) -> dict[str, float]:
    tasks = payload_tasks(size, config)
    payload = os.urandom(size)
    peer.many(size_of, [payload])  # warm
    start = clock()
    values = peer.many(size_of, [payload] * tasks)
    seconds = clock() - start
    if values != [size] * tasks:
        raise AssertionError(f"{peer.name}: wrong payload results")
    result = rate(tasks, seconds)
    result["megabytes_per_second"] = tasks * size / seconds / 1e6
    result["bytes"] = size
    return result


def import_peer(name: str) -> Peer:
    return PEERS[name]()


__all__ = ["PEERS", "Peer", "Skip", "best_chunksize", "import_peer", "measure", "payload_tasks"]
