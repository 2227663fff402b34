"""One declaration per option: every plugin's ``<name>_controller(...)`` helper is made here.

A plugin declares its options once, as the arguments of its launcher's ``__init__`` (validated
there with :mod:`crew.validate`). :func:`controller_helper` turns the launcher class into the
helper: a function whose signature is the union of the options of :class:`crew.Client`,
:class:`crew.Controller` and the launcher (its ``__init__`` and those of the base classes it
forwards ``**options`` to), with their real defaults, and whose body is
:func:`build_controller`::

    slurm_controller = controller_helper(SlurmLauncher, name="slurm_controller", doc="...")
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import SettingError
from .tls import TLS

if TYPE_CHECKING:  # pragma: no cover
    from ._controller import Controller
    from .client import Client

__all__ = ["CLUSTER_DEFAULTS", "COMMON_OPTIONS", "CLIENT_OPTIONS", "CONTROLLER_OPTIONS", "build_controller", "controller_helper"]

CLIENT_OPTIONS = ("host", "port", "tls", "serializer", "profile", "seconds_interval", "seconds_timeout",
                  "max_frame_bytes", "transport")
"""The options of :class:`crew.Client` a helper takes."""
CONTROLLER_OPTIONS = ("reset_globals", "reset_modules", "garbage_collection", "crashes_max", "backup")
"""The options of :class:`crew.Controller` a helper takes."""
COMMON_OPTIONS = (
    "name", "workers", "host", "port", "tls", "serializer", "profile", "seconds_interval", "seconds_timeout",
    "seconds_launch", "seconds_idle", "seconds_wall", "tasks_max", "tasks_timers", "reset_globals",
    "reset_modules", "garbage_collection", "python", "metrics", "crashes_max", "backup", "metrics_seconds",
    "max_frame_bytes", "transport",
)
"""Every helper's first arguments, in this order (positional or keyword); a launcher's own options
follow, keyword-only, the most derived class's first."""
CLUSTER_DEFAULTS: dict[str, Any] = {"tls": TLS(mode="automatic"), "seconds_idle": 300.0}
"""The helper defaults of the cluster and cloud plugins (SLURM, Grid Engine, LSF, PBS, AWS Batch),
over their declared ones, as crew.cluster has them: task data crosses a real network, so it is
encrypted (a fresh self-signed certificate per controller, which workers verify); and an idle
worker gives its allocation back after five minutes. ``local_controller`` keeps its defaults."""
_SHARED = ("tls", "seconds_interval", "seconds_timeout")
"""Client options the launcher gets too."""
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def build_controller(launcher: type, **options: Any) -> Any:
    """A validated, unstarted controller: a :class:`crew.Client`, a ``launcher`` and a
    :class:`crew.Controller`, each given its share of ``options``.

    Client options (``host``, ``port``, ``tls`` ...) go to the client, controller options
    (``reset_globals``, ``crashes_max``, ``backup`` ...) to the controller, and everything else to
    the launcher, which also gets ``tls``, ``seconds_interval`` and ``seconds_timeout``. It is the
    body of every helper :func:`controller_helper` makes.
    """
    Client, Controller = _parts()
    client_options = {key: options.pop(key) for key in CLIENT_OPTIONS if key in options}
    controller_options = {key: options.pop(key) for key in CONTROLLER_OPTIONS if key in options}
    for shared in _SHARED:
        if shared in client_options:
            options[shared] = client_options[shared]
    client = Client(**client_options)
    return Controller(client, launcher(**options), **controller_options).validate()


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters of ``function`` with annotations evaluated where they can be (Python 3.10+)."""
    try:
        signature = inspect.signature(function, eval_str=True)
    except (TypeError, NameError, SyntaxError, AttributeError):  # Python 3.9, or a name known to type checkers only
        signature = inspect.signature(function)
    return list(signature.parameters.values())


def launcher_options(launcher: type) -> dict[type, list[inspect.Parameter]]:
    """The options a launcher class takes, by the class whose ``__init__`` declares them.

    Follows the ``__init__`` of each class of the MRO as long as the one before forwards
    ``**options``; the most derived declaration of a name wins.
    """
    found: dict[type, list[inspect.Parameter]] = {}
    seen: set[str] = set()
    for klass in launcher.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        parameters = _parameters(vars(klass)["__init__"])[1:]  # without self
        own = [item for item in parameters if item.kind not in _VARIADIC and item.name not in seen]
        if own:
            found[klass] = own
        seen.update(item.name for item in own)
        if not any(item.kind is inspect.Parameter.VAR_KEYWORD for item in parameters):
            break
    return found


def _parts() -> tuple[type[Client], type[Controller]]:
    """crew.Client and crew.Controller, through the package's lazy names (where they live may change)."""
    import crew

    return crew.Client, crew.Controller


