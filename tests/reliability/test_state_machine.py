"""Property test of the controller's task state machine (hypothesis, stateful).

Random interleavings of push, pop, cancel, worker kills (SIGKILL), short waits and terminate, on a
real local controller. At every step: resolved + unresolved == pushed and nothing is popped twice.
At the end every pushed task has resolved exactly once, with a status its history allows.
"""

import time

from _crewfaults import Workers, connected_pids, kill
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

TASK = "import time\ntime.sleep(seconds)\nvalue"


class ControllerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tracker = Workers()
        self.controller = self.tracker.controller(workers=2, crashes_max=1000, seconds_interval=0.05)
        self.controller.start()
        self.pushed: dict[str, int] = {}
        self.cancelled: set[str] = set()  # may resolve as "cancel"
        self.popped: dict[str, object] = {}
        self.unresolved_at_terminate: set[str] | None = None
        self.kills = 0

    @property
    def live(self) -> bool:
        return self.unresolved_at_terminate is None

    def _record(self, result) -> None:
        assert result.name in self.pushed, f"unknown result {result.name}"
        assert result.name not in self.popped, f"{result.name} popped twice"
        self.popped[result.name] = result

    @precondition(lambda self: self.live)
    @rule(count=st.integers(1, 10), seconds=st.sampled_from([0.0, 0.001, 0.02, 0.1]))
    def push(self, count, seconds):
        for _ in range(count):
            value = len(self.pushed)
            name = self.controller.push(TASK, data={"seconds": seconds, "value": value}, name=f"t{value}")
            self.pushed[name] = value

    @rule()
    def pop(self):
        result = self.controller.pop()
        if result is not None:
            self._record(result)

    @rule()
    def collect(self):
        for result in self.controller.collect():
            self._record(result)

    @precondition(lambda self: self.live and self.pushed)
    @rule(data=st.data())
    def cancel_some(self, data):
        names = data.draw(st.lists(st.sampled_from(sorted(self.pushed)), min_size=1, max_size=8, unique=True))
        self.controller.cancel(names)
        self.cancelled.update(names)

    @precondition(lambda self: self.live and self.pushed)
    @rule()
    def cancel_all(self):
        self.controller.cancel(all=True)
        self.cancelled.update(self.pushed)

    @precondition(lambda self: self.live and self.pushed)
    @rule(index=st.integers(0, 7))
    def kill_a_worker(self, index):
        # Draws never depend on the controller's state (hypothesis replays them); the pid does.
        deadline = time.monotonic() + 2
        while not connected_pids(self.controller) and time.monotonic() < deadline:
            time.sleep(0.01)
        pids = sorted(connected_pids(self.controller))
        if pids and kill(pids[index % len(pids)]):
            self.kills += 1
            event("killed a worker")

    @rule(seconds=st.sampled_from([0.05, 0.3]))
    def wait_one(self, seconds):
        self.controller.wait(mode="one", seconds_timeout=seconds)

    @precondition(lambda self: self.live)
    @rule()
    def terminate(self):
        self.controller.terminate()
        self.unresolved_at_terminate = set(self.pushed)  # refined in teardown: any still unresolved

    @invariant()
    def counts_add_up(self):
        controller = self.controller
        resolved, unresolved = controller.resolved(), controller.unresolved()
        assert resolved + unresolved == len(self.pushed)
        assert len(self.popped) <= resolved <= len(self.pushed)
        if not self.live:
            assert unresolved == 0, "terminate() left tasks unresolved"

    def teardown(self):
        try:
            if self.live:
                assert self.controller.wait(seconds_timeout=60), f"{self.controller.unresolved()} never resolved"
            self.collect()
            assert self.controller.pop() is None
            assert set(self.popped) == set(self.pushed), set(self.pushed) ^ set(self.popped)
            assert self.controller.resolved() == len(self.pushed)
            for name, result in self.popped.items():
                allowed = {"success"}
                if name in self.cancelled:
                    allowed.add("cancel")
                if not self.live:
                    allowed.add("cancel")  # unfinished when the controller was terminated
                assert result.status in allowed, (result, self.kills)
                if result.status == "success":
                    assert result.result == self.pushed[name], result
                event(f"status {result.status}")
        finally:
            leftovers = self.tracker.close()
        assert not leftovers, f"worker processes left: {leftovers}"


ControllerMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestControllerStateMachine = ControllerMachine.TestCase
