"""Find installed launcher plugins and build their controllers with the site's defaults.

Each plugin package registers a [`crew.Plugin`][crew.Plugin] under the entry-point group
``crew.launchers``. Nothing is imported until asked for: ``import crew`` loads no plugin.

``crew.controller("slurm", workers=4)`` builds a controller with that plugin's helper
(``slurm_controller``), after filling in defaults from the site configuration, read in order
(later files win, explicit arguments win over all):

1. ``/etc/crew/crew.toml`` (the cluster's administrators),
2. ``$XDG_CONFIG_HOME/crew/crew.toml`` or ``~/.config/crew/crew.toml`` (the user),
3. the file named by the ``CREW_CONFIG`` environment variable.

A configuration file looks like::

    [defaults]              # every launcher
    seconds_idle = 300

    [launchers.slurm]       # the arguments of slurm_controller()
    partition = "short"
    account = "lab"
    script_lines = ["module load python/3.11"]

    [monitors.slurm]        # the arguments of SlurmMonitor() (used by the crew command)
    job_name = "crew"
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CrewError, SettingError
from .plugins import ENTRY_POINT_GROUP, Plugin

__all__ = [
    "SYSTEM_CONFIG",
    "Installed",
    "PluginNotFoundError",
    "config_paths",
    "controller",
    "defaults",
    "installed",
    "load",
    "monitor",
    "read_config",
]

SYSTEM_CONFIG = Path("/etc/crew/crew.toml")
"""The site-wide configuration file, read first."""

_SECTIONS = ("defaults", "launchers", "monitors")


class PluginNotFoundError(CrewError, LookupError):
    """No installed package registers a launcher plugin of that name."""


@dataclass(frozen=True)
class Installed:
    """One entry of the ``crew.launchers`` group, not yet imported."""

    name: str
    value: str
    """Where the plugin object lives, e.g. ``crew_slurm:plugin``."""
    distribution: str | None
    version: str | None


def _entry_points() -> list[Any]:
    from importlib import metadata

    found = metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=ENTRY_POINT_GROUP))
    return list(found.get(ENTRY_POINT_GROUP, []))  # Python 3.9


def installed() -> dict[str, Installed]:
    """The launcher plugins installed in this environment, by name (nothing is imported)."""
    plugins: dict[str, Installed] = {}
    for entry in _entry_points():
        dist = getattr(entry, "dist", None)
        name = dist.metadata["Name"] if dist is not None else None
        plugins.setdefault(entry.name, Installed(entry.name, entry.value, name, dist.version if dist else None))
    return dict(sorted(plugins.items()))


def load(name: str) -> Plugin:
    """Import the plugin registered as ``name`` and return its [`crew.Plugin`][crew.Plugin].

    Raises [`PluginNotFoundError`][crew.discovery.PluginNotFoundError], naming the package to
    install, when none is registered.
    """
    if not isinstance(name, str) or not name:
        raise SettingError(f"the launcher name must be a non-empty string, not {name!r}")
    entries = [entry for entry in _entry_points() if entry.name == name]
    if not entries:
        known = ", ".join(installed()) or "none"
        raise PluginNotFoundError(
            f"no crew launcher plugin named {name!r} is installed (installed: {known}); "
            f"install it with: pip install crew-{name.replace('_', '-')}")
    try:
        plugin = entries[0].load()
    except Exception as error:
        raise CrewError(f"the {name!r} launcher plugin ({entries[0].value}) failed to import: "
                        f"{type(error).__name__}: {error}") from error
    if not isinstance(plugin, Plugin):
        raise CrewError(f"the entry point {name!r} ({entries[0].value}) is not a crew.Plugin but {plugin!r}")
    return plugin


# ---------------------------------------------------------------------- site configuration
def config_paths() -> list[Path]:
    """The configuration files crew reads, in order (later ones win); they need not exist,
    except the file ``CREW_CONFIG`` names."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    paths = [SYSTEM_CONFIG, Path(base) / "crew" / "crew.toml"]
    if os.environ.get("CREW_CONFIG"):
        paths.append(Path(os.environ["CREW_CONFIG"]).expanduser())
    return paths


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python < 3.11
        import tomli as tomllib
    loaded: dict[str, Any] = tomllib.loads(text)
    return loaded


