"""Option validation and the pure request builders."""

from __future__ import annotations

import importlib.metadata
import math
import subprocess
import sys

import crew
import pytest
from crew_aws_batch import AwsBatchDefinition, AwsBatchLauncher, AwsBatchMonitor, aws_batch_controller, plugin
from crew_aws_batch._options import _job_name, _sanitise_name, _split

REQUIRED = {"job_queue": "queue", "job_definition": "definition"}


@pytest.mark.parametrize(
    "name, value",
    [
        ("job_queue", ""),
        ("job_queue", None),
        ("job_definition", 3),
        ("region", ""),
        ("endpoint_url", "localhost:4566"),
        ("aws_profile", 1),
        ("aws_credentials", {"aws_access_key_id": "a"}),
        ("aws_credentials", {"aws_access_key_id": "a", "aws_secret_access_key": "b", "token": "c"}),
        ("cpus", 0),
        ("cpus", "2"),
        ("gpus", 0),
        ("gpus", 1.5),
        ("memory_gigabytes", -1),
        ("memory_mebibytes", 0.5),
        ("environment", {"A": 1}),
        ("environment", {"CREW_SECRET": "x"}),
        ("tags", ["a"]),
        ("tags", {f"k{i}": "v" for i in range(51)}),
        ("propagate_tags", "yes"),
        ("share_identifier", ""),
        ("scheduling_priority_override", 10000),
        ("scheduling_priority_override", -1),
        ("parameters", {"a": 1}),
        ("retry_strategy", 0),
        ("retry_strategy", 11),
        ("retry_strategy", {"tries": 2}),
        ("timeout", 59),
        ("timeout", 60.5),
        ("container_overrides", {"command": ["x"]}),
        ("container_overrides", {"environment": [{"name": "CREW_SECRET", "value": "x"}]}),
        ("container_overrides", {"environment": {"A": "1"}}),
        ("node_overrides", {"nodes": 2}),
        ("eks_properties_override", {"pods": {}}),
        ("job_name", "---"),
        ("job_name", ""),
    ],
)
def test_bad_options_name_the_option(name, value):
    options = {**REQUIRED, name: value}
    with pytest.raises(crew.SettingError, match=name):
        AwsBatchLauncher(**options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"memory_gigabytes": 1, "memory_mebibytes": 1024}, "memory_gigabytes or memory_mebibytes"),
        ({"aws_profile": "p", "aws_credentials": {"aws_access_key_id": "a", "aws_secret_access_key": "b"}}, "aws_profile or aws_credentials"),
        ({"container_overrides": {}, "eks_properties_override": {}}, "at most one"),
    ],
)
def test_conflicting_options(options, message):
    with pytest.raises(crew.SettingError, match=message):
        AwsBatchLauncher(**REQUIRED, **options)


def test_common_launcher_arguments_are_validated_too():
    with pytest.raises(crew.SettingError, match="workers"):
        AwsBatchLauncher(workers=0, **REQUIRED)
    with pytest.raises(crew.SettingError, match="seconds_idle"):
        aws_batch_controller(seconds_idle=-1, **REQUIRED)
    with pytest.raises(crew.SettingError, match="cpus"):
        aws_batch_controller(cpus=-1, host="127.0.0.1", **REQUIRED)


def test_good_options_are_normalised():
    launcher = AwsBatchLauncher(
        **REQUIRED, cpus=2, memory_gigabytes=1.5, retry_strategy=3, timeout=600, python="/usr/bin/python3"
    )
    assert launcher.options.memory_mebibytes == 1536
    assert launcher.options.retry_strategy == {"attempts": 3}
    assert launcher.python == "/usr/bin/python3"
    assert AwsBatchLauncher(**REQUIRED).python == "python3"
    assert AwsBatchLauncher(**REQUIRED, memory_gigabytes=0.001).options.memory_mebibytes == 2


@pytest.mark.parametrize(
    "n, sizes",
    [(1, [1]), (2, [2]), (10_000, [10_000]), (10_001, [5_001, 5_000]), (20_001, [6_667, 6_667, 6_667]), (30_000, [10_000] * 3)],
)
def test_split(n, sizes):
    assert _split(n) == sizes
    assert sum(_split(n)) == n and all(1 <= size <= 10_000 for size in _split(n))
    assert len(_split(n)) == 1 or min(_split(n)) >= 2


