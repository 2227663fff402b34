"""controller.executor() keeps the concurrent.futures contract (issue #14).

First, CPython's own generic tests of ``concurrent.futures`` (those not about the internals of
ThreadPoolExecutor or ProcessPoolExecutor: ExecutorTest, WaitTests, AsCompletedTests,
ExecutorShutdownTest), fetched at test time (tests/_cpython_tests.py) and run against crew's
executor through ``CrewMixin``. Then one test for each point of the issue.
"""

import concurrent.futures as cf
import functools
import gc
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time
import unittest
import weakref

import cloudpickle
import crew
import pytest
from crew.executor import BrokenCrewExecutor
from crew.testing import eventually
from crew_local import local_controller

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("crew_cpython_tests", HERE / "_cpython_tests.py")
cpython_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpython_tests)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this module
try:
    cft = cpython_tests.load("test_concurrent_futures")
except (cpython_tests.Unavailable, unittest.SkipTest) as error:
    if os.environ.get("CI"):  # CI installs it (tests/run.sh): never skip there
        raise
    pytest.skip(f"CPython's test_concurrent_futures is not available: {error}", allow_module_level=True)
if not hasattr(cft, "ExecutorTest"):
    raise cpython_tests.Unavailable(f"{cft.__name__} is not laid out as in CPython 3.8-3.11")
cloudpickle.register_pickle_by_value(cft)  # its mul, capture, MyObject ... go to the workers by value

