"""crew-local passes the conformance kit that every launcher plugin runs."""

import crew.testing
from crew_local import LocalMonitor, local_controller


class TestLocalConformance(crew.testing.ControllerSuite):
    seconds_timeout = 30

    def make_controller(self, **options):
        return local_controller(**options)

    def make_monitor(self):
        return LocalMonitor()