def read_config(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """One configuration file, checked: ``{"defaults": {...}, "launchers": {name: {...}}, "monitors": {...}}``."""
    path = Path(path)
    try:
        data = _toml_loads(path.read_text())
    except OSError as error:
        raise SettingError(f"cannot read the crew configuration {path}: {error.strerror or error}") from None
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise SettingError(f"{path} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise SettingError(f"{path}: unknown section(s) {unknown}; allowed: {list(_SECTIONS)}")
    config: dict[str, dict[str, Any]] = {"defaults": {}, "launchers": {}, "monitors": {}}
    if not isinstance(data.get("defaults", {}), dict):
        raise SettingError(f"{path}: [defaults] must be a table")
    config["defaults"] = dict(data.get("defaults", {}))
    for section in ("launchers", "monitors"):
        tables = data.get(section, {})
        if not isinstance(tables, dict) or not all(isinstance(value, dict) for value in tables.values()):
            raise SettingError(f"{path}: [{section}] must hold one table per launcher, like [{section}.slurm]")
        config[section] = {name: dict(values) for name, values in tables.items()}
    return config


def defaults(name: str, kind: str = "launchers", paths: list[Path] | None = None) -> dict[str, tuple[Any, Path]]:
    """The site defaults for launcher ``name``: ``{argument: (value, file it came from)}``.

    ``kind`` is ``"launchers"`` (arguments of the controller helper; ``[defaults]`` applies too)
    or ``"monitors"`` (arguments of the monitor).
    """
    if kind not in ("launchers", "monitors"):
        raise SettingError(f"kind must be 'launchers' or 'monitors', not {kind!r}")
    merged: dict[str, tuple[Any, Path]] = {}
    for path in config_paths() if paths is None else paths:
        explicit = os.environ.get("CREW_CONFIG") and path == Path(os.environ["CREW_CONFIG"]).expanduser()
        if not path.is_file():
            if explicit:
                raise SettingError(f"CREW_CONFIG names {path}, which is not a file")
            continue
        config = read_config(path)
        layers = [config["defaults"]] if kind == "launchers" else []
        layers.append(config[kind].get(name, {}))
        for layer in layers:
            for key, value in layer.items():
                merged[key] = (value, path)
    return merged


def _check(function: Callable[..., Any], site: dict[str, tuple[Any, Path]], options: dict[str, Any],
           what: str) -> None:
    """Every site default and every explicit option must be an argument of ``function``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = {name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    for key, (_, path) in site.items():
        if key not in accepted:
            raise SettingError(f"{path}: {key!r} is not an argument of {what}")
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise SettingError(f"{', '.join(map(repr, unknown))} is not an argument of {what}; "
                           f"it takes: {', '.join(sorted(accepted))}")


def controller(name: str, /, **options: Any) -> Any:
    """Build the controller of launcher plugin ``name`` (not started), e.g.
    ``crew.controller("slurm", workers=4)``: site defaults first, ``options`` over them."""
    plugin = load(name)
    site = defaults(name, "launchers")
    helper = plugin.controller
    _check(helper, site, options, f"{getattr(helper, '__qualname__', helper)}() of the {name!r} launcher")
    arguments = {key: value for key, (value, _) in site.items()}
    arguments.update(options)
    return helper(**arguments)


def monitor(name: str, /, **options: Any) -> Any:
    """Build the monitor of launcher plugin ``name``: ``[monitors.NAME]`` defaults, then ``options``."""
    plugin = load(name)
    if plugin.monitor is None:
        raise CrewError(f"the {name!r} launcher plugin ({plugin.package}) has no monitor")
    site = defaults(name, "monitors")
    _check(plugin.monitor, site, options, f"{plugin.monitor.__qualname__}() of the {name!r} launcher")
    arguments = {key: value for key, (value, _) in site.items()}
    arguments.update(options)
    return plugin.monitor(**arguments)
