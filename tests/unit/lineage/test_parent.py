"""What a task run's engine job is told of its OpenLineage parent (lineage/parent.py), down to the
Kubernetes objects that carry it; and that parsing a DAG imports no OpenLineage module."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.lineage import parent
from airflow_provider_flyte.manifests import dask as dask_manifest
from airflow_provider_flyte.manifests import pytorch as pytorch_manifest
from airflow_provider_flyte.manifests import spark as spark_manifest
from airflow_provider_flyte.manifests.base import JobTarget
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.spark import Spark
from tests.conftest import REPO, TEST_DAGS

PARENT_KEYS = {"spark.openlineage.parentJobNamespace", "spark.openlineage.parentJobName",
               "spark.openlineage.parentRunId", "spark.openlineage.rootParentRunId",
               "spark.openlineage.rootParentJobName", "spark.openlineage.rootParentJobNamespace"}
TASK = TaskInfo(dag_id="etl", task_id="crunch", run_id="manual__2026-11-26T10:00:00+00:00")


class _TaskInstance(SimpleNamespace):
    """What the openlineage provider's macros read of a task instance (plain data, no database)."""

    def get_template_context(self) -> dict:
        return {"dag_run": self.dag_run}


def _context() -> dict:
    run = SimpleNamespace(logical_date=datetime(2026, 11, 26, 10, tzinfo=timezone.utc), run_after=None,
                          clear_number=0, conf={})
    return {"ti": _TaskInstance(dag_id="etl", task_id="crunch", try_number=1, map_index=-1, dag_run=run)}


def _clear_openlineage_caches() -> None:
    from airflow.providers.openlineage import conf as ol_conf

    for value in vars(ol_conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def openlineage(monkeypatch):
    """The provider enabled (a transport configured) with both switches on; its caches cleared around."""
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": "console"}))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__SPARK_INJECT_PARENT_JOB_INFO", "true")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__SPARK_INJECT_TRANSPORT_INFO", "true")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "prod")
    _clear_openlineage_caches()
    yield monkeypatch
    monkeypatch.undo()
    _clear_openlineage_caches()


def _target(env: dict[str, str]) -> JobTarget:
    return JobTarget.for_task(TASK, image="repo/img:1", command=["python", "-m", "runner"], env=env,
                              main_file="local:///app/main.py")


def _pod_envs(body: object) -> list[dict[str, str]]:
    """The env of every container of every pod template in a job object."""
    found: list[dict[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "containers" in node:
                found.extend({e["name"]: e.get("value") for e in c.get("env", [])} for c in node["containers"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def test_spark_application_spark_conf_holds_the_six_parent_keys(openlineage):
    config, env = parent.inject(Spark(spark_conf={"spark.ui.enabled": "false"}), _context())
    assert env == {}  # Spark is told through its properties
    body = spark_manifest.build_manifest(config, _target({}))
    spark_conf = body["spec"]["sparkConf"]
    assert set(spark_conf) >= PARENT_KEYS
    assert spark_conf["spark.openlineage.parentJobName"] == "etl.crunch"
    assert spark_conf["spark.openlineage.parentJobNamespace"] == "prod"
    assert spark_conf["spark.openlineage.rootParentJobName"] == "etl"
    assert spark_conf["spark.ui.enabled"] == "false"
    # the console transport is none Spark's integration can use: nothing of it injected
    assert not any(key.startswith("spark.openlineage.transport") for key in spark_conf)


def test_a_users_parent_key_is_kept_and_none_of_the_group_added(openlineage):
    config, _ = parent.inject(Spark(spark_conf={"spark.openlineage.parentRunId": "mine"}), _context())
    assert {k: v for k, v in config.spark_conf.items() if k.startswith("spark.openlineage.")} == {
        "spark.openlineage.parentRunId": "mine"}


_HTTP_CHILD = """
import json, sys
from tests.unit.lineage.test_parent import _context
from airflow_provider_flyte.lineage import parent
from airflow_provider_flyte.plugins.spark import Spark
config, _ = parent.inject(Spark(spark_conf=json.loads(sys.argv[1])), _context())
print("CONF=" + json.dumps(config.spark_conf))
"""


def _in_child(env: dict[str, str], spark_conf: dict[str, str]) -> dict[str, str]:
    """The openlineage listener keeps its transport for the process: another transport needs another process."""
    import os

    child_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", _HTTP_CHILD, json.dumps(spark_conf)], capture_output=True, text=True,
                          timeout=300, env=child_env, cwd=str(REPO))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("CONF=")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(lines[0].removeprefix("CONF=")))


def test_http_transport_is_injected_only_when_its_switch_is_on():
    env = {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "http", "url": "http://127.0.0.1:5000",
                                                         "endpoint": "api/v1/lineage"}),
           "AIRFLOW__OPENLINEAGE__SPARK_INJECT_PARENT_JOB_INFO": "true",
           "AIRFLOW__OPENLINEAGE__SPARK_INJECT_TRANSPORT_INFO": "true"}
    conf = _in_child(env, {})
    assert conf["spark.openlineage.transport.type"] == "http"
    assert conf["spark.openlineage.transport.url"] == "http://127.0.0.1:5000"
    assert set(conf) >= PARENT_KEYS
    # the user's transport wins (the provider's rule: none of the group is added then)
    assert _in_child(env, {"spark.openlineage.transport.type": "console"}) == {
        "spark.openlineage.transport.type": "console", **{k: conf[k] for k in PARENT_KEYS}}
    conf = _in_child({**env, "AIRFLOW__OPENLINEAGE__SPARK_INJECT_TRANSPORT_INFO": "false"}, {})
    assert not any(key.startswith("spark.openlineage.transport") for key in conf)
    assert set(conf) >= PARENT_KEYS


