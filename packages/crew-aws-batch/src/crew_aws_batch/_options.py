"""The AWS Batch options of a launcher: validation and the submit_job request built from them.

Everything here is a pure function of its arguments, so the exact requests are unit-tested.
"""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any

from crew import validate
from crew.errors import SettingError

ARRAY_MAX = 10_000
"""AWS Batch array jobs hold 2 to 10,000 children."""
NAME_MAX = 128
"""AWS Batch job names are at most 128 characters."""
RESERVED_VARIABLES = ("CREW_SECRET", "CREW_TLS_CERTIFICATE")
"""Variables crew sets for its workers; the user's environment may not set them."""

DEFAULT_ENVIRONMENT = {"PYTHONUNBUFFERED": "1"}
"""Set for every worker (the user's environment may override it): output reaches CloudWatch at once."""

_CONTAINER_OVERRIDE_KEYS = ("vcpus", "memory", "instanceType", "environment", "resourceRequirements")
_NODE_OVERRIDE_KEYS = ("numNodes", "nodePropertyOverrides")
_EKS_OVERRIDE_KEYS = ("podProperties", "metadata")
_RETRY_KEYS = ("attempts", "evaluateOnExit")


class _Options(types.SimpleNamespace):
    """The validated AWS Batch options of one launcher, as the request builders read them.

    :class:`crew_aws_batch.AwsBatchLauncher` declares and validates each option, once, and keeps
    the results here; nothing may change them afterwards.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the options of a launcher are read-only: cannot set {name}")


def _memory_mebibytes(memory_gigabytes: Any, memory_mebibytes: Any) -> int | None:
    """The memory request in whole MiB from either option (:func:`crew.validate.megabytes`)."""
    gigabytes = validate.number("memory_gigabytes", memory_gigabytes, allow_none=True, exclusive_minimum=True)
    mebibytes = validate.integer("memory_mebibytes", memory_mebibytes, minimum=1, allow_none=True)
    if gigabytes is not None and mebibytes is not None:
        raise SettingError("give memory_gigabytes or memory_mebibytes, not both")
    if gigabytes is not None:
        return validate.megabytes(gigabytes)
    return mebibytes


def _check_keys(name: str, value: Mapping[str, Any] | None, allowed: Sequence[str]) -> None:
    if value is None:
        return
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise SettingError(f"{name} may only hold the keys {', '.join(allowed)}, not {', '.join(unknown)}")


def _check_reserved(name: str, names: Sequence[str]) -> None:
    taken = sorted(set(names) & set(RESERVED_VARIABLES))
    if taken:
        raise SettingError(f"{name} may not set {', '.join(taken)}: crew passes it to the workers itself")


def _environment_names(entries: Any, name: str) -> list[str]:
    """Names in an AWS ``[{"name": ..., "value": ...}]`` list, checking its shape."""
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(
        isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and isinstance(entry.get("value"), str)
        for entry in entries
    ):
        raise SettingError(f"{name} must be a list of {{'name': str, 'value': str}} dicts, not {entries!r}")
    return [entry["name"] for entry in entries]


def _job_name_option(job_name: Any) -> str | None:
    """``job_name``: None, or a prefix with at least one letter or digit."""
    job_name = validate.text("job_name", job_name, allow_none=True)
    if job_name is not None and not _sanitise_name(job_name, strict=False):
        raise SettingError(f"job_name must contain a letter or digit, not {job_name!r}")
    return job_name


def _environment(environment: Any) -> dict | None:
    """``environment``: string variables, none of which crew sets itself."""
    environment = validate.mapping("environment", environment, values=str)
    _check_reserved("environment", list(environment or {}))
    return environment


def _tags(tags: Any) -> dict | None:
    """``tags``: at most 50 string tags."""
    tags = validate.mapping("tags", tags, values=str)
    if tags is not None and len(tags) > 50:
        raise SettingError(f"tags may hold at most 50 tags, not {len(tags)}")
    return tags


def _overrides(container_overrides: Any, node_overrides: Any, eks_properties_override: Any) -> dict[str, Any]:
    """The three override structures (copied), of which at most one may be given."""
    container_overrides = validate.mapping("container_overrides", container_overrides)
    _check_keys("container_overrides", container_overrides, _CONTAINER_OVERRIDE_KEYS)
    if container_overrides is not None:
        names = _environment_names(container_overrides.get("environment"), "container_overrides['environment']")
        _check_reserved("container_overrides['environment']", names)
    node_overrides = validate.mapping("node_overrides", node_overrides)
    _check_keys("node_overrides", node_overrides, _NODE_OVERRIDE_KEYS)
    eks_properties_override = validate.mapping("eks_properties_override", eks_properties_override)
    _check_keys("eks_properties_override", eks_properties_override, _EKS_OVERRIDE_KEYS)
    given = {
        "container_overrides": container_overrides,
        "node_overrides": node_overrides,
        "eks_properties_override": eks_properties_override,
    }
    chosen = [name for name, value in given.items() if value is not None]
    if len(chosen) > 1:
        raise SettingError(
            "give at most one of container_overrides, node_overrides, eks_properties_override, "
            f"not {' and '.join(chosen)}"
        )
    if eks_properties_override is not None:
        containers = eks_properties_override.get("podProperties", {}).get("containers", [])
        if not isinstance(containers, list) or not all(isinstance(item, Mapping) for item in containers):
            raise SettingError("eks_properties_override['podProperties']['containers'] must be a list of dicts")
    if node_overrides is not None:
        targets = node_overrides.get("nodePropertyOverrides", [])
        if not isinstance(targets, list) or not all(isinstance(item, Mapping) for item in targets):
            raise SettingError("node_overrides['nodePropertyOverrides'] must be a list of dicts")
    return copy.deepcopy(given)


def _retry_strategy(value: Any) -> dict[str, Any] | None:
    """``retry_strategy``: None, a number of attempts (1-10), or AWS's RetryStrategy dict."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return {"attempts": validate.integer("retry_strategy", value, minimum=1, maximum=10)}
    strategy = validate.mapping("retry_strategy", value) or {}  # never None: value is not None
    _check_keys("retry_strategy", strategy, _RETRY_KEYS)
    if "attempts" in strategy:
        validate.integer("retry_strategy['attempts']", strategy["attempts"], minimum=1, maximum=10)
    return copy.deepcopy(strategy)


