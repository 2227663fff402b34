"""Cluster and cloud helpers default to TLS and a five-minute idle time, as crew.cluster does;
local_controller keeps its own defaults."""

from __future__ import annotations

import math

import crew
import pytest
from crew_aws_batch import aws_batch_controller
from crew_local import local_controller
from crew_sge import lsf_controller, pbs_controller, sge_controller
from crew_slurm import slurm_controller

CLUSTER_HELPERS = [slurm_controller, sge_controller, lsf_controller, pbs_controller]


@pytest.mark.parametrize("helper", CLUSTER_HELPERS, ids=lambda helper: helper.__name__)
def test_cluster_helpers_encrypt_and_give_idle_workers_back(helper):
    controller = helper(workers=2)
    assert controller.client.tls == crew.TLS(mode="automatic")
    assert controller.launcher.seconds_idle == 300
    plain = helper(tls=crew.TLS(), seconds_idle=math.inf)  # both can be turned back
    assert not plain.client.tls.enabled and math.isinf(plain.launcher.seconds_idle)


def test_aws_batch_helper_encrypts_and_gives_idle_workers_back():
    controller = aws_batch_controller(job_queue="queue", job_definition="definition", region="us-east-1")
    assert controller.client.tls == crew.TLS(mode="automatic")
    assert controller.launcher.seconds_idle == 300


def test_local_controller_keeps_its_defaults():
    controller = local_controller()
    assert not controller.client.tls.enabled and math.isinf(controller.launcher.seconds_idle)
