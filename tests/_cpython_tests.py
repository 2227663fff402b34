"""CPython's own test modules, found at test time (never copied into this repository).

``load("test_concurrent_futures")`` imports the module from the interpreter's own ``test`` package
when it ships one; otherwise from Debian's ``libpython3.X-testsuite`` package, extracted (not
installed) into a cache folder. ``python tests/_cpython_tests.py`` fetches it ahead (tests/run.sh
does, for CI); at test time it is fetched if missing and ``apt-get`` is there.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile
import types
from typing import Optional

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PACKAGE = f"libpython{VERSION}-testsuite"
CACHE = pathlib.Path(os.environ.get("CREW_CPYTHON_TESTS") or
                     pathlib.Path(tempfile.gettempdir()) / f"crew-cpython-tests-{VERSION}")


class Unavailable(Exception):
    """CPython's test module could not be found or fetched (the message says why)."""


def _extracted(name: str) -> Optional[pathlib.Path]:
    path = CACHE / "usr" / "lib" / f"python{VERSION}" / "test" / f"{name}.py"
    return path if path.is_file() else None


def fetch() -> pathlib.Path:
    """Download Debian's test-suite package for this Python and extract it into ``CACHE``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        try:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=folder, check=True,
                           capture_output=True, text=True, timeout=300)
            (deb,) = pathlib.Path(folder).glob("*.deb")
            subprocess.run(["dpkg", "-x", str(deb), str(CACHE)], check=True, capture_output=True, text=True,
                           timeout=300)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", "") or error
            raise Unavailable(f"cannot fetch {PACKAGE} with apt-get download and dpkg -x: {detail}") from None
    return CACHE


def load(name: str) -> types.ModuleType:
    """CPython's ``test.<name>`` module, from the interpreter or from the fetched package."""
    try:
        return importlib.import_module(f"test.{name}")
    except ModuleNotFoundError as error:
        if error.name not in (f"test.{name}", "test"):
            raise
    path = _extracted(name)
    if path is None:
        fetch()
        path = _extracted(name)
    if path is None:
        raise Unavailable(f"{PACKAGE} holds no test/{name}.py")
    spec = importlib.util.spec_from_file_location(f"test.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


if __name__ == "__main__":
    if importlib.util.find_spec("test.test_concurrent_futures") is None and _extracted("test_concurrent_futures") is None:
        print(f"fetched {PACKAGE} into {fetch()}")
    else:
        print("CPython's test_concurrent_futures is already available")
