"""crew-ssh passes crew's conformance kit, through a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import crew.testing
import pytest
from crew_ssh import SshMonitor, ssh_controller


class TestSshConformance(crew.testing.ControllerSuite):
    seconds_timeout = 60

    @pytest.fixture(autouse=True)
    def _server(self, sshd, tmp_path):
        self.sshd = sshd
        self.folder = tmp_path

    def make_controller(self, **options):
        return ssh_controller(host="127.0.0.1", hosts=[self.sshd.destination], ssh_options=self.sshd.ssh_options,
                              log_directory=str(self.folder / "logs"), **options)

    def owns(self, controller, row):
        """SshMonitor names each worker's controller: other crew workers on the host are not ours."""
        return row["name"] == crew.testing.controller_id(controller)

    def make_monitor(self):
        return SshMonitor(hosts=[self.sshd.destination], ssh_options=self.sshd.ssh_options,
                          log_directory=str(self.folder / "logs"))
