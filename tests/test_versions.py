"""All packages are versioned together: one version, and every plugin pins exactly that crew-core."""

import pathlib
import re

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = sorted(path.parent for path in (ROOT / "packages").glob("*/pyproject.toml"))


def _project(path: pathlib.Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


def test_every_package_is_found():
    names = {path.name for path in PACKAGES}
    assert {"crew-core", "crew-local", "crew-slurm", "crew-sge", "crew-aws-batch"} <= names, names


def test_one_version_everywhere():
    versions = {path.name: _project(path)["version"] for path in PACKAGES}
    assert len(set(versions.values())) == 1, versions


def test_plugins_pin_the_core_exactly():
    version = _project(ROOT / "packages" / "crew-core")["version"]
    for path in PACKAGES:
        if path.name == "crew-core":
            continue
        pins = [dep for dep in _project(path)["dependencies"] if re.match(r"crew-core\b", dep)]
        assert pins == [f"crew-core=={version}"], (path.name, pins)


def test_module_versions_match():
    version = _project(ROOT / "packages" / "crew-core")["version"]
    for path in PACKAGES:
        init = next((path / "src").glob("*/__init__.py"))
        found = re.search(r'__version__ = "([^"]+)"', init.read_text())
        assert found and found.group(1) == version, init


def test_every_plugin_registers_an_entry_point():
    for path in PACKAGES:
        if path.name == "crew-core":
            continue
        entries = _project(path).get("entry-points", {}).get("crew.launchers", {})
        assert entries, f"{path.name} registers nothing under crew.launchers"
