"""The examples of docs/ecosystem.md run as printed: each Python block runs in a fresh
interpreter, and each ``print(...)  # value`` comment is found in its output."""

import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples(page):
    return _BLOCK.findall((DOCS / page).read_text())


def _expected(code):
    """The values the comments of print lines promise (approximate ones, with '...', are skipped)."""
    found = []
    for line in code.splitlines():
        if "print(" in line and "  # " in line:
            value = line.split("  # ", 1)[1].strip()
            if "..." not in value and not value.startswith("e.g."):
                found.append(value)
    return found


def test_the_page_has_examples():
    assert len(_examples("ecosystem.md")) >= 6


@pytest.mark.parametrize("index", range(len(_examples("ecosystem.md"))))
def test_ecosystem_example_runs(index, tmp_path):
    code = _examples("ecosystem.md")[index]
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    for value in _expected(code):
        assert value in ran.stdout, (value, ran.stdout)
