"""The files users install: the sdists and wheels `nox -s build` puts in dist/.

The test sessions install the packages from those files by name (``--find-links dist/``), so a
missing dependency, entry point or package-data file fails the tests that need it; these tests
check the files themselves: what each wheel holds and declares, against the sources and against
the Pythons that noxfile.py tests. Without dist/ they skip on a developer's machine (run
``nox -s build``), and fail in CI.
"""

import ast
import email.parser
import os
import pathlib
import re
import tarfile
import zipfile

import crew
import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
PACKAGES = sorted(path.parent.name for path in (ROOT / "packages").glob("*/pyproject.toml"))


def _project(package):
    return tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]


def _noxfile_value(name):
    """A list assigned at the top of noxfile.py (read without importing nox)."""
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"noxfile.py assigns no {name}")


def _artifact(package, kind):
    version = _project(package)["version"]
    stem = f"{package.replace('-', '_')}-{version}"
    path = DIST / (f"{stem}-py3-none-any.whl" if kind == "wheel" else f"{stem}.tar.gz")
    if not path.is_file():
        message = f"{path.name} is not in dist/: run `nox -s build`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(item for item in archive.namelist() if item.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _wheel_entry_points(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next((item for item in archive.namelist() if item.endswith(".dist-info/entry_points.txt")), None)
        text = archive.read(name).decode() if name else ""
    groups, group = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            group = groups.setdefault(line.strip("[]"), {})
        elif "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            group[key] = value
    return groups


# ---------------------------------------------------------------------- declared = tested
def test_declared_pythons_are_the_tested_pythons():
    """Every package declares requires-python >= the oldest tested Python, and a classifier for
    exactly each Python that noxfile.py runs the tests on."""
    pythons = _noxfile_value("PYTHONS")
    assert _noxfile_value("MAIN_PYTHON") in pythons
    oldest = min(pythons, key=lambda version: tuple(map(int, version.split("."))))
    for package in PACKAGES:
        project = _project(package)
        assert project["requires-python"] == f">={oldest}", package
        declared = [item.rsplit(" :: ", 1)[1] for item in project.get("classifiers", [])
                    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", item)]
        assert declared == pythons, (package, declared)


def test_every_package_is_built_and_tested_by_nox():
    listed = set(_noxfile_value("PLUGINS")) | {"crew-core"}
    assert listed == set(PACKAGES), "noxfile.py's PLUGINS must list every package under packages/"


# ---------------------------------------------------------------------- the wheels
@pytest.mark.parametrize("package", PACKAGES)
def test_wheel_metadata(package):
    project = _project(package)
    metadata = _metadata(_artifact(package, "wheel"))
    assert metadata["Name"] == package and metadata["Version"] == project["version"]
    assert metadata["Requires-Python"] == project["requires-python"]
    requires = metadata.get_all("Requires-Dist") or []
    for dependency in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", dependency).group(0)
        assert any(item.startswith(name) for item in requires), (package, dependency, requires)
    if package != "crew-core":
        assert f"crew-core=={crew.__version__}" in requires, requires
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert set(project.get("optional-dependencies", {})) == extras


@pytest.mark.parametrize("package", PACKAGES)
def test_wheel_holds_every_source_file_and_entry_point(package):
    """Every file under src/ (modules, templates, py.typed) is in the wheel, and so is every
    entry point and console script the package declares."""
    wheel = _artifact(package, "wheel")
    source = ROOT / "packages" / package / "src"
    expected = {str(path.relative_to(source)) for path in source.rglob("*")
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
    assert expected - held == set(), f"missing from {wheel.name}: {sorted(expected - held)}"
    project = _project(package)
    declared = {group: dict(entries) for group, entries in project.get("entry-points", {}).items()}
    if "scripts" in project:
        declared["console_scripts"] = dict(project["scripts"])
    assert _wheel_entry_points(wheel) == declared


@pytest.mark.parametrize("package", PACKAGES)
def test_sdist_builds_the_same_package(package):
    """The sdist (which the wheel is built from) holds the project file, the README and the sources."""
    with tarfile.open(_artifact(package, "sdist")) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names
    source = ROOT / "packages" / package / "src"
    modules = {str(path.relative_to(source.parent)) for path in source.rglob("*.py")}
    assert modules <= names, sorted(modules - names)


def test_tests_run_against_the_installed_wheels():
    """In CI the suite runs on the packages installed from dist/, not on the source tree."""
    if not os.environ.get("CI"):
        pytest.skip("a developer's virtualenv may install the packages editable")
    for module in ("crew", "crew_local"):
        path = pathlib.Path(__import__(module).__file__).resolve()
        assert ROOT / "packages" not in path.parents, f"{module} imported from the source tree: {path}"
