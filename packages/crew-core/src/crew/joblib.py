"""A joblib backend named ``"crew"``: joblib's work (and scikit-learn's ``n_jobs``) on crew's workers.

``import crew.joblib`` registers the backend; then::

    with joblib.parallel_config(backend="crew", controller=controller):
        GridSearchCV(estimator, grid, n_jobs=-1).fit(X, y)

runs each batch of joblib calls as one task of ``controller`` (through
[`controller.executor()`][crew.executor.Executor]). joblib is optional: install it with
``pip install "crew-core[joblib]"`` (scikit-learn separately).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import SettingError

try:
    from joblib.parallel import AutoBatchingMixin, ParallelBackendBase, register_parallel_backend
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError(
        'crew.joblib needs joblib, which is not installed: pip install "crew-core[joblib]"'
    ) from error

if TYPE_CHECKING:  # pragma: no cover
    from ._controller import Controller
    from .executor import Executor

__all__ = ["BACKEND_NAME", "CrewBackend"]

BACKEND_NAME = "crew"
"""The name joblib knows the backend by: ``joblib.parallel_config(backend="crew", ...)``."""


class CrewBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]  # joblib is untyped
    """joblib's parallel backend on a crew controller.

    Arguments:
        controller: the [`crew.Controller`][crew.Controller] whose workers run the calls (started
            on first use; never terminated by the backend).
        seconds_timeout: the time limit of each batch of calls, as in
            [`controller.executor()`][crew.executor.Executor] (None: no limit).

    ``n_jobs=-1`` means the controller's ``workers`` (the most workers its launcher runs at once),
    ``-2`` one fewer, and so on; a positive ``n_jobs`` is taken as given: it sets how many batches
    joblib keeps in flight, while the launcher decides how many workers run them. joblib groups
    quick calls into larger batches by itself (auto-batching), so each crew task carries enough
    work to pay for its trip. An exception a call raises is raised again by joblib, with the
    worker's traceback attached as a note.
    """

    supports_retrieve_callback = True
    uses_threads = False
    supports_sharedmem = False
    default_n_jobs = -1

    def __init__(self, controller: Controller | None = None, seconds_timeout: float | None = None,
                 nesting_level: int | None = None, inner_max_num_threads: int | None = None,
                 **backend_kwargs: Any) -> None:
        if controller is None:
            raise SettingError('the "crew" joblib backend needs a controller: '
                               'joblib.parallel_config(backend="crew", controller=controller)')
        if not all(callable(getattr(controller, method, None)) for method in ("push", "cancel", "executor")):
            raise SettingError(f"controller must be a crew.Controller, not {controller!r}")
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads,
                         **backend_kwargs)
        self.controller = controller
        self.seconds_timeout = seconds_timeout
        self._executor: Executor | None = None

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many batches run at once: ``n_jobs``, or for a negative one the controller's
        ``workers`` + 1 + ``n_jobs`` (at least 1)."""
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
            raise SettingError(f"n_jobs must be a non-zero whole number (-1: every worker), not {n_jobs!r}")
        if n_jobs > 0:
            return n_jobs
        workers = int(getattr(getattr(self.controller, "launcher", None), "workers", 1) or 1)
        return max(workers + 1 + n_jobs, 1)

    def configure(self, n_jobs: int | None = 1, parallel: Any = None, prefer: str | None = None,
                  require: str | None = None, **backend_kwargs: Any) -> int:
        """Called by joblib at the start of each ``Parallel`` call: open an executor on the controller."""
        self.parallel = parallel
        self._executor = self.controller.executor(seconds_timeout=self.seconds_timeout)
        return self.effective_n_jobs(n_jobs)

    def submit(self, func: Callable[[], Any], callback: Callable[[Any], None] | None = None
               ) -> concurrent.futures.Future[Any]:
        """Run one batch of joblib calls as a crew task; ``callback`` runs when its result is back."""
        if self._executor is None:
            raise RuntimeError('the "crew" joblib backend is not configured: use it through joblib.Parallel')
        future = self._executor.submit(func)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    apply_async = submit  # the name joblib < 1.5 calls

    def retrieve_result_callback(self, out: concurrent.futures.Future[Any]) -> Any:
        """The batch's values (or the exception one of its calls raised)."""
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A call failed: cancel the batches still queued or running."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if ensure_ready and self.parallel is not None:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

    def terminate(self) -> None:
        """The ``Parallel`` call is over: close its executor (the controller keeps running)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self.reset_batch_stats()


register_parallel_backend(BACKEND_NAME, CrewBackend)
