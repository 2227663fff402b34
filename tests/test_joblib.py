"""The joblib backend "crew": joblib's calls and scikit-learn's n_jobs run on crew's workers.

joblib and scikit-learn are optional (crew-core's ``joblib`` extra; scikit-learn from
tests/requirements.txt). Without them these tests skip on a developer's machine, but fail in CI
(``CI`` set), where they must run."""

import importlib
import os

import crew
import pytest
from crew_local import local_controller


def _need(module):
    """Import an optional module: skip without it, except in CI, where it must be installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed: CI must run the joblib tests (tests/requirements.txt)",
                        pytrace=False)
        pytest.skip(f"{module} is not installed", allow_module_level=True)


joblib = _need("joblib")
crew_joblib = importlib.import_module("crew.joblib")  # joblib is importable: crew.joblib must import


@pytest.fixture(scope="module")
def controller():
    with local_controller(workers=2, seconds_idle=60) as controller:
        yield controller


def _worker_pid(_):
    return os.getpid()


def _square_or_fail(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def test_import_registers_the_backend():
    assert crew_joblib.BACKEND_NAME == "crew"
    assert joblib.parallel.BACKENDS["crew"] is crew_joblib.CrewBackend


def test_calls_run_in_worker_processes_in_order(controller):
    with joblib.parallel_config(backend="crew", controller=controller):
        pids = joblib.Parallel(n_jobs=-1)(joblib.delayed(_worker_pid)(i) for i in range(20))
        squares = joblib.Parallel(n_jobs=2)(joblib.delayed(pow)(i, 2) for i in range(50))
    assert squares == [i * i for i in range(50)]
    workers = {row["pid"] for row in controller.summary() if row["pid"] is not None}
    assert os.getpid() not in pids and set(pids) <= workers, (pids, workers)


def test_a_failing_call_raises_its_own_exception(controller):
    with joblib.parallel_config(backend="crew", controller=controller):
        with pytest.raises(ValueError, match="three is not allowed"):
            joblib.Parallel(n_jobs=2, batch_size=1)(joblib.delayed(_square_or_fail)(i) for i in range(6))
        # The backend stays usable after a failure.
        assert joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


def test_n_jobs(controller):
    backend = crew_joblib.CrewBackend(controller=controller)
    assert backend.effective_n_jobs(-1) == 2  # the controller's workers
    assert backend.effective_n_jobs(-2) == 1
    assert backend.effective_n_jobs(-10) == 1
    assert backend.effective_n_jobs(7) == 7
    with pytest.raises(crew.SettingError, match="n_jobs must be a non-zero whole number"):
        backend.effective_n_jobs(0)


def test_bad_arguments_are_named():
    with pytest.raises(crew.SettingError, match='needs a controller: joblib.parallel_config'):
        crew_joblib.CrewBackend()
    with pytest.raises(crew.SettingError, match="controller must be a crew.Controller, not 'local'"):
        crew_joblib.CrewBackend(controller="local")


def test_grid_search_on_iris_matches_n_jobs_1(controller):
    """scikit-learn's n_jobs=-1 on crew's workers finds the same best parameters as n_jobs=1."""
    _need("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.01, 0.1, 1, 10], "kernel": ["linear", "rbf"]}
    serial = GridSearchCV(SVC(), grid, n_jobs=1).fit(X, y)
    before = sum(row["tasks"] for row in controller.summary())
    with joblib.parallel_config(backend="crew", controller=controller):
        parallel = GridSearchCV(SVC(), grid, n_jobs=-1).fit(X, y)
    ran = sum(row["tasks"] for row in controller.summary()) - before
    assert parallel.best_params_ == serial.best_params_
    assert parallel.best_score_ == pytest.approx(serial.best_score_)
    assert list(parallel.cv_results_["mean_test_score"]) == pytest.approx(list(serial.cv_results_["mean_test_score"]))
    # 8 candidates x 5 folds = 40 fits, run as crew tasks (joblib may batch several per task).
    assert ran >= 1, "no fit ran on a crew worker"
