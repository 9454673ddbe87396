"""Engine errors with a known user cause are translated by the runner; others pass through unchanged."""

from __future__ import annotations

import sys
import types

import psutil
import pytest

from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner


@pytest.fixture
def failing_placement(monkeypatch):
    """A Dask placement whose start raises ``error`` (no engine runs)."""
    def install(error: BaseException | None) -> TaskSpec:
        module = types.ModuleType("airflow_provider_flyte.hooks.dask.failing")

        class FailingDaskHook(FlyteDaskHook):
            placement = "failing"

            def start(self):
                if error is not None:
                    raise error
                return {}

        module.FailingDaskHook = FailingDaskHook  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        return TaskSpec(placement="failing")

    return install


def test_a_port_in_use_at_start_is_translated_with_the_engines_message(failing_placement):
    original = OSError(98, "Address already in use")
    with pytest.raises(FlyteEngineError) as info:
        TaskRunner(failing_placement(original), Dask(), lambda: 1).run([], {})
    message = str(info.value)
    assert message.startswith("Dask: a port the engine needs is already in use on this machine. Fix: ")
    assert message.endswith("The engine's error: OSError: [Errno 98] Address already in use")
    assert info.value.__cause__ is original


def test_a_worker_killed_in_the_task_is_translated(failing_placement):
    def task():
        try:
            raise MemoryError("worker died")
        except MemoryError as exc:
            raise RuntimeError("KilledWorker: all those workers died while running it") from exc

    with pytest.raises(FlyteEngineError, match=r"^Dask: a worker was killed, most likely for using more memory"):
        TaskRunner(failing_placement(None), Dask(), task).run([], {})


@pytest.mark.parametrize("error", [ValueError("the user's own bug"), FlyteConfigError("f", 1, "p", "fix")])
def test_other_errors_pass_through_unchanged(failing_placement, error):
    with pytest.raises(type(error)) as info:
        TaskRunner(failing_placement(error), Dask(), lambda: 1).run([], {})
    assert info.value is error


def test_local_dask_beyond_this_machine_fails_before_any_process_starts():
    from airflow_provider_flyte.core.bounds import LOCAL_WORKERS_PER_CPU, machine_cpus

    workers = machine_cpus() * LOCAL_WORKERS_PER_CPU + 1
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    hook = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=workers)), TaskSpec())
    with pytest.raises(FlyteConfigError, match=r"^WorkerGroup\.number_of_workers: this machine has \d+ CPU\(s\)"), \
            hook.session():
        pass
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
