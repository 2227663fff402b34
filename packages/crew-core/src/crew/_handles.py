"""What a launcher's handles say about their workers: the handle types people return.

``launch_worker`` may return a :class:`subprocess.Popen` (plumbum's popen objects are one), a
:class:`psutil.Process` or a :class:`concurrent.futures.Future`; :class:`crew.Launcher`'s
default ``exit_status`` and ``terminate_worker`` understand all three, so that a launcher that
just runs ``call`` is complete.
"""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
from typing import Any, Optional

__all__ = ["exit_status", "terminate", "describe_code"]

_TAIL_LINES = 5
_TAIL_BYTES = 4096


def describe_code(code: int) -> str:
    """``exit code N``, or ``signal NAME`` for a negative return code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _process_of(handle: Any) -> Any:
    """The subprocess.Popen inside plumbum's popen objects (they wrap one); else ``handle``."""
    inner = getattr(handle, "_proc", None)
    return inner if isinstance(inner, subprocess.Popen) and not isinstance(handle, subprocess.Popen) else handle


def exit_status(handle: Any, timeout: float = 0.0) -> Optional[str]:
    """How the worker behind ``handle`` ended, or None while it runs or when unknown."""
    handle = _process_of(handle)
    if isinstance(handle, subprocess.Popen):
        return _popen(handle, timeout)
    if isinstance(handle, concurrent.futures.Future):
        return _future(handle, timeout)
    kind = type(handle)
    if kind.__module__.startswith("psutil") and kind.__name__ == "Process":
        return _process(handle, timeout)
    return None


def _popen(handle: subprocess.Popen[Any], timeout: float) -> Optional[str]:
    try:
        code = handle.wait(timeout=timeout) if timeout else handle.poll()
    except subprocess.TimeoutExpired:
        return None
    if code is None:
        return None
    tail = _stderr_tail(handle)
    return describe_code(code) + (f": {tail}" if tail else "")


def _stderr_tail(handle: subprocess.Popen[Any]) -> str:
    """The last lines the ended process wrote to a stderr pipe it was given (else "")."""
    stream = handle.stderr
    if stream is None:
        return ""
    try:
        data = stream.read()
    except (OSError, ValueError):
        return ""
    if isinstance(data, bytes):
        data = data[-_TAIL_BYTES:].decode(errors="replace")
    lines = [line for line in str(data).strip().splitlines() if line.strip()]
    return " | ".join(lines[-_TAIL_LINES:])


def _future(handle: concurrent.futures.Future[Any], timeout: float) -> Optional[str]:
    try:
        concurrent.futures.wait([handle], timeout=timeout)
    except Exception:
        return None
    if not handle.done():
        return None
    if handle.cancelled():
        return "cancelled"
    error = handle.exception()
    return f"raised {type(error).__name__}: {error}" if error is not None else f"returned {handle.result()!r}"[:200]


def _process(handle: Any, timeout: float) -> Optional[str]:
    import psutil

    try:
        code = handle.wait(timeout=timeout if timeout else 0)
    except psutil.TimeoutExpired:
        return None
    except psutil.NoSuchProcess:
        return "ended"
    return "ended" if code is None else describe_code(code)


def terminate(handle: Any, seconds: float) -> None:
    """End the worker behind a handle of a kind this module understands (else do nothing)."""
    handle = _process_of(handle)
    if isinstance(handle, subprocess.Popen):
        if handle.poll() is None:
            handle.terminate()
            try:
                handle.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                handle.kill()
                handle.wait()
    elif isinstance(handle, concurrent.futures.Future):
        handle.cancel()
    elif type(handle).__module__.startswith("psutil") and type(handle).__name__ == "Process":
        import psutil

        try:
            handle.terminate()
            handle.wait(timeout=seconds)
        except psutil.TimeoutExpired:
            handle.kill()
        except psutil.NoSuchProcess:
            pass
