"""crew.metrics: the launcher's metrics_seconds reaches the worker's sampler, and read() returns
the samples as records or a DataFrame; the end-to-end check runs real local workers."""

from __future__ import annotations

import shlex
import statistics
import sys
import time

import cloudpickle
import crew
import crew.metrics
import pytest
from crew._worker_setup import parser as _parser
from crew.launcher import Launcher
from crew.testing import eventually, pids_alive

# The workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Recorder(Launcher):
    def launch_worker(self, call):
        return call


def bound(launcher: Launcher) -> Launcher:
    launcher.bind(crew.Contact("tcp://127.0.0.1:5700", "c0ffee", "the-secret", None, "unit"))
    return launcher


def options_of(call: str) -> dict[str, str]:
    words = shlex.split(call)
    return dict(zip(words[4::2], words[5::2]))


# ---------------------------------------------------------------------- the option
def test_metrics_seconds_goes_on_the_command_line_and_the_worker_parses_it(tmp_path):
    launcher = bound(Recorder(metrics=tmp_path, metrics_seconds=0.25))
    call = launcher.call(launch="1")
    assert options_of(call)["--metrics-seconds"] == "0.25"
    parsed = _parser().parse_args(shlex.split(call)[3:])
    assert (parsed.metrics, parsed.metrics_seconds) == (str(tmp_path), 0.25)


def test_default_interval_is_left_to_the_worker_and_no_metrics_means_no_flag(tmp_path):
    assert "--metrics-seconds" not in options_of(bound(Recorder(metrics=tmp_path)).call())
    assert "--metrics-seconds" not in options_of(bound(Recorder(metrics_seconds=0.5)).call())
    assert _parser().parse_args(["tcp://x:1", "--controller", "c"]).metrics_seconds == 1.0
    assert Recorder().metrics_seconds == 1.0


@pytest.mark.parametrize("value", [0, -1, "1", None, float("inf")])
def test_bad_metrics_seconds_names_the_argument(value):
    with pytest.raises(crew.SettingError, match="^metrics_seconds must"):
        Recorder(metrics_seconds=value)


def test_a_plugin_helper_takes_metrics_seconds():
    crew_local = pytest.importorskip("crew_local")
    controller = crew_local.local_controller(metrics="m", metrics_seconds=0.3)
    assert controller.launcher.metrics_seconds == 0.3
    with pytest.raises(crew.SettingError, match="metrics_seconds"):
        crew_local.local_controller(metrics_seconds=0)


# ---------------------------------------------------------------------- read()
HEADER = "worker,time,pid,cpu_percent,rss_bytes\n"


def test_read_merges_files_by_time_and_skips_what_is_not_a_sample(tmp_path):
    (tmp_path / "w1.csv").write_text(HEADER + "w1,10.5,11,0.0,1000\nw1,12.5,11,99.5,3000\nw1,13.0,11,5")
    (tmp_path / "c_1_22.csv").write_text(HEADER + "c,1/22,11.0,22,50.0,2000\nc,1/22,11.5,22,x,2000\n")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    (tmp_path / "readme.txt").write_text("not samples\n")
    records = crew.metrics.read(tmp_path)
    assert records == [
        {"worker": "w1", "time": 10.5, "pid": 11, "cpu_percent": 0.0, "rss_bytes": 1000},
        {"worker": "c,1/22", "time": 11.0, "pid": 22, "cpu_percent": 50.0, "rss_bytes": 2000},
        {"worker": "w1", "time": 12.5, "pid": 11, "cpu_percent": 99.5, "rss_bytes": 3000},
    ]


def test_read_as_a_frame(tmp_path):
    import pandas  # in the test extra: this test never skips
    (tmp_path / "w1.csv").write_text(HEADER + "w1,10.5,11,0.0,1000\n")
    frame = crew.metrics.read(tmp_path, frame=True)
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == list(crew.metrics.FIELDS)
    assert frame.to_dict("records") == crew.metrics.read(tmp_path)
    (tmp_path / "empty").mkdir()
    assert list(crew.metrics.read(tmp_path / "empty", frame=True).columns) == list(crew.metrics.FIELDS)


def test_read_refuses_a_missing_folder_and_bad_arguments(tmp_path):
    with pytest.raises(crew.SettingError, match="^folder must be an existing directory"):
        crew.metrics.read(tmp_path / "nowhere")
    with pytest.raises(crew.SettingError, match="^folder must"):
        crew.metrics.read(3)
    with pytest.raises(crew.SettingError, match="^frame must"):
        crew.metrics.read(tmp_path, frame="yes")


# ---------------------------------------------------------------------- real workers
def busy(seconds: float, megabytes: int) -> int:
    """Hold ``megabytes`` of memory and keep one core busy for ``seconds``."""
    block = bytearray(megabytes * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return len(block) + (count > 0)


def test_real_workers_write_samples_at_the_chosen_interval(tmp_path):
    crew_local = pytest.importorskip("crew_local")
    folder = tmp_path / "metrics"
    controller = crew_local.local_controller(workers=1, metrics=folder, metrics_seconds=0.1)
    try:
        controller.start()
        controller.push(busy, args=(1.5, 64), name="busy")
        assert controller.wait(seconds_timeout=60)
        result = controller.pop()
        assert result.status == "success", result
        samples = [row for row in crew.metrics.read(folder) if row["pid"] == result.pid]
    finally:
        controller.terminate()
    eventually(lambda: not pids_alive([result.pid]), 30)
    assert len(samples) >= 8, samples  # 1.5 s of work at 0.1 s (at 1 s: 2 or 3)
    gaps = [b["time"] - a["time"] for a, b in zip(samples, samples[1:])]
    assert statistics.median(gaps) < 0.5, gaps
    assert {row["worker"] for row in samples} == {result.worker}
    assert max(row["rss_bytes"] for row in samples) > 64 * 1024 * 1024
    assert max(row["cpu_percent"] for row in samples) > 30, samples
