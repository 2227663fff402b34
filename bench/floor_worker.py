"""A bare worker for the transport floors: imports only pynng and cloudpickle.

Usage: ``python floor_worker.py pushpull TASKS_URL RESULTS_URL`` (runs until an empty message)
or ``python floor_worker.py reqrep URL`` or ``python floor_worker.py echo PORT``.
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
    {"pushpull": _pushpull, "reqrep": _reqrep, "echo": _echo}[mode](*rest)
