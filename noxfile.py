"""Sessions for crew for Python.

- ``package_tests``: one session per package, in a fresh virtualenv with only crew-core and that
  package installed (not editable): proves each package's declared dependencies are enough.
- ``cross``: the cross-package tests in ``tests/`` with every package installed.
- ``tests``: both of the above (what CI runs, after starting SLURM and Grid Engine).
- ``lint``, ``docs``, ``bench``, ``bench_quick``, ``soak``, ``demo``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True

PLUGINS = ["crew-local", "crew-slurm", "crew-sge", "crew-aws-batch"]
PACKAGES = ["crew-core", *PLUGINS]
PYTEST = ["pytest", "--import-mode=importlib", "-p", "no:cacheprovider", "-rs"]


def _install(session: nox.Session, *packages: str) -> None:
    """Install packages from this repo (not editable), each with its test extra."""
    targets = [f"./packages/{package}[test]" for package in packages]
    session.install(*targets)


@nox.session
@nox.parametrize("package", PACKAGES)
def package_tests(session: nox.Session, package: str) -> None:
    packages = ["crew-core"] if package == "crew-core" else ["crew-core", package]
    if package == "crew-core":
        packages.append("crew-local")  # the core's behaviour tests run real local workers
    _install(session, *packages)
    session.run(*PYTEST, f"packages/{package}/tests", *session.posargs)


@nox.session
def cross(session: nox.Session) -> None:
    _install(session, *PACKAGES)
    session.install("-r", "tests/requirements.txt")
    session.run(*PYTEST, "tests", *session.posargs)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    for package in PACKAGES:
        session.notify(f"package_tests(package='{package}')")
    session.notify("cross")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, then mypy (settings in mypy.ini): ``--strict`` on crew-core, normal mode on the plugins."""
    session.install("ruff==0.17.*")
    session.run("ruff", "check", "packages", "tests", "bench", "noxfile.py")
    # The packages are installed (not editable, with their py.typed markers) so that mypy sees
    # crew-core's annotations from the plugins and the annotations of their dependencies; tomli
    # lets mypy check the Python < 3.11 branch that reads TOML with it, pytest the plugins' test kits.
    session.install("mypy==2.4.*", "tomli", "pytest", *[f"./packages/{package}" for package in PACKAGES])
    session.run("mypy", "--config-file", "mypy.ini", "--strict", "packages/crew-core/src/crew")
    session.run("mypy", "--config-file", "mypy.ini",
                *[f"packages/{plugin}/src/{plugin.replace('-', '_')}" for plugin in PLUGINS])


@nox.session
def docs(session: nox.Session) -> None:
    _install(session, *PACKAGES)
    session.install("-r", "docs/requirements.txt")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.install("-r", "bench/requirements.txt")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def bench_quick(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.install("-r", "bench/requirements.txt")
    session.run("python", "bench/run.py", "--quick", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.run("python", "tests/soak.py", "--tasks", "1000000", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    _install(session, "crew-core", "crew-local")
    session.run("python", "-m", "crew_local.demo")