@pytest.mark.parametrize("engine", ["dask", "pytorch"])
def test_every_pod_of_a_job_gets_the_parent_run_variables(openlineage, engine):
    config = Dask(workers=WorkerGroup(number_of_workers=2)) if engine == "dask" else Elastic(nnodes=2, nproc_per_node=1)
    same, env = parent.inject(config, _context())
    assert same is config
    assert set(env) == set(parent.ENV_NAMES)
    namespace, name, run_id = env["OPENLINEAGE_PARENT_ID"].split("/")
    assert (namespace, name) == ("prod", "etl.crunch")
    assert env["OPENLINEAGE_ROOT_PARENT_ID"].startswith("prod/etl/")
    context = json.loads(env["OPENLINEAGE_CONTEXT"])
    assert context["parent"]["run"]["runId"] == run_id
    assert context["parent"]["root"]["job"] == {"namespace": "prod", "name": "etl"}
    module = dask_manifest if engine == "dask" else pytorch_manifest
    envs = _pod_envs(module.build_manifest(config, _target({**env, "FOO": "bar"})))
    assert envs and all(e.get("OPENLINEAGE_PARENT_ID") == env["OPENLINEAGE_PARENT_ID"] for e in envs), envs


def test_switches_off_or_provider_disabled_inject_nothing(openlineage):
    for name, value in (("SPARK_INJECT_PARENT_JOB_INFO", "false"), ("SPARK_INJECT_TRANSPORT_INFO", "false")):
        openlineage.setenv(f"AIRFLOW__OPENLINEAGE__{name}", value)
    _clear_openlineage_caches()
    spark = Spark(spark_conf={"spark.ui.enabled": "false"})
    assert parent.inject(spark, _context()) == (spark, {})
    openlineage.setenv("AIRFLOW__OPENLINEAGE__SPARK_INJECT_PARENT_JOB_INFO", "true")
    openlineage.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "true")
    _clear_openlineage_caches()
    assert parent.inject(spark, _context()) == (spark, {})
    dask = Dask()
    assert parent.inject(dask, _context()) == (dask, {})
    assert parent.inject(None, _context()) == (None, {})


def test_a_warm_server_never_sees_a_runs_parent():
    env = {"OPENLINEAGE_PARENT_ID": "a/b/c", "OPENLINEAGE_ROOT_PARENT_ID": "a/b/d", "OPENLINEAGE_CONTEXT": "{}",
           "FOO": "bar"}
    assert parent.without_lineage_env(env) == {"FOO": "bar"}


def test_parsing_a_dag_imports_no_openlineage_module():
    """As the DAG processor parses (BundleDagBag), in a fresh process: no openlineage module is imported."""
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        f"bag = BundleDagBag(dag_folder={str(TEST_DAGS / 'lineage_dag.py')!r}, bundle_path={str(TEST_DAGS)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "assert 'lineage_dag' in bag.dags\n"
        "import airflow_provider_flyte.operators.base\n"
        # Airflow's providers manager reads every installed provider's get_provider_info: not ours to avoid
        "known = {'airflow.providers.openlineage', 'airflow.providers.openlineage.get_provider_info'}\n"
        "print(sorted(m for m in sys.modules if m.startswith(('openlineage', 'airflow.providers.openlineage',"
        " 'airflow.providers.common.compat.openlineage')) and m not in known))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(REPO),
                          env={**__import__("os").environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": '{"type": "console"}'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-3000:]
