"""OpenLineage through dag.test() (docs/lineage.md): the openlineage provider's file transport, its two
``[openlineage]`` switches set in a child process's environment (Airflow reads them once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import TEST_DAGS
from tests.engines.dask.test_warm import warm_dir  # noqa: F401  (fixture)
from tests.support.procs import REPO

PARENT_KEYS = {"spark.openlineage.parentJobNamespace", "spark.openlineage.parentJobName",
               "spark.openlineage.parentRunId", "spark.openlineage.rootParentRunId",
               "spark.openlineage.rootParentJobName", "spark.openlineage.rootParentJobNamespace"}

_CHILD = """
import json, sys
from tests.support.dagrun import DagRunner
result = DagRunner().run(sys.argv[1], sys.argv[2])
print("RESULT=" + json.dumps({"state": result.state, "states": {k[0]: v for k, v in result.states.items()},
                              "xcoms": {k[0]: v for k, v in result.xcoms.items()}}, default=str), flush=True)
"""


def run_child(dag_file: str, dag_id: str, tmp_path: Path, *, switches: bool) -> tuple[dict[str, Any], list[dict]]:
    """``dag.test()`` in a fresh process with the file transport; its result and the events written."""
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0",
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_dir / "ol")}),
           "AIRFLOW__OPENLINEAGE__SPARK_INJECT_PARENT_JOB_INFO": str(switches).lower(),
           "AIRFLOW__OPENLINEAGE__SPARK_INJECT_TRANSPORT_INFO": str(switches).lower()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _CHILD, dag_file, dag_id], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, proc.stdout[-4000:] + proc.stderr[-4000:]
    events = [json.loads(path.read_text()) for path in sorted(events_dir.iterdir())]
    return json.loads(lines[0].removeprefix("RESULT=")), events


def task_event(events: list[dict], task_id: str, event_type: str) -> dict:
    found = [e for e in events if e["eventType"] == event_type and e["job"]["name"].endswith(f".{task_id}")]
    assert len(found) == 1, [(e["eventType"], e["job"]["name"]) for e in events]
    return found[0]


def test_switches_on_parent_in_spark_session_and_dask_workers_facet_on_complete(tmp_path):
    result, events = run_child(str(TEST_DAGS / "lineage_dag.py"), "lineage_dag", tmp_path, switches=True)
    assert result["state"] == "success", result["states"]

    start = task_event(events, "spark_parent", "START")
    conf = result["xcoms"]["spark_parent"]
    assert set(conf) >= PARENT_KEYS, conf
    assert conf["spark.openlineage.parentRunId"] == start["run"]["runId"]
    assert conf["spark.openlineage.parentJobName"] == start["job"]["name"] == "lineage_dag.spark_parent"
    assert conf["spark.openlineage.parentJobNamespace"] == start["job"]["namespace"]
    parent_facet = start["run"]["facets"]["parent"]  # the DAG run: the root of the Spark job too
    assert conf["spark.openlineage.rootParentRunId"] == parent_facet["run"]["runId"]
    # the file transport is none Spark's integration can use: the provider injects no transport for it
    assert not any(key.startswith("spark.openlineage.transport") for key in conf)

    # a key the user set is kept, and the provider's rule holds: none of the parent group is added then
    assert result["xcoms"]["spark_user_key"] == {"spark.openlineage.parentJobName": "mine"}

    dask = result["xcoms"]["dask_parent"]
    dask_start = task_event(events, "dask_parent", "START")
    expected = f"{dask_start['job']['namespace']}/lineage_dag.dask_parent/{dask_start['run']['runId']}"
    assert [w["OPENLINEAGE_PARENT_ID"] for w in dask["workers"]] == [expected]
    assert dask["task"]["OPENLINEAGE_PARENT_ID"] == expected
    root = dask_start["run"]["facets"]["parent"]
    assert dask["workers"][0]["OPENLINEAGE_ROOT_PARENT_ID"] == (
        f"{root['job']['namespace']}/{root['job']['name']}/{root['run']['runId']}")
    context = json.loads(dask["workers"][0]["OPENLINEAGE_CONTEXT"])
    assert context["parent"]["run"]["runId"] == dask_start["run"]["runId"]
    assert context["parent"]["root"]["run"]["runId"] == root["run"]["runId"]

    for task_id, count in (("ray_parent", 1), ("elastic_parent", 2)):
        start_event = task_event(events, task_id, "START")
        seen = [w["OPENLINEAGE_PARENT_ID"] for w in result["xcoms"][task_id]["workers"]]
        assert seen == [f"{start_event['job']['namespace']}/lineage_dag.{task_id}/{start_event['run']['runId']}"] * count
    assert len({w["pid"] for w in result["xcoms"]["elastic_parent"]["workers"]}) == 2  # two ranks, two processes
    ray_facet = task_event(events, "ray_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert ray_facet["engine"] == "Ray" and ray_facet["clusterSize"] == {"workers": 1} and ray_facet["job"]["rayJobId"]
    elastic_facet = task_event(events, "elastic_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert elastic_facet["clusterSize"] == {"nodes": 1, "processesPerNode": 2}, elastic_facet

    complete = task_event(events, "spark_parent", "COMPLETE")
    facet = complete["run"]["facets"]["flyte"]
    assert facet["engine"] == "Spark" and facet["placement"] == "local"
    assert facet["job"]["sparkApplicationId"].startswith("local-"), facet
    dask_facet = task_event(events, "dask_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert dask_facet["engine"] == "Dask" and dask_facet["clusterSize"] == {"workers": 1}
    assert dask_facet["job"]["daskSchedulerAddress"].startswith("tcp://127.0.0.1:"), dask_facet
    assert task_event(events, "dask_parent", "START")["run"]["facets"]["flyte"]["placement"] == "local"


def test_switches_off_nothing_injected(tmp_path):
    result, events = run_child(str(TEST_DAGS / "lineage_dag.py"), "lineage_dag", tmp_path, switches=False)
    assert result["state"] == "success", result["states"]
    assert events, "the listener still emits the task's own events"
    assert result["xcoms"]["spark_parent"] == {}
    assert result["xcoms"]["spark_user_key"] == {"spark.openlineage.parentJobName": "mine"}
    dask = result["xcoms"]["dask_parent"]
    assert dask["workers"] == [dict.fromkeys(("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID",
                                             "OPENLINEAGE_CONTEXT"))]
    assert dask["task"] == dask["workers"][0]
    for task_id in ("ray_parent", "elastic_parent"):
        assert all(w["OPENLINEAGE_PARENT_ID"] is None for w in result["xcoms"][task_id]["workers"])




def test_warm_spark_connect_sessions_each_hold_their_own_parent_on_one_server(tmp_path, warm_dir):  # noqa: F811
    result, events = run_child(str(TEST_DAGS / "lineage_warm_dag.py"), "lineage_warm_dag", tmp_path, switches=True)
    assert result["state"] == "success", result["states"]
    first, second = result["xcoms"]["first"], result["xcoms"]["second"]
    for task_id, seen in (("first", first), ("second", second)):
        start = task_event(events, task_id, "START")
        assert seen["conf"]["spark.openlineage.parentRunId"] == start["run"]["runId"], seen
        assert seen["conf"]["spark.openlineage.parentJobName"] == f"lineage_warm_dag.{task_id}"
        assert None not in seen["conf"].values(), seen
        facet = task_event(events, task_id, "COMPLETE")["run"]["facets"]["flyte"]
        assert facet["placement"] == "warm" and facet["job"]["sparkConnectSessionId"] == seen["session"]
    # a run's parent is its session's: the server (and its fingerprint) stays the same for the next run
    assert len(first["servers"]) == 1 and first["servers"] == second["servers"]
    assert first["session"] != second["session"]
    # the workers of a warm Dask scheduler (not the task's processes): a worker plugin sets each run's parent
    for task_id in ("dask_first", "dask_second"):
        start = task_event(events, task_id, "START")
        expected = f"{start['job']['namespace']}/lineage_warm_dag.{task_id}/{start['run']['runId']}"
        assert [w["OPENLINEAGE_PARENT_ID"] for w in result["xcoms"][task_id]] == [expected]
        assert json.loads(result["xcoms"][task_id][0]["OPENLINEAGE_CONTEXT"])["parent"]["run"]["runId"] == (
            start["run"]["runId"])