@pytest.mark.parametrize(
    "text, name",
    [
        ("crew-my controller", "crew-my_controller"),
        ("_x.y/z", "x_y_z"),
        ("..", ""),
        ("a" * 200, "a" * 128),
        ("ünï-cödé", "n_-c_d_"),
    ],
)
def test_sanitise_name(text, name):
    assert _sanitise_name(text, strict=False) == name


def test_job_names_keep_the_round_and_fit_128_characters():
    assert _job_name("crew-test", "7") == "crew-test-7"
    assert _job_name("crew test!", "12", part=1) == "crew_test_-12-1"
    long = _job_name("x" * 300, "123")
    assert len(long) == 128 and long.endswith("-123")
    assert _job_name("!!!", "1") == "crew-1"


def test_plugin_is_registered_and_complete():
    found = [point for point in importlib.metadata.entry_points(group=crew.ENTRY_POINT_GROUP) if point.name == "aws_batch"]
    assert [point.value for point in found] == ["crew_aws_batch:plugin"]
    assert found[0].load() is plugin
    assert plugin == crew.Plugin(
        name="aws_batch",
        package="crew-aws-batch",
        controller=aws_batch_controller,
        launcher=AwsBatchLauncher,
        monitor=AwsBatchMonitor,
    )
    assert issubclass(AwsBatchMonitor, crew.Monitor) and issubclass(AwsBatchLauncher, crew.Launcher)


def test_import_crew_never_imports_boto3():
    code = "import sys, crew, crew_aws_batch; print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_definition_and_monitor_validate():
    with pytest.raises(crew.SettingError, match="job_definition"):
        AwsBatchDefinition("queue", "bad name")
    with pytest.raises(crew.SettingError, match="log_group"):
        AwsBatchDefinition("queue", "good", log_group="")
    with pytest.raises(crew.SettingError, match="job_queue"):
        AwsBatchMonitor("")
    with pytest.raises(crew.SettingError, match="status"):
        AwsBatchMonitor("queue", endpoint_url="http://127.0.0.1:1").jobs(status="DONE")
    with pytest.raises(crew.SettingError, match="all=True"):
        AwsBatchMonitor("queue").terminate()
    definition = AwsBatchDefinition("queue", "good")
    with pytest.raises(crew.SettingError, match="memory_mebibytes"):
        definition.registration("image", memory_mebibytes=0)
    with pytest.raises(crew.SettingError, match="job_role_arn"):
        definition.registration("image", job_role_arn="not-an-arn")
    with pytest.raises(crew.SettingError, match="platform_capabilities"):
        definition.registration("image", platform_capabilities=["LAMBDA"])
    with pytest.raises(crew.SettingError, match="execution_role_arn"):
        definition.registration("image", platform_capabilities="FARGATE")


LOCAL_CONTROLLER = [
    ("name", None), ("workers", 1), ("host", "127.0.0.1"), ("port", None), ("tls", None), ("serializer", None),
    ("profile", None), ("seconds_interval", 0.25), ("seconds_timeout", 60.0), ("seconds_launch", 30.0),
    ("seconds_idle", math.inf), ("seconds_wall", math.inf), ("tasks_max", math.inf), ("tasks_timers", 0),
    ("reset_globals", True), ("reset_modules", False), ("garbage_collection", False), ("python", None),
    ("metrics", None), ("crashes_max", 5), ("backup", None),
]
"""crew_local.local_controller's arguments and defaults, which every plugin helper takes."""


def test_controller_takes_local_controller_arguments():
    import inspect

    ours = inspect.signature(aws_batch_controller).parameters
    assert list(ours)[: len(LOCAL_CONTROLLER)] == [name for name, _ in LOCAL_CONTROLLER]
    differ = {name for name, default in LOCAL_CONTROLLER if ours[name].default != default}
    # host: an address the VPC can reach; seconds_launch: containers start slower than local processes;
    # tls and seconds_idle: task data crosses a real network, idle workers give their allocation back
    assert differ == {"host", "seconds_launch", "tls", "seconds_idle"}
    assert ours["host"].default is None and ours["seconds_launch"].default == 60
    assert ours["tls"].default == crew.TLS(mode="automatic") and ours["seconds_idle"].default == 300
    assert {"job_queue", "job_definition"} <= {name for name, item in ours.items() if item.default is inspect.Parameter.empty}
