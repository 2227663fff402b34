"""Sessions for crew for Python.

- ``build``: an sdist and a wheel of every package (hatchling, the wheel built from the sdist) in
  ``dist/``, checked with ``twine check``. The test sessions install from those files, as
  ``pip install crew-slurm`` from an index would.
- ``package_tests``: one session per package and Python, in a fresh virtualenv with only
  crew-core and that package installed from ``dist/``: proves each package's declared
  dependencies, entry points and package data are enough. crew-core's and crew-local's tests run
  on every Python in ``PYTHONS``, the other packages' on ``MAIN_PYTHON``.
- ``cross``: the cross-package tests in ``tests/`` with every package installed, on ``MAIN_PYTHON``.
- ``tests``: ``build``, then all of the above (what CI runs, after starting SLURM and Grid Engine).
- ``lint``, ``docs``, ``bench``, ``bench_quick``, ``soak``, ``demo``.

Adding a package is one line: its name in ``PLUGINS`` (and in ``EVERY_PYTHON`` to test it on
every Python).
"""

from __future__ import annotations

import pathlib

import nox

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True

PLUGINS = ["crew-local", "crew-slurm", "crew-sge", "crew-aws-batch", "crew-ssh"]
PACKAGES = ["crew-core", *PLUGINS]
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]  # every Python the packages declare
MAIN_PYTHON = "3.11"  # the whole suite runs on this one
EVERY_PYTHON = ["crew-core", "crew-local"]  # whose own tests run on every Python in PYTHONS
PYTEST = ["pytest", "--import-mode=importlib", "-p", "no:cacheprovider", "-rs"]
ROOT = pathlib.Path(__file__).parent
DIST = ROOT / "dist"


def _needs(package: str) -> list[str]:
    """The packages a package's tests install: crew-core, the package, and crew-local for the
    core's behaviour tests (they run real local workers)."""
    return ["crew-core", "crew-local"] if package == "crew-core" else ["crew-core", package]


def _check_dist(session: nox.Session, packages: list[str]) -> None:
    """Every package's wheel is in dist/, built after its last change."""
    for package in packages:
        wheels = sorted(DIST.glob(f"{package.replace('-', '_')}-*.whl"))
        sources = [path for path in (ROOT / "packages" / package).rglob("*")
                   if path.is_file() and "tests" not in path.parts and "__pycache__" not in path.parts]
        newest = max(path.stat().st_mtime for path in sources)
        if not wheels or wheels[-1].stat().st_mtime < newest:
            session.error(f"dist/ has no wheel of {package} built after its last change: run `nox -s build` "
                          f"first (e.g. `nox -s build {session.name}`)")


def _install(session: nox.Session, *packages: str, extra: str = "test") -> None:
    """Install packages the way users do: by name, from the wheels in dist/ (``--find-links``),
    each with ``extra``; their other dependencies come from the package index."""
    _check_dist(session, list(packages))
    targets = [f"{package}[{extra}]" if extra else package for package in packages]
    fresh = [f"--reinstall-package={package}" for package in PACKAGES] if session.venv_backend == "uv" else []
    session.install("--find-links", str(DIST), *fresh, *targets)


@nox.session(python=MAIN_PYTHON)
def build(session: nox.Session) -> None:
    """sdist and wheel of every package into dist/ (the wheel from the sdist), then ``twine check``."""
    session.install("build[uv]>=1.2", "twine>=5")
    for old in DIST.glob("*"):
        old.unlink()
    for package in PACKAGES:
        session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(DIST), f"packages/{package}",
                    silent=True)
    session.run("twine", "check", "--strict", *[str(path) for path in sorted(DIST.glob("*"))])


@nox.session
@nox.parametrize("python,package", [
    (python, package) for package in PACKAGES
    for python in (PYTHONS if package in EVERY_PYTHON else [MAIN_PYTHON])
])
def package_tests(session: nox.Session, package: str) -> None:
    _install(session, *_needs(package))
    session.run(*PYTEST, f"packages/{package}/tests", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def cross(session: nox.Session) -> None:
    _install(session, *PACKAGES)
    _install(session, "crew-core", extra="joblib")  # tests/test_joblib.py
    session.install("-r", "tests/requirements.txt")
    session.run(*PYTEST, "tests", *session.posargs)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    session.notify("build")
    for package in PACKAGES:
        for python in PYTHONS if package in EVERY_PYTHON else [MAIN_PYTHON]:
            session.notify(f"package_tests(python='{python}', package='{package}')")
    session.notify("cross")


@nox.session(python=MAIN_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, then mypy (settings in mypy.ini): ``--strict`` on crew-core, normal mode on the plugins."""
    session.install("ruff==0.17.*")
    session.run("ruff", "check", "packages", "tests", "bench", "tools", "noxfile.py")
    # The packages are installed (not editable, with their py.typed markers) so that mypy sees
    # crew-core's annotations from the plugins and the annotations of their dependencies; tomli
    # lets mypy check the Python < 3.11 branch that reads TOML with it, pytest the plugins' test kits.
    session.install("mypy==2.4.*", "tomli", "pytest", *[f"./packages/{package}" for package in PACKAGES])
    session.run("mypy", "--config-file", "mypy.ini", "--strict", "packages/crew-core/src/crew")
    session.run("mypy", "--config-file", "mypy.ini",
                *[f"packages/{plugin}/src/{plugin.replace('-', '_')}" for plugin in PLUGINS])


@nox.session(python=MAIN_PYTHON)
def docs(session: nox.Session) -> None:
    _install(session, *PACKAGES)
    session.install("-r", "docs/requirements.txt")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=MAIN_PYTHON)
def bench(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.install("-r", "bench/requirements.txt")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def bench_quick(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.install("-r", "bench/requirements.txt")
    session.run("python", "bench/run.py", "--quick", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def soak(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.run("python", "tests/soak.py", "--tasks", "1000000", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The demo, with only what it needs: crew-core and crew-local from this checkout, no test tools."""
    session.install("./packages/crew-core", "./packages/crew-local")
    session.run("python", "-m", "crew_local.demo")
