"""Bad Flyte-style input fails clearly (FlyteConfigError naming field, value and fix); good input is accepted."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from airflow_provider_flyte import Resources, TaskEnvironment
from airflow_provider_flyte.resources import GPU, Device
from tests.conftest import TEST_DAGS
from tests.support.config_errors import check_message, raises_config_error

_DAG = '''
from datetime import datetime
from airflow.sdk import dag
from airflow_provider_flyte import TaskEnvironment

env = TaskEnvironment(name="inc", include={include!r})

@dag(dag_id="include_{name}", schedule=None, start_date=datetime(2025, 1, 1))
def d():
    @env.task
    def t() -> int:
        return 1
    t()

d()
'''


@pytest.fixture
def project(dag_runner):
    folder = TEST_DAGS / "porting_include"
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "page.html").write_text("<p>hi</p>")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _errors(dag_runner, folder, name, include):
    (folder / f"{name}.py").write_text(_DAG.format(include=include, name=name))
    return dag_runner.import_errors(f"{folder.name}/{name}.py")


def test_include_leaving_the_project_is_a_parse_error(dag_runner, project):
    errors = _errors(dag_runner, project, "leaves", ("../../../../etc",))
    (message,) = errors.values()
    check_message(message, "TaskEnvironment.include", "../../../../etc", fix="include only files inside",
                  problem="leaves the project")


def test_include_glob_matching_nothing_is_a_parse_error(dag_runner, project):
    errors = _errors(dag_runner, project, "nothing", ("templates/*.jinja",))
    (message,) = errors.values()
    check_message(message, "TaskEnvironment.include", "templates/*.jinja", fix="fix the path or glob, or remove it",
                  problem="matches no file")


def test_include_adds_files_and_keeps_the_dag_folder_as_root(dag_runner, project):
    assert _errors(dag_runner, project, "good", ("templates/*.html",)) == {}
    dag = dag_runner.load(f"{project.name}/good.py", "include_good")
    env = dag.get_task("t").env
    assert env.include_files == (str((project / "templates" / "page.html").resolve()),)
    assert env.project_root == TEST_DAGS.resolve()  # the code's root, not templates/


def test_gpu_minus_one_is_refused():
    with raises_config_error("Resources.gpu", -1, fix='GPU("A100", 2)', problem="greater than or equal to 0"):
        Resources(gpu=-1)


def test_gpu_quantity_zero_is_refused():
    with raises_config_error("GPU.quantity", 0, fix='GPU("A100", 1)', problem="at least 1"):
        GPU("A100", 0)


@pytest.mark.parametrize(("bad", "fix"), [
    ("lots", 'use a count (gpu=1), an accelerator string (gpu="A100:2")'),
    ("A100", 'use a count (gpu=1), an accelerator string (gpu="A100:2")'),
    ("A100:x", 'use a count (gpu=1), an accelerator string (gpu="A100:2")'),
    (1.5, "pass a value of type int | str | Device | None"),  # pydantic's type check comes first
])
def test_gpu_nonsense_is_refused(bad, fix):
    with raises_config_error("Resources.gpu", bad, fix=fix):
        Resources(gpu=bad)


def test_gpu_forms_flyte_accepts():
    assert Resources(gpu=2).get_device() == Device(quantity=2)
    assert Resources(gpu="A100:2").get_device() == Device(quantity=2, device="A100")
    assert Resources(gpu=GPU("H100", 1, "1g.10gb")).gpu_count == 1
    assert Resources(gpu=0).gpu_count == 0
    assert Resources(cpu=0).cpu_request is None  # Flyte accepts cpu=0: no request
    assert Resources(shm="auto").get_shared_memory() == ""
    assert Resources(shm="1Gi").shared_memory == "1Gi"
    with raises_config_error("GPU.partition", "9g.99gb", fix="use one of 1g.5gb", problem="not a partition of A100"):
        GPU("A100", 1, "9g.99gb")


def test_unknown_override_parameter_lists_the_accepted_ones():
    env = TaskEnvironment(name="plain")

    @env.task
    def t() -> int:
        return 1

    with raises_config_error("t.override().no_such_param", 3, fix="use one of Flyte's",
                             problem="not a Flyte or Airflow task parameter") as info:
        t.override(no_such_param=3)
    message = str(info.value)
    for name in ("short_name", "resources", "env_vars", "timeout", "retries", "plugin_config", "reusable",
                 "secrets", "pod_template", "cache", "interruptible", "queue"):
        assert name in message
    with raises_config_error("t.override().max_inline_io_bytes", 10, fix="remove it (XCom's own size limits apply)",
                             problem="no Airflow meaning"):
        t.override(max_inline_io_bytes=10)


def test_flyte_parameters_map_to_airflow():
    from airflow.sdk import dag

    env = TaskEnvironment(name="plain", queue="q1")

    @env.task(short_name="nice", timeout=timedelta(minutes=2), retries=3)
    def t() -> int:
        return 1

    @dag(schedule=None)
    def d():
        t()
        t.override(resources=Resources(cpu="2"), env_vars={"A": "1"}, timeout=5, queue="q2")()
        t.override(task_id="airflow_res", resources={"cpus": 2})()

    built = {task.task_id: task for task in d().tasks}
    first = built["nice"]
    assert first.task_display_name == "nice" and first.retries == 3 and first.queue == "q1"
    assert first.execution_timeout == timedelta(minutes=2)
    second = next(task for tid, task in built.items() if tid not in ("nice", "airflow_res"))
    assert second.env.resources == Resources(cpu="2") and second.env.env_vars == {"A": "1"}
    assert second.execution_timeout == timedelta(seconds=5) and second.queue == "q2"
    assert second.resources is None  # Flyte's Resources never reach BaseOperator.resources
    assert built["airflow_res"].resources is not None and built["airflow_res"].env.resources is None


def test_environment_fields_as_flyte():
    from airflow_provider_flyte.secrets import Secret

    base = TaskEnvironment(name="base", secrets="api_key", interruptible=True, service_account="sa",
                           depends_on=[TaskEnvironment(name="other")], description="d" * 300)
    assert len(base.description) == 255 and base.description.endswith("...(tr.)")
    assert base.secrets_list == [Secret(key="api_key")]
    clone = base.clone_with("new_name", env_vars={"X": "1"})
    assert (clone.name, clone.env_vars, clone.interruptible, clone.service_account) == ("new_name", {"X": "1"},
                                                                                      True, "sa")
    with raises_config_error("TaskEnvironment.clone_with", ["bogus"], fix="use only cache, conn_id",
                             problem="Unexpected keyword"):
        base.clone_with("x", bogus=1)
    with raises_config_error("TaskEnvironment.name", "Bad__Name", fix='e.g. "spark_env"',
                             problem="snake_case or kebab-case"):
        TaskEnvironment(name="Bad__Name")
    with raises_config_error("TaskEnvironment.cache", "auto", fix='drop cache= (or use cache="disable")',
                             problem="no task-result cache"):
        TaskEnvironment(name="cached", cache="auto")
    with raises_config_error("TaskEnvironment.pod_template", "my-template", fix="pass the template itself",
                             problem="named pod template"):
        TaskEnvironment(name="pt", pod_template="my-template")
    with raises_config_error("TaskEnvironment.include", "templates", fix="include=('templates',)",
                             problem="bare str"):
        TaskEnvironment(name="inc", include="templates")
