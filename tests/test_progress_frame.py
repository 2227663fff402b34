"""Progress bars (drawn on a terminal, silent elsewhere) and results as a pandas DataFrame."""

import io
import os
import pty
import sys
import threading

import crew
import pytest
from crew._frame import COLUMNS, results_frame
from crew._progress import Progress, render
from crew_local import local_controller


@pytest.fixture(scope="module")
def controller():
    with local_controller(workers=2) as ctl:
        yield ctl


# ---------------------------------------------------------------------- the line itself
def test_render_exact_text():
    assert render(3, 10, 0, 2, 0, 65, 80, unicode=False) == (
        "[############----------------------------] 3/10 | 2 workers up | 01:05")
    assert render(10, 10, 1, 1, 1, 5, 80, unicode=True) == (
        "[" + "\u2588" * 27 + "] 10/10 | 1 error | 1 worker up, 1 launching | 00:05")


def test_render_narrow_terminal_drops_the_bar():
    assert render(3, 10, 2, 0, 0, 0, 30, unicode=False) == "3/10 | 2 errors | 0 workers up"[:30]


def test_render_nothing_to_do():
    assert render(0, 0, 0, 0, 0, 0, 60, unicode=False).startswith("[" + "#" * 9)


# ---------------------------------------------------------------------- not a terminal: silent
def test_silent_when_the_stream_is_not_a_terminal(controller):
    stream = io.StringIO()
    controller.push("1", name="silent")
    with Progress(controller, stream=stream) as progress:
        assert not progress.active
        controller.wait()
    assert stream.getvalue() == ""
    controller.collect()


def test_wait_and_map_with_progress_print_nothing_under_capture(controller, capsys):
    controller.push("2", name="captured")
    assert controller.wait(progress=True, seconds_timeout=30)
    results = controller.map(pow, iterate={"base": [1, 2, 3], "exp": [2, 2, 2]}, progress=True)
    assert [result.result for result in results] == [1, 4, 9]
    assert capsys.readouterr() == ("", "")
    controller.collect()


# ---------------------------------------------------------------------- a terminal: a live bar
class _Terminal:
    """A pseudo-terminal: ``stream`` writes to it, ``text()`` is what it received."""

    def __init__(self):
        self.master, slave = pty.openpty()
        self.stream = io.TextIOWrapper(io.FileIO(slave, "w"), encoding="utf-8", write_through=True)
        self.chunks = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the terminal closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def text(self):
        self.stream.close()
        self.reader.join(10)
        os.close(self.master)
        return b"".join(self.chunks).decode("utf-8").replace("\r\n", "\n")


def test_live_bar_on_a_terminal(controller, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal.stream)
    results = controller.map("1 / x", iterate={"x": [1, 0, 2, 0, 4]}, error="silent", progress=True)
    assert [result.status for result in results].count("error") == 2
    text = terminal.text()
    assert text.startswith("\r[") and text.endswith("\n"), repr(text)
    final = text.rstrip("\n").split("\r")[-1]
    assert "5/5" in final and "2 errors" in final and "up" in final, repr(final)
    assert "\u2588" in final


def test_progress_counts_follow_the_controller(controller, tmp_path):
    with Progress(controller, stream=io.StringIO()) as progress:
        controller.push("3", name="counted")
        assert controller.wait(seconds_timeout=30)
        counts = progress.counts()
    assert counts["done"] == counts["total"] == 1 and counts["errors"] == 0
    controller.collect()


# ---------------------------------------------------------------------- frames
def test_collect_frame(controller):
    pandas = pytest.importorskip("pandas")
    controller.push("6 * 7", name="answer")
    controller.push("1 / 0", name="broken")
    controller.push("None", name="nothing")
    assert controller.wait(seconds_timeout=30)
    frame = controller.collect(frame=True)
    assert isinstance(frame, pandas.DataFrame)
    assert tuple(frame.columns) == COLUMNS
    rows = frame.set_index("name")
    assert rows.loc["answer", "result"] == 42 and type(rows.loc["answer", "result"]) is int
    assert rows.loc["nothing", "result"] is None
    assert rows.loc["broken", "status"] == "error" and "ZeroDivisionError" in rows.loc["broken", "error"]
    assert controller.collect() == []  # collected once


def test_empty_frame_has_the_columns():
    pandas = pytest.importorskip("pandas")
    frame = results_frame([])
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 0 and tuple(frame.columns) == COLUMNS


def test_frame_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match=r"crew-core\[frame\]") as caught:
        results_frame([crew.Result("a", "1", 1)])
    assert isinstance(caught.value, crew.CrewError)
