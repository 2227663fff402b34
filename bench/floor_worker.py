"""A bare worker for the transport floors: imports only pynng and cloudpickle.

Usage: ``python floor_worker.py pushpull TASKS_URL RESULTS_URL`` (runs until an empty message)
or ``python floor_worker.py reqrep URL``, ``python floor_worker.py pair URL 0|1`` (see
:func:`_pair`) or ``python floor_worker.py echo PORT``.
Each task is ``cloudpickle.dumps((function, args))``; each result ``cloudpickle.dumps(value)``.
"""

import sys


def _pushpull(tasks_url: str, results_url: str) -> None:
    import cloudpickle
    import pynng

    with pynng.Pull0(dial=tasks_url) as tasks, pynng.Push0(dial=results_url) as results:
        loads, dumps, send = cloudpickle.loads, cloudpickle.dumps, results.send
        while True:
            message = tasks.recv()
            if not message:
                return
            function, args = loads(message)
            send(dumps(function(*args)))


def _reqrep(url: str) -> None:
    import cloudpickle
    import pynng

    with pynng.Rep0(dial=url) as sock:
        loads, dumps = cloudpickle.loads, cloudpickle.dumps
        while True:
            message = sock.recv()
            if not message:
                sock.send(b"")
                return
            function, args = loads(message)
            sock.send(dumps(function(*args)))


def _pair(url: str, threaded: str) -> None:
    """Pair1 worker: runs each task on the receiving thread, or (threaded="1") hands it to the
    main thread through a condition variable the way crew's worker does."""
    import collections
    import threading

    import cloudpickle
    import pynng

    sock = pynng.Pair1(dial=url)
    loads, dumps = cloudpickle.loads, cloudpickle.dumps
    if threaded != "1":
        while True:
            message = sock.recv()
            if not message:
                return
            function, args = loads(message)
            sock.send(dumps(function(*args)))
    tasks: collections.deque = collections.deque()
    ready = threading.Condition()

    def receive() -> None:
        while True:
            message = sock.recv()
            with ready:
                tasks.append(message)
                ready.notify()

    threading.Thread(target=receive, daemon=True).start()
    while True:
        with ready:
            while not tasks:
                ready.wait()
            message = tasks.popleft()
        if not message:
            return
        function, args = loads(message)
        sock.send(dumps(function(*args)))


def _echo(port: str) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", int(port))) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    {"pushpull": _pushpull, "reqrep": _reqrep, "pair": _pair, "echo": _echo}[mode](*rest)