def _sanitise_name(text: str, strict: bool = True) -> str:
    """``text`` as an AWS Batch job name: only ``[A-Za-z0-9_-]``, starting with a letter or digit,
    at most 128 characters. With ``strict=False`` the result may be empty."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:NAME_MAX]
    if strict and not name:
        return "crew"
    return name


def _job_name(prefix: str, launch: str, part: int | None = None) -> str:
    """The name of the job(s) of one scaling round, keeping the round's id when truncating."""
    suffix = _sanitise_name(f"{launch}" + (f"-{part}" if part is not None else ""), strict=False)
    suffix = "-" + suffix if suffix else ""
    head = _sanitise_name(prefix)[: NAME_MAX - len(suffix)]
    return head + suffix


def _split(n: int) -> list[int]:
    """Array sizes for ``n`` workers: [1] (a plain job), [n] up to 10,000, else near-equal parts
    of at most 10,000 each (every part >= 2, since a one-child array is not allowed)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    parts = -(-n // ARRAY_MAX)
    base, extra = divmod(n, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def _resource_requirements(options: _Options) -> dict[str, str]:
    """VCPU / MEMORY / GPU values (as AWS's strings) set by the cpus, memory and gpus options."""
    values: dict[str, str] = {}
    if options.cpus is not None:
        values["VCPU"] = _number_text(options.cpus)
    if options.memory_mebibytes is not None:
        values["MEMORY"] = str(options.memory_mebibytes)
    if options.gpus is not None:
        values["GPU"] = str(options.gpus)
    return values


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _merge_environment(entries: list[dict[str, str]] | None, *extras: Mapping[str, str] | None) -> list[dict[str, str]]:
    """AWS environment entries with the variables of ``extras`` set on top (later ones win)."""
    merged = {entry["name"]: entry["value"] for entry in entries or []}
    for extra in extras:
        merged.update(extra or {})
    return [{"name": name, "value": value} for name, value in merged.items()]


def _container_overrides(
    base: Mapping[str, Any] | None, options: _Options, command: list[str], secret: Mapping[str, str]
) -> dict[str, Any]:
    """A ContainerOverrides structure: the user's, plus crew's command, environment and resources."""
    overrides = copy.deepcopy(dict(base or {}))
    overrides["command"] = list(command)
    overrides["environment"] = _merge_environment(
        overrides.get("environment"), DEFAULT_ENVIRONMENT, options.environment, secret
    )
    wanted = _resource_requirements(options)
    if wanted:
        kept = [item for item in overrides.get("resourceRequirements", []) if item.get("type") not in wanted]
        overrides["resourceRequirements"] = kept + [{"type": kind, "value": value} for kind, value in wanted.items()]
    return overrides


def _eks_override(options: _Options, command: list[str], secret: Mapping[str, str]) -> dict[str, Any]:
    """An EksPropertiesOverride whose first container runs crew's command with its environment."""
    override = copy.deepcopy(dict(options.eks_properties_override or {}))
    pod = override.setdefault("podProperties", {})
    containers = pod.setdefault("containers", [])
    if not containers:
        containers.append({})
    first = containers[0]
    first["command"] = list(command)
    first["env"] = _merge_environment(first.get("env"), DEFAULT_ENVIRONMENT, options.environment, secret)
    limits = {}
    if options.cpus is not None:
        limits["cpu"] = _number_text(options.cpus)
    if options.memory_mebibytes is not None:
        limits["memory"] = f"{options.memory_mebibytes}Mi"
    if options.gpus is not None:
        limits["nvidia.com/gpu"] = str(options.gpus)
    if limits:
        resources = first.setdefault("resources", {})
        resources["limits"] = {**resources.get("limits", {}), **limits}
    return override


def _node_overrides(options: _Options, command: list[str], secret: Mapping[str, str]) -> dict[str, Any]:
    """NodeOverrides whose node ranges run crew's command (all nodes when none are named)."""
    override = copy.deepcopy(dict(options.node_overrides or {}))
    targets = override.setdefault("nodePropertyOverrides", [])
    if not targets:
        targets.append({"targetNodes": "0:"})
    for target in targets:
        target["containerOverrides"] = _container_overrides(target.get("containerOverrides"), options, command, secret)
    return override


def _submit_request(
    options: _Options, name: str, command: list[str], secret: Mapping[str, str], size: int
) -> dict[str, Any]:
    """The keyword arguments of one ``batch.submit_job`` call (an array job when ``size`` > 1)."""
    if not 1 <= size <= ARRAY_MAX:
        raise ValueError(f"an AWS Batch job holds 1 to {ARRAY_MAX} workers, not {size}")
    request: dict[str, Any] = {
        "jobName": name,
        "jobQueue": options.job_queue,
        "jobDefinition": options.job_definition,
    }
    if size > 1:
        request["arrayProperties"] = {"size": size}
    if options.eks_properties_override is not None:
        request["eksPropertiesOverride"] = _eks_override(options, command, secret)
    elif options.node_overrides is not None:
        request["nodeOverrides"] = _node_overrides(options, command, secret)
    else:
        request["containerOverrides"] = _container_overrides(options.container_overrides, options, command, secret)
    if options.parameters is not None:
        request["parameters"] = dict(options.parameters)
    if options.tags is not None:
        request["tags"] = dict(options.tags)
    if options.propagate_tags is not None:
        request["propagateTags"] = options.propagate_tags
    if options.share_identifier is not None:
        request["shareIdentifier"] = options.share_identifier
    if options.scheduling_priority_override is not None:
        request["schedulingPriorityOverride"] = options.scheduling_priority_override
    if options.retry_strategy is not None:
        request["retryStrategy"] = copy.deepcopy(dict(options.retry_strategy))
    if options.timeout is not None:
        request["timeout"] = {"attemptDurationSeconds": options.timeout}
    return request


def _job_settings(*, cpus: Any = None, gpus: Any = None, memory_gigabytes: Any = None, memory_mebibytes: Any = None,
                  tags: Any = None, propagate_tags: Any = None, share_identifier: Any = None,
                  scheduling_priority_override: Any = None, parameters: Any = None, retry_strategy: Any = None,
                  timeout: Any = None) -> dict[str, Any]:
    """The job settings a launcher and a definition's ``submit`` share, each validated here, once."""
    return {
        "cpus": validate.number("cpus", cpus, allow_none=True, exclusive_minimum=True),
        "gpus": validate.integer("gpus", gpus, minimum=1, allow_none=True),
        "memory_mebibytes": _memory_mebibytes(memory_gigabytes, memory_mebibytes),
        "tags": _tags(tags),
        "propagate_tags": None if propagate_tags is None else validate.flag("propagate_tags", propagate_tags),
        "share_identifier": validate.text("share_identifier", share_identifier, allow_none=True),
        "scheduling_priority_override": validate.integer(
            "scheduling_priority_override", scheduling_priority_override, minimum=0, maximum=9999, allow_none=True),
        "parameters": validate.mapping("parameters", parameters, values=str),
        "retry_strategy": _retry_strategy(retry_strategy),
        "timeout": validate.integer("timeout", timeout, minimum=60, allow_none=True),
    }
