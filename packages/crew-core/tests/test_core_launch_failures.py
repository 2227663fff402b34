"""Launches that keep failing are retried ever more slowly and reported to the user."""

import time

import crew
import pytest
from crew_local import LocalLauncher


class FailingLauncher(LocalLauncher):
    """Every worker it starts exits at once with status 1, before dialling in."""

    def launch_worker(self, call):
        return super().launch_worker("exit 1")


def test_failing_launches_raise_a_launch_error_and_back_off():
    controller = crew.Controller(crew.Client(host="127.0.0.1"), FailingLauncher(workers=1, seconds_interval=0.05))
    with controller:
        controller.push("1", name="never")
        with pytest.raises(crew.LaunchError, match=r"5 launches in a row failed .*exit code 1"):
            controller.wait(seconds_timeout=60)
        assert controller.summary()[0]["failed_launches"] == 5
        rounds_at_error = controller.summary()[0]["launches"]
        # Backing off: after the error, the next rounds come at least 0.05 * 2**5 = 1.6 s apart.
        start = time.monotonic()
        assert controller.wait(seconds_timeout=1.0) is False
        assert controller.summary()[0]["launches"] - rounds_at_error <= 1, time.monotonic() - start
    assert controller.pop().status == "cancel"  # terminate() resolved the task that never ran
