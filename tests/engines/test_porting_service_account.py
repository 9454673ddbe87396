"""``@env.task(service_account=...)`` and ``.override(service_account=...)`` through dag.test() (issue 27).

Locally the service account has no meaning; the task runs. On Kubernetes it reaches every pod
(tests/unit/authoring/test_task_service_account.py).
"""

from __future__ import annotations


def test_env_task_and_override_through_dag_test(dag_runner):
    dag = dag_runner.load("service_account_dag.py", "service_account")
    assert dag.get_task("with_account").env.service_account == "task-sa"
    assert dag.get_task("overridden").env.service_account == "override-sa"
    result = dag_runner.run_dag(dag)
    assert result.state == "success", result.states
    assert result.value("with_account") == "ran" and result.value("overridden") == "ran"
