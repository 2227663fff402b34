"""Every ```python block of docs/*.md runs, unchanged and in order, one file per fresh interpreter.

A block opts out only when the line before its fence is ``<!-- no-test -->`` (for code that needs
a real cluster). Each file runs in a subprocess, its blocks sharing one fresh namespace named
``__main__`` (so functions defined in the docs travel to workers by value, as from a user's
script). Afterwards no crew worker the file started may still run.

Run as a script (``python tests/test_docs.py FILE.md PIDS_FILE``), this module is that subprocess:
it executes the blocks, then writes the pids of its crew workers still alive to PIDS_FILE.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md", ROOT / "packages" / "crew-local" / "README.md"]
OPT_OUT = "<!-- no-test -->"
_OPENING = re.compile(r"(`{3,}|~{3,})\s*([^\s`]*)")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text that are not opted out, as (line of the first
    code line, code)."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING.fullmatch(lines[index].strip())
        if opening is None:
            index += 1
            continue
        fence, language = opening.groups()
        end = index + 1
        while end < len(lines) and not re.fullmatch(f"{re.escape(fence[0])}{{{len(fence)},}}", lines[end].strip()):
            end += 1
        before = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        if language == "python" and before != OPT_OUT:
            blocks.append((index + 2, "\n".join(lines[index + 1:end]) + "\n"))
        index = end + 1
    return blocks


def _alive(pid: int, started: float) -> bool:
    """Whether the process with this pid and start time still runs."""
    try:
        process = psutil.Process(pid)
        return process.create_time() == started and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ---------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("path", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_docs_file_runs(path, tmp_path):
    from crew.testing import eventually

    pids_file = tmp_path / "workers.json"
    done = subprocess.run([sys.executable, __file__, str(path), str(pids_file)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    workers = json.loads(pids_file.read_text()) if pids_file.exists() else []
    try:
        eventually(lambda: not any(_alive(pid, started) for pid, started in workers), 30)
    finally:
        for pid, started in workers:
            if _alive(pid, started):
                psutil.Process(pid).kill()
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert pids_file.exists()


def test_the_guides_exist_and_opt_out_sparingly():
    for name in ("index.md", "launcher-plugins.md"):
        text = (DOCS / name).read_text()
        assert len(python_blocks(text)) >= 8, name
        assert text.count(OPT_OUT) <= 1, name


def test_python_blocks_are_found_in_order_with_their_lines():
    text = "\n".join([
        "# Title",         # 1
        "```python",       # 2
        "a = 1",           # 3
        "```",             # 4
        "```text",         # 5
        "not code",        # 6
        "```",             # 7
        "````python",      # 8
        "b = '```'",       # 9
        "````",            # 10
        "```toml",         # 11
        "[x]",             # 12
        "```",             # 13
        "```python",       # 14
        "",                # 15
        "    c = 3",       # 16
        "```",             # 17
    ])
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = '```'\n"), (15, "\n    c = 3\n")]


def test_a_block_opts_out_only_with_the_marker_right_before_it():
    text = "\n".join([
        OPT_OUT, "", "```python", "skipped()", "```",
        OPT_OUT, "some prose", "```python", "kept = 1", "```",
        "<!-- something else -->", "```python", "also_kept = 2", "```",
    ])
    assert [code for _, code in python_blocks(text)] == ["kept = 1\n", "also_kept = 2\n"]


# ---------------------------------------------------------------------------- the subprocess
def _run_blocks(path: Path, pids_file: Path) -> None:
    """Execute the blocks of ``path`` in one fresh namespace; record the workers left alive."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    for line, code in python_blocks(path.read_text()):
        print(f"--- {path.name}: block at line {line}", flush=True)
        # Padding keeps tracebacks' line numbers those of the Markdown file.
        exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
    workers = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "crew.worker" in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                workers.append((process.pid, process.create_time()))
        except psutil.Error:
            continue
    pids_file.write_text(json.dumps(workers))


if __name__ == "__main__":
    _run_blocks(Path(sys.argv[1]), Path(sys.argv[2]))
