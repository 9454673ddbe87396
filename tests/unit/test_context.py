"""``ctx()``: the running task's context in a block, Flyte's identity, mode and ranks."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.context import ActionID, TaskContext, ctx, task_context


def test_ctx_is_set_only_inside_the_block() -> None:
    assert ctx() is None
    outer, inner = TaskContext(data={"spark_session": "s"}), TaskContext()
    with task_context(outer):
        assert ctx() is outer and ctx()["spark_session"] == "s" and ctx()["missing"] is None
        with task_context(inner):
            assert ctx() is inner
        assert ctx() is outer
    assert ctx() is None


def test_the_action_names_dag_task_and_map_index() -> None:
    assert TaskContext(dag_id="d", task_id="t", run_id="r").action == ActionID(name="d.t", run_name="r", project="d")
    assert TaskContext(dag_id="d", task_id="t", map_index=3).action.name == "d.t[3]"


@pytest.mark.parametrize(("placement", "mode"), [("in_cluster", "remote"), ("attach", "hybrid"), ("local", "local"),
                                                 (None, "local")])
def test_the_mode_follows_the_placement(placement, mode) -> None:
    task = TaskContext(placement=placement)
    assert task.mode == mode
    assert task.is_in_cluster() is (mode == "remote")


def test_ranks_come_from_the_elastic_environment(monkeypatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK"):
        monkeypatch.delenv(key, raising=False)
    task = TaskContext()
    assert (task.rank, task.world_size, task.local_rank, task.group_rank) == (None, None, None, None)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("GROUP_RANK", "x")  # not a number: unknown, not an error
    assert (task.rank, task.world_size, task.local_rank, task.group_rank) == (3, 4, 1, None)