# assert_python_ok's interpreter sees this one's PYTHONPATH (by default it runs isolated, -I)
SUBPROCESS = {"__isolated": False, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
WORKERS = 2  # two cores in CI; the tests need at least two calls running at once

EXIT_SCRIPT = """if 1:
    import time
    from crew_local import local_controller
    def sleep_and_return(t, msg):
        time.sleep(t)
        return msg
    if __name__ == "__main__":
        t = local_controller(workers=1).executor()
        t.submit(sleep_and_return, 1.0, "apple").add_done_callback(lambda f: print(f.result(), flush=True))
        {end}
"""


class CrewMixin(cft.ExecutorMixin):
    """Runs CPython's executor tests on ``controller.executor()``: one controller per class, a
    new executor per test. Tests that start a subprocess with a standard pool by name run the
    same script with crew's executor; ``test_max_workers_negative`` checks crew's arguments."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.controller = local_controller(workers=WORKERS)
        with cls.controller.executor() as warm:  # workers connected, as a pool's threads are
            list(warm.map(time.sleep, [0.5] * WORKERS))

    @classmethod
    def tearDownClass(cls):
        cls.controller.terminate()
        super().tearDownClass()

    def setUp(self):
        super(cft.ExecutorMixin, self).setUp()  # BaseTestCase's: thread bookkeeping
        self.t1 = time.monotonic()
        self.executor = self.controller.executor()

    def test_max_workers_negative(self):
        for value in (0, -1):
            with self.assertRaisesRegex(ValueError, "seconds_timeout"):
                self.controller.executor(seconds_timeout=value)


class CrewShutdownMixin(CrewMixin):
    def test_cancel_futures(self):
        """CPython's test, with ``shutdown`` called once a call has started: it expects some of
        50 calls to have started while they were submitted, which a thread pool does at once and
        crew reports 1 ms after (submitting the 50 takes about 2 ms)."""
        submitted, submit, shutdown = [], self.executor.submit, self.executor.shutdown

        def submit_and_keep(*args, **kwargs):
            submitted.append(submit(*args, **kwargs))
            return submitted[-1]

        def shutdown_once_started(*args, **kwargs):
            eventually(lambda: any(future.running() or future.done() for future in submitted), 30)
            return shutdown(*args, **kwargs)

        self.executor.submit, self.executor.shutdown = submit_and_keep, shutdown_once_started
        super().test_cancel_futures()

    def _exit_script(self, end):
        return cft.assert_python_ok("-c", EXIT_SCRIPT.format(end=end), **SUBPROCESS)

    def test_interpreter_shutdown(self):
        rc, out, err = self._exit_script("")
        self.assertEqual(out.strip(), b"apple")

    def test_hang_gh83386(self):
        rc, out, err = self._exit_script("t.shutdown(wait=False)")
        self.assertEqual(out.strip(), b"apple")

    def test_submit_after_interpreter_shutdown(self):
        rc, out, err = cft.assert_python_ok("-c", """if 1:
            import atexit
            @atexit.register
            def run_last():
                try:
                    t.submit(id, None)
                except RuntimeError:
                    print("runtime-error")
                    raise
            from crew_local import local_controller
            if __name__ == "__main__":
                t = local_controller(workers=1).executor()
                t.submit(id, 42).result()
            """, **SUBPROCESS)
        self.assertIn("RuntimeError: cannot schedule new futures", err.decode())
        self.assertEqual(out.strip(), b"runtime-error")


class CrewExecutorTest(CrewMixin, cft.ExecutorTest, cft.BaseTestCase):
    pass


class CrewWaitTests(CrewMixin, cft.WaitTests, cft.BaseTestCase):
    pass


class CrewAsCompletedTests(CrewMixin, cft.AsCompletedTests, cft.BaseTestCase):
    pass


class CrewExecutorShutdownTest(CrewShutdownMixin, cft.ExecutorShutdownTest, cft.BaseTestCase):
    pass


# ---------------------------------------------------------------------- the points
def wait_file(path, started=None, value="released"):
    """Mark ``started``, then wait (bounded) until the test creates ``path``."""
    if started:
        open(started, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)
    return value


def touch(path):
    open(path, "w").close()
    return path


class Big:
    def __init__(self):
        self.payload = bytes(8 * 2 ** 20)

    def size(self):
        return len(self.payload)


def make_big(_):
    return Big()


def size_of(big, extra):
    return len(big.payload) + extra


def failing():
    try:
        {}["key"]
    except KeyError as error:
        raise ValueError("outer") from error


@pytest.fixture
def single():
    with local_controller(workers=1) as controller:
        yield controller


def run_script(script, tmp_path, timeout=120):
    """Run a Python script in a new interpreter (it ends before this returns)."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def test_1_running_calls_are_not_cancelled_by_future_cancel(single, tmp_path):
    pool = single.executor()
    started, release = tmp_path / "started", tmp_path / "release"
    running = pool.submit(wait_file, str(release), str(started))
    queued = pool.submit(touch, str(tmp_path / "queued"))
    eventually(running.running, 30)  # the worker reported the call started
    assert not queued.running()
    assert running.cancel() is False and not running.cancelled()
    pool.shutdown(wait=False, cancel_futures=True)  # cancels only what has not started
    assert queued.cancelled() and not running.cancelled()
    release.touch()
    assert running.result(timeout=30) == "released"
    pool.shutdown(wait=True)
    assert not (tmp_path / "queued").exists()


def test_2_pending_calls_finish_before_interpreter_exit(tmp_path):
    for end in ("", "pool.shutdown(wait=False)"):
        target = tmp_path / f"written{len(end)}"
        done = run_script(f"""
            import pathlib, time
            from crew_local import local_controller
            def write_later(path):
                time.sleep(1)
                pathlib.Path(path).write_text("done")
            pool = local_controller(workers=1).executor()
            pool.submit(write_later, {str(target)!r})
            {end}
            """, tmp_path)
        assert done.returncode == 0, done.stderr
        assert target.read_text() == "done", end


def test_3_map_timeout_cancels_the_call_it_timed_out_on(single, tmp_path):
    pool = single.executor()
    release, started = tmp_path / "release", tmp_path / "started"
    blocker = pool.submit(wait_file, str(release), str(started))
    eventually(blocker.running, 30)
    second, third = tmp_path / "second", tmp_path / "third"
    values = pool.map(touch, [str(second), str(third)], timeout=0)
    try:
        with pytest.raises(TimeoutError):
            next(values)
    finally:
        release.touch()
    values.close()
    assert blocker.result(timeout=30) == "released"
    pool.shutdown(wait=True)
    assert not second.exists() and not third.exists()


def _collected(reference):
    gc.collect()
    return reference() is None


def test_4_no_stale_references_to_partials_bound_methods_or_values(single):
    pool = single.executor()
    big = Big()
    reference = weakref.ref(big)
    assert pool.submit(functools.partial(size_of, big), 1).result(timeout=30) == 8 * 2 ** 20 + 1
    del big
    eventually(lambda: _collected(reference), 30)  # the 8 MB argument of the partial is freed
    big = Big()
    reference = weakref.ref(big)
    assert pool.submit(big.size).result(timeout=30) == 8 * 2 ** 20
    del big
    eventually(lambda: _collected(reference), 30)  # the bound method's instance is freed
    for chunksize in (1, 3):
        for value in pool.map(make_big, range(7), chunksize=chunksize):
            reference = weakref.ref(value)
            del value
            assert _collected(reference), chunksize  # the map iterator holds no finished value
    pool.shutdown()


def test_5_submit_when_nothing_can_run(tmp_path):
    controller = local_controller(workers=1)
    pool = controller.executor()
    assert pool.submit(pow, 2, 3).result(timeout=30) == 8
    controller.terminate()
    with pytest.raises(cf.BrokenExecutor, match="terminated") as caught:
        pool.submit(pow, 2, 3)
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, BrokenCrewExecutor)
    assert isinstance(caught.value, crew.CrewError)
    done = run_script("""
        import atexit
        from crew_local import local_controller
        pool = local_controller(workers=1).executor()
        @atexit.register
        def late():
            try:
                pool.submit(pow, 2, 2)
            except RuntimeError as error:
                print("refused:", error)
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused: cannot schedule new futures after interpreter shutdown"


def test_6_a_done_callback_may_wait_on_another_future(tmp_path):
    with local_controller(workers=2) as controller:
        pool = controller.executor()
        release = tmp_path / "release"
        later = pool.submit(wait_file, str(release))
        seen, finished = [], threading.Event()

        def wait_for_later(_):
            seen.append((later.result(timeout=60), threading.current_thread().name))
            finished.set()

        first = pool.submit(pow, 2, 5)
        first.add_done_callback(wait_for_later)
        assert first.result(timeout=30) == 32
        release.touch()
        assert finished.wait(60), "the callback waited on a future that could not be settled"
        assert seen[0][0] == "released"
        other = pool.submit(pow, 3, 2)  # one slow callback does not hold up other results
        blocker = threading.Event()
        other.add_done_callback(lambda _: blocker.wait(60))
        assert pool.submit(pow, 2, 2).result(timeout=30) == 4
        blocker.set()
        pool.shutdown()


def test_7_partial_of_a_main_class_and_exception_cause(tmp_path):
    done = run_script("""
        import functools
        from crew_local import local_controller
        class Box:
            def __init__(self, value):
                self.value = value
        def times(box, k):
            return box.value * k
        with local_controller(workers=1) as controller:
            with controller.executor() as pool:
                print(pool.submit(functools.partial(times, Box(3)), 2).result(timeout=60))
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6"
    with local_controller(workers=1) as controller, controller.executor() as pool:
        error = pool.submit(failing).exception(timeout=30)
    assert isinstance(error, ValueError) and str(error) == "outer"
    assert isinstance(error.__cause__, KeyError) and error.__cause__.args == ("key",)
    assert error.__suppress_context__
