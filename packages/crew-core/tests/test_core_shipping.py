"""Functions shipped by value are serialized once and again only when they change: redefining
the function or rebinding a global it reads is seen by workers; changing an object in place is not."""

from __future__ import annotations

import gc

from crew._controller.shipping import ByValueCache, fingerprint
from crew_local import local_controller


def _script(source: str) -> dict:
    """Run ``source`` as a script's ``__main__`` would; return its namespace."""
    namespace = {"__name__": "__main__"}
    exec(compile(source, "<script>", "exec"), namespace)
    return namespace


SCRIPT = """
factor = 2
table = [1]
def scaled(x):
    return x * factor + sum(table)
def outer():
    base = 10
    def inner(x):
        return x + base
    return inner
"""


def test_the_fingerprint_follows_rebinding_not_mutation():
    script = _script(SCRIPT)
    scaled = script["scaled"]
    cache = ByValueCache()
    cache.put(scaled, b"bytes", "scaled")
    assert cache.get(scaled) == (b"bytes", "scaled")
    script["table"].append(4)  # in place: not seen
    assert cache.get(scaled) == (b"bytes", "scaled")
    script["factor"] = 3  # rebound: seen
    assert cache.get(scaled) is None
    inner = script["outer"]()
    cache.put(inner, b"inner", "inner")
    assert cache.get(inner) is not None
    inner.__closure__[0].cell_contents = 11  # the closure's contents changed
    assert cache.get(inner) is None
    assert fingerprint(scaled)[0] is scaled.__code__


def test_the_cache_keeps_no_function_alive():
    script = _script(SCRIPT)
    cache = ByValueCache()
    cache.put(script["scaled"], b"bytes", "scaled")
    assert len(cache._entries) == 1
    del script["scaled"], script
    gc.collect()
    assert cache._entries == {}


def test_workers_see_a_rebound_global_and_keep_the_snapshot_of_a_mutated_one():
    script = _script(SCRIPT)
    scaled = script["scaled"]
    with local_controller(workers=1) as controller:
        assert controller.map(scaled, {"x": [1]})[0].result == 3  # 1*2 + 1
        intake = controller._intake
        first = intake.command_bytes(scaled)
        assert intake.command_bytes(scaled) is first  # serialized once
        script["table"].append(100)
        assert controller.map(scaled, {"x": [1]})[0].result == 3  # the snapshot of the first push
        script["factor"] = 5
        assert controller.map(scaled, {"x": [1]})[0].result == 106  # shipped anew: 1*5 + 101
        assert intake.command_bytes(scaled) is not first
