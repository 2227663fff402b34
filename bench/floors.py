"""The floors of crew's transport: what bare pynng + cloudpickle does on this machine.

Every measurement here starts its own worker processes (``floor_worker.py``) and ends them by pid.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import cloudpickle
import pynng
from bench_tasks import by_value, inc
from common import HERE, clock, end, latency_summary, listen_url, rate, spawn

WORKER = str(HERE / "floor_worker.py")


def _wait_for_pipes(*sockets: Any, count: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while any(len(sock.pipes) < count for sock in sockets):
        if time.monotonic() > deadline:
            raise TimeoutError(f"floor workers did not connect within {seconds:g} s")
        time.sleep(0.005)


def _stop(processes) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        end(process)


def pushpull(tasks: int, by_reference: bool, workers: int = 2) -> dict[str, float]:
    """Push0/Pull0 to ``workers`` processes, one task per message, results back over Push0/Pull0.

    Each task is pickled with cloudpickle as ``(function, args)``: the function by reference
    (an importable ``inc``) or by value (a closure, pickled again for every task).
    """
    function = inc if by_reference else by_value()
    dumps = cloudpickle.dumps
    with pynng.Push0() as out, pynng.Pull0() as back:
        out_url, back_url = listen_url(out), listen_url(back)
        processes = [spawn(WORKER, "pushpull", out_url, back_url) for _ in range(workers)]
        try:
            _wait_for_pipes(out, back, count=workers)
            for i in range(50 * workers):  # warm up every worker
                out.send(dumps((function, (i,))))
            for _ in range(50 * workers):
                back.recv()

            def send() -> None:
                for i in range(tasks):
                    out.send(dumps((function, (i,))))

            start = clock()
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            total = 0
            for _ in range(tasks):
                total += cloudpickle.loads(back.recv())
            seconds = clock() - start
            sender.join()
        finally:
            _stop(processes)
    if total != tasks * (tasks + 1) // 2:
        raise AssertionError("push/pull floor returned wrong results")
    return rate(tasks, seconds)


def reqrep(round_trips: int) -> dict[str, float]:
    """Req0/Rep0 round trips of one cloudpickled ``inc`` task to one warm worker process."""
    dumps, loads = cloudpickle.dumps, cloudpickle.loads
    with pynng.Req0() as sock:
        url = listen_url(sock)
        process = spawn(WORKER, "reqrep", url)
        try:
            _wait_for_pipes(sock, count=1)
            for i in range(100):
                sock.send(dumps((inc, (i,))))
                sock.recv()
            times = []
            for i in range(round_trips):
                start = clock()
                sock.send(dumps((inc, (i,))))
                value = loads(sock.recv())
                times.append(clock() - start)
                if value != i + 1:
                    raise AssertionError("req/rep floor returned a wrong result")
        finally:
            _stop([process])
    return latency_summary(times)


def tcp_echo(round_trips: int) -> dict[str, float]:
    """Raw TCP echo of 64 bytes to one warm process (what the kernel alone costs)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    process = spawn(WORKER, "echo", str(server.getsockname()[1]))
    try:
        server.settimeout(60)
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = b"x" * 64
        times = []
        for i in range(100 + round_trips):
            start = clock()
            conn.sendall(message)
            got = b""
            while len(got) < len(message):
                got += conn.recv(65536)
            if i >= 100:
                times.append(clock() - start)
        conn.close()
    finally:
        server.close()
        _stop([process])
    return latency_summary(times)


def fresh_workers(workers: int = 2) -> dict[str, float]:
    """Seconds from starting ``workers`` fresh Python processes (that import pynng and
    cloudpickle and dial in) to the first result of one task."""
    start = clock()
    with pynng.Push0() as out, pynng.Pull0() as back:
        out_url, back_url = listen_url(out), listen_url(back)
        processes = [spawn(WORKER, "pushpull", out_url, back_url) for _ in range(workers)]
        try:
            out.send(cloudpickle.dumps((inc, (0,))))
            value = cloudpickle.loads(back.recv())
            seconds = clock() - start
        finally:
            _stop(processes)
    if value != 1:
        raise AssertionError("fresh-worker floor returned a wrong result")
    return {"workers": workers, "seconds": seconds}


def measure(config: dict) -> dict[str, Any]:
    """Every floor, once."""
    tasks = config["floor_tasks"]
    return {
        "pushpull_by_reference": pushpull(tasks, by_reference=True),
        "pushpull_by_value": pushpull(tasks, by_reference=False),
        "reqrep": reqrep(config["latency_tasks"]),
        "tcp_echo": tcp_echo(config["latency_tasks"]),
        "fresh_workers": fresh_workers(2),
    }
