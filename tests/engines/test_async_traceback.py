"""A failing ``async def`` task's log shows the user's exception alone (issue 27).

The call used to run ``asyncio.run()`` inside ``except RuntimeError:`` (the check for a running
loop), so every such traceback started with "RuntimeError: no running event loop" and "During
handling of the above exception, another exception occurred".
"""

from __future__ import annotations


def test_failing_async_task_traceback_is_not_chained_to_the_loop_check(dag_runner, capfd):
    capfd.readouterr()
    result = dag_runner.run("async_failure_dag.py", "async_failure")
    log = capfd.readouterr().out
    assert result.states[("boom", -1)] == "failed"
    assert "ValueError: the user's own error" in log, log[-3000:]
    assert "no running event loop" not in log, log[-5000:]
    assert "During handling of the above exception" not in log, log[-5000:]


def test_call_maybe_async_raises_the_users_exception_unchained():
    import pytest

    from airflow_provider_flyte.bundle.calls import call_maybe_async

    async def boom() -> None:
        raise ValueError("own")

    with pytest.raises(ValueError, match="own") as info:
        call_maybe_async(boom, (), {})
    assert info.value.__context__ is None
