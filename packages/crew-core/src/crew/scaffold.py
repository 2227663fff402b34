"""``crew new-plugin NAME``: a new launcher plugin package with crew-local's shape.

The package it writes (``crew-NAME/``) has a launcher, a monitor, a ``NAME_controller`` helper, a
[`crew.Plugin`][crew.Plugin] registered under the ``crew.launchers`` entry point, a README, and
tests that run the [`crew.testing`][crew.testing] conformance suite. Its launcher starts workers as
processes of this machine, so the package passes its tests before its author changes a line; the author then
replaces the marked parts with the platform's own calls.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from .errors import CrewError, SettingError

__all__ = ["FILES", "names", "new_plugin", "render", "render_names", "template"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RESERVED = {"core", "crew", "testing", "local"}

_TEMPLATES = "_templates"
"""The package-data folder of ``crew`` that holds the templates (``string.Template`` syntax)."""

FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/$module/__init__.py": "__init__.py.tmpl",
    "src/$module/launcher.py": "launcher.py.tmpl",
    "src/$module/monitor.py": "monitor.py.tmpl",
    "src/$module/controller.py": "controller.py.tmpl",
    "tests/test_conformance.py": "test_conformance.py.tmpl",
    "tests/test_plugin.py": "test_plugin.py.tmpl",
}
"""Each file of a new plugin (its path a template too) and the template it is rendered from.

The launcher, controller and monitor templates are crew-local's own files with the plugin's names
as placeholders: rendered for the name ``local``, they are crew-local's files, byte for byte (a
test checks it), so the two cannot drift apart."""


def names(name: str, check: bool = True) -> dict[str, str]:
    """The names a plugin called ``name`` uses: distribution, module, class prefix, crew version.

    ``check=False`` skips the check of ``name`` (for :func:`render_names` of crew-local's ``local``).

    >>> names("my_cluster")["Name"], names("my_cluster")["dist"], names("my_cluster")["module"]
    ('MyCluster', 'crew-my-cluster', 'crew_my_cluster')
    """
    from . import __version__

    if check and (not isinstance(name, str) or not _NAME.fullmatch(name) or keyword.iskeyword(name) or name in _RESERVED):
        raise SettingError(
            f"the plugin name must be lower case letters, digits and _ (starting with a letter), "
            f"not a Python keyword nor one of {sorted(_RESERVED)}; got {name!r}")
    return {
        "name": name,
        "Name": "".join(part.capitalize() for part in name.split("_") if part),
        "dist": "crew-" + name.replace("_", "-"),
        "module": "crew_" + name,
        "crew_version": __version__,
    }


def render(name: str) -> dict[str, str]:
    """The files of plugin ``name``: ``{relative path: text}`` (a pure function)."""
    return render_names(names(name))


def template(filename: str) -> str:
    """The text of one template shipped in ``crew/_templates``."""
    from importlib.resources import files

    return files(__package__).joinpath(_TEMPLATES).joinpath(filename).read_text(encoding="utf-8")


def render_names(values: dict[str, str]) -> dict[str, str]:
    """The plugin files for the names ``values`` (see :func:`names`), which are not checked: so
    ``names``' reserved words (``local``) render too."""
    return {Template(path).substitute(values): Template(template(source)).substitute(values) for path, source in FILES.items()}


def new_plugin(name: str, directory: str | Path = ".", force: bool = False) -> Path:
    """Write plugin ``name`` into ``directory/crew-NAME/`` and return that folder.

    Refuses to write into an existing folder unless ``force`` (then it overwrites the files it
    writes and leaves the others).
    """
    files = render(name)
    target = Path(directory) / names(name)["dist"]
    if target.exists() and not force:
        raise CrewError(f"{target} already exists; choose another name or pass --force to overwrite its files")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target
