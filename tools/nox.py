"""Run nox from a virtualenv of its own, made on first use: ``python3 tools/nox.py -s demo``.

Works with nothing but ``python3``: on Debian and Ubuntu the system Python refuses ``pip install``
(PEP 668) and often has no ``ensurepip`` (the python3-venv package). This script makes
``.venv-nox/`` in the repository (with ``ensurepip`` when there is one; else without pip, then
pip's own wheel from the package index, checked against the index's SHA-256), installs nox and uv
into it, and runs nox with the arguments given. Later runs reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.request
import venv

ROOT = pathlib.Path(__file__).resolve().parents[1]
INDEX = os.environ.get("CREW_BOOTSTRAP_INDEX", "https://pypi.org/pypi")  # JSON API of the package index
TOOLS = ["nox", "uv"]


def _python(home: pathlib.Path) -> pathlib.Path:
    return home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_ensurepip() -> bool:
    if os.environ.get("CREW_BOOTSTRAP_NO_ENSUREPIP"):  # tests take the path of a Python without it
        return False
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return False
    return True


def _pip_from_index(python: pathlib.Path) -> None:
    """Install pip into a virtualenv that has none, from pip's wheel on the package index."""
    with urllib.request.urlopen(f"{INDEX}/pip/json", timeout=60) as response:
        release = json.load(response)
    wheel = next(item for item in release["urls"] if item["filename"].endswith(".whl"))
    with urllib.request.urlopen(wheel["url"], timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"tools/nox.py: {wheel['filename']} does not match the index's SHA-256")
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / wheel["filename"]
        path.write_bytes(data)
        # A pip wheel runs itself: python pip.whl/pip install pip.whl
        subprocess.run([str(python), f"{path}/pip", "install", "--quiet", "--no-index", str(path)], check=True)


def ensure(home: pathlib.Path, tools: list[str]) -> pathlib.Path:
    """The virtualenv at ``home`` with ``tools`` installed (made first if needed); its Python."""
    python = _python(home)
    check = f"import {', '.join(tools or ['pip'])}"
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    print(f"tools/nox.py: making {home} with {' and '.join(tools)} (once)", file=sys.stderr)
    with_pip = _has_ensurepip()
    venv.EnvBuilder(with_pip=with_pip, clear=True).create(home)
    if not with_pip:
        _pip_from_index(python)
    if tools:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *tools],
                       check=True)
    return python


def main(argv: list[str]) -> int:
    home = pathlib.Path(os.environ.get("CREW_NOX_VENV", ROOT / ".venv-nox"))
    try:
        python = ensure(home, TOOLS)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"tools/nox.py: could not make {home}: {error}", file=sys.stderr)
        return 1
    os.chdir(ROOT)
    return subprocess.run([str(python), "-m", "nox", *argv]).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
