"""The controller's threading model under stress: a thread switch every microsecond, eight threads
pushing, popping, cancelling and collecting at once, while workers are SIGKILLed.

Every pushed task must come out exactly once (popped or collected by one of the threads), with
its own value or as cancelled, and the counts must add up at every moment they are read.
"""

from __future__ import annotations

import random
import sys
import threading
import time

from _crewfaults import connected_pids, kill

THREADS = 8
PUSHES = 150  # per pushing thread
TASK = "import time\ntime.sleep(0.004)\nvalue * 3"


def test_eight_threads_lose_duplicate_and_miscount_nothing(workers):
    controller = workers.controller(workers=2, crashes_max=1000, seconds_interval=0.05).start()
    pushed: dict[str, int] = {}
    cancelled: set[str] = set()
    seen: dict[str, object] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    pushing_done = threading.Event()
    pushers_left = [THREADS // 2]

    def record(results):
        with lock:
            for result in results:
                assert result.name not in seen, f"{result.name} came out twice"
                seen[result.name] = result

    def pusher(index: int) -> None:
        rng = random.Random(index)
        for i in range(PUSHES):
            name = f"p{index}-{i}"
            value = index * 10_000 + i
            controller.push(TASK, data={"value": value}, name=name)
            with lock:
                pushed[name] = value
            if rng.random() < 0.1:
                controller.cancel([name])
                with lock:
                    cancelled.add(name)
            counts = controller.resolved(), controller.unresolved()
            assert counts[0] >= 0 and counts[1] >= 0
        with lock:
            pushers_left[0] -= 1
            if pushers_left[0] == 0:
                pushing_done.set()

    def taker(index: int) -> None:
        while not (pushing_done.is_set() and controller.unresolved() == 0 and controller.results_ready() == 0):
            if index % 2:
                result = controller.pop()
                if result is not None:
                    record([result])
            else:
                record(controller.collect())
                controller.wait(mode="one", seconds_timeout=0.01)

    def guarded(target, index):
        try:
            target(index)
        except BaseException as error:
            errors.append(error)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=guarded, args=(pusher if i < THREADS // 2 else taker, i))
                   for i in range(THREADS)]
        for thread in threads:
            thread.start()
        kills = 0
        while kills < 6 and not errors and not (pushing_done.is_set() and controller.unresolved() == 0):
            pids = connected_pids(controller)
            if pids and kill(random.choice(pids)):
                kills += 1
            time.sleep(0.25)  # pacing between kills, not a wait for anything
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), "a thread hung"
    finally:
        sys.setswitchinterval(before)
    assert not errors, errors
    assert set(seen) == set(pushed), (len(seen), len(pushed))
    assert controller.resolved() == len(pushed) and controller.unresolved() == 0
    for name, result in seen.items():
        if result.status == "success":
            assert result.result == pushed[name] * 3, result
        else:
            assert result.status == "cancel" and name in cancelled, result
    assert kills >= 1