def _part_options() -> dict[type, list[inspect.Parameter]]:
    Client, Controller = _parts()
    return {
        Client: [item for item in _parameters(Client.__init__) if item.name in CLIENT_OPTIONS],
        Controller: [item for item in _parameters(Controller.__init__) if item.name in CONTROLLER_OPTIONS],
    }


def helper_signature(launcher: type, defaults: Mapping[str, Any] | None = None) -> inspect.Signature:
    """The signature of ``launcher``'s helper: :data:`COMMON_OPTIONS` first (positional or keyword),
    then the launcher's own options (keyword-only); ``defaults`` replace declared defaults."""
    _, Controller = _parts()
    declared: dict[str, inspect.Parameter] = {}
    for parameters in [*launcher_options(launcher).values(), *_part_options().values()]:
        for item in parameters:
            declared.setdefault(item.name, item)  # the launcher's declaration wins
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(declared))
    if unknown:
        raise SettingError(f"defaults name {', '.join(map(repr, unknown))}, which {launcher.__name__} does not take")
    ordered = [name for name in COMMON_OPTIONS if name in declared]
    ordered += [name for name in declared if name not in COMMON_OPTIONS]
    result = []
    for name in ordered:
        item = declared[name]
        default = defaults.get(name, item.default)
        positional = name in COMMON_OPTIONS and default is not inspect.Parameter.empty
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if positional else inspect.Parameter.KEYWORD_ONLY
        result.append(item.replace(kind=kind, default=default))
    return inspect.Signature(result, return_annotation=Controller)


def _describe(launcher: type) -> str:
    """The arguments section of a helper's docstring: the options, by the class declaring them."""
    groups = {**launcher_options(launcher), **_part_options()}
    lines = ["Arguments, by the class that declares (and documents) them:"]
    for klass, parameters in groups.items():
        names = ", ".join(f"``{item.name}``" for item in parameters)
        lines += textwrap.wrap(f"{klass.__module__}.{klass.__qualname__}: {names}", 96,
                               initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


def controller_helper(
    launcher: type,
    name: str,
    *,
    defaults: Mapping[str, Any] | None = None,
    doc: str | None = None,
    module: str | None = None,
) -> Callable[..., Any]:
    """The ``<name>_controller(...)`` helper of a plugin, made from its launcher class alone.

    The helper takes the options of :class:`crew.Client`, :class:`crew.Controller` and
    ``launcher`` (see :func:`helper_signature`), with their declared defaults, or those of
    ``defaults`` (e.g. ``{"host": "127.0.0.1"}``), and returns :func:`build_controller`'s
    validated controller, not started. An argument it does not take raises
    :class:`crew.SettingError` naming the argument and the helper. ``doc`` opens its docstring;
    a list of the options by declaring class follows. ``module`` is the helper's ``__module__``
    (default: the caller's).
    """
    signature = helper_signature(launcher, defaults)
    accepted = set(signature.parameters)

    def helper(*args: Any, **options: Any) -> Any:
        unknown = [key for key in options if key not in accepted]
        if unknown:
            raise SettingError(
                f"{', '.join(map(repr, unknown))} is not an argument of {name}(); it takes: {', '.join(signature.parameters)}"
            )
        try:
            bound = signature.bind(*args, **options)
        except TypeError as error:
            raise TypeError(f"{name}(): {error}") from None
        bound.apply_defaults()
        return build_controller(launcher, **bound.arguments)

    helper.__name__ = helper.__qualname__ = name
    helper.__module__ = module or sys._getframe(1).f_globals.get("__name__", __name__)
    helper.__signature__ = signature  # type: ignore[attr-defined]
    helper.__doc__ = "\n\n".join(part for part in (inspect.cleandoc(doc or ""), _describe(launcher)) if part)
    helper.launcher = launcher  # type: ignore[attr-defined]
    return helper
