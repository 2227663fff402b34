"""The short form of tests/soak.py: 50,000 trivial tasks leak no descriptor or thread, and the
controller's memory stays flat after the warm-up."""

import importlib.util
import sys
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("crew_soak", Path(__file__).resolve().parents[1] / "soak.py")
soak = sys.modules["crew_soak"] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(soak)


def test_short_soak_is_flat():
    rows = []
    samples = soak.soak(50_000, batch=5_000, workers=2, report=rows.append)
    assert [sample.tasks for sample in samples] == list(range(5_000, 50_001, 5_000))
    assert soak.problems(samples, warmup=0.3, rss_slack=8.0) == [], "\n".join(rows)


def test_problems_are_found():
    """The checker itself can fail: growth after the warm-up is reported."""
    flat = [soak.Sample(index, 1.0, 100 * soak.MIB, 10, 5, 0) for index in range(10)]
    assert soak.problems(flat) == []
    leaky = [soak.Sample(index, 1.0, (100 + 4 * index) * soak.MIB, 10 + index, 5 + index // 5, 0) for index in range(10)]
    found = soak.problems(leaky)
    assert len(found) == 3 and "descriptors" in found[0] and "threads" in found[1] and "RSS" in found[2], found
