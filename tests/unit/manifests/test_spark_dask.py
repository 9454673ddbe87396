"""SparkApplication and DaskJob manifests: valid against the upstream CRDs, field for field."""

from __future__ import annotations

import copy

import pytest
from kubernetes.client import ApiClient, V1Container, V1EnvVar, V1PodSpec, V1PodTemplateSpec, V1Toleration

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests import dask as dask_manifest
from airflow_provider_flyte.manifests import spark as spark_manifest
from airflow_provider_flyte.manifests.base import JobTarget
from airflow_provider_flyte.plugins.dask import Dask, Scheduler, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.resources import Resources
from tests.support import crds

TASK = TaskInfo(dag_id="etl", task_id="crunch", run_id="manual__2026-11-26T10:00:00+00:00")
ENV = {"PYTHONPATH": "/app", "FOO": "from-task"}

# A user's template as a dict and as the kubernetes client's model, with the same content.
USER_TEMPLATE = {
    "metadata": {"labels": {"team": "data"}},
    "spec": {
        "nodeSelector": {"pool": "spark"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}],
        "containers": [{"env": [{"name": "FOO", "value": "from-template"}]}],
    },
}
USER_MODEL = V1PodTemplateSpec(
    metadata={"labels": {"team": "data"}},
    spec=V1PodSpec(
        node_selector={"pool": "spark"},
        tolerations=[V1Toleration(key="dedicated", operator="Equal", value="spark", effect="NoSchedule")],
        containers=[V1Container(name="", env=[V1EnvVar(name="FOO", value="from-template")])],
    ),
)


def _target(resources: Resources | None = None, **kw) -> JobTarget:
    return JobTarget.for_task(TASK, image="repo/img:1", command=["python", "-m", "runner"], args=["--task", "t1"],
                              env=ENV, resources=resources, **kw)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def _only(containers: list[dict], name: str) -> dict:
    (found,) = [c for c in containers if c["name"] == name]
    return found


def _assert_template_kept(template: dict, container_name: str) -> None:
    """The user's template survives: its nodeSelector, tolerations, labels, and its own env entry wins."""
    spec = template["spec"]
    assert spec["nodeSelector"] == {"pool": "spark"}
    assert spec["tolerations"] == USER_TEMPLATE["spec"]["tolerations"]
    assert template["metadata"]["labels"]["team"] == "data"
    assert template["metadata"]["labels"]["dag_id"] == "etl"
    assert len(spec["containers"]) == 1  # the user's unnamed container became the main one, not a second
    env = _env(_only(spec["containers"], container_name))
    assert env["FOO"] == "from-template" and env["PYTHONPATH"] == "/app"
    assert [e["name"] for e in _only(spec["containers"], container_name)["env"]].count("FOO") == 1


# --------------------------------------------------------------------------------------------- Spark

SPARK_FULL = Spark(
    spark_conf={"spark.executor.instances": "3", "spark.executor.cores": "2", "spark.executor.memory": "2g",
                "spark.driver.cores": "1", "spark.sql.shuffle.partitions": "8"},
    hadoop_conf={"fs.s3a.endpoint": "http://minio:9000"},
    executor_path="/opt/venv/bin/python",
    applications_path="local:///app/main.py",
    driver_pod=copy.deepcopy(USER_TEMPLATE),
    executor_pod=USER_MODEL,
)


def test_spark_default_and_full_configs_are_valid_sparkapplications():
    default = spark_manifest.build_manifest(Spark(), _target(main_file="local:///app/entry.py"))
    full = spark_manifest.build_manifest(SPARK_FULL, _target(Resources(cpu=("500m", "2"), memory="1Gi", gpu=1)))
    for manifest in (default, full):
        assert crds.errors(manifest) == []
        assert (manifest["apiVersion"], manifest["kind"]) == ("sparkoperator.k8s.io/v1beta2", "SparkApplication")
        # template is schemaless in the CRD (x-kubernetes-preserve-unknown-fields): check it as a PodTemplateSpec
        for role in ("driver", "executor"):
            template = manifest["spec"][role]["template"]
            model = ApiClient()._ApiClient__deserialize(template, "V1PodTemplateSpec")
            assert ApiClient().sanitize_for_serialization(model) == template
    names = (spark_manifest.GROUP, spark_manifest.VERSION, spark_manifest.PLURAL, spark_manifest.KIND)
    assert names == ("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication")


def test_spark_fields_map_one_to_one():
    target = _target(Resources(cpu=("500m", "2"), memory=("1Gi", "3Gi"), gpu=1))
    m = spark_manifest.build_manifest(SPARK_FULL, target, spark_version="3.5.5")
    spec = m["spec"]
    assert m["metadata"] == {"name": target.name, "namespace": "default", "labels": target.labels}
    assert (spec["type"], spec["mode"], spec["image"]) == ("Python", "cluster", "repo/img:1")
    assert spec["mainApplicationFile"] == "local:///app/main.py"  # applications_path wins over main_file
    assert spec["arguments"] == ["--task", "t1"]
    assert spec["sparkVersion"] == "3.5.5"
    assert spec["restartPolicy"] == {"type": "Never"}
    assert spec["hadoopConf"] == {"fs.s3a.endpoint": "http://minio:9000"}
    conf = spec["sparkConf"]
    assert {k: conf[k] for k in SPARK_FULL.spark_conf} == SPARK_FULL.spark_conf
    # executorPath has no CRD field: Flyte's two properties carry it
    assert conf["spark.pyspark.python"] == conf["spark.pyspark.driver.python"] == "/opt/venv/bin/python"
    assert conf["spark.kubernetes.driver.podTemplateContainerName"] == "spark-kubernetes-driver"
    assert conf["spark.kubernetes.executor.podTemplateContainerName"] == "spark-kubernetes-executor"
    assert all(isinstance(v, str) for v in conf.values())
    driver, executor = spec["driver"], spec["executor"]
    assert executor["instances"] == 3
    assert (driver["cores"], executor["cores"], executor["memory"]) == (1, 2, "2g")
    # the conf sets cores: no coreRequest; the task's cpu limit becomes coreLimit; memory from Resources
    assert "coreRequest" not in driver and driver["coreLimit"] == executor["coreLimit"] == "2"
    assert driver["memory"] == "1024m" and driver["memoryLimit"] == executor["memoryLimit"] == "3Gi"
    for role, name in ((driver, "spark-kubernetes-driver"), (executor, "spark-kubernetes-executor")):
        container = _only(role["template"]["spec"]["containers"], name)
        assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                          "limits": {"cpu": "2", "memory": "3Gi", "nvidia.com/gpu": "1"}}
        assert _env(container)["PYTHONPATH"] == "/app"
        assert role["template"]["metadata"]["labels"]["task_id"] == "crunch"
        assert "command" not in container and "args" not in container  # the operator runs spark-submit


def test_spark_resources_fill_what_the_conf_leaves_unset():
    spec = spark_manifest.build_manifest(Spark(applications_path="local:///a.py"),
                                         _target(Resources(cpu="1500m", memory="512Mi")))["spec"]
    for role in ("driver", "executor"):
        assert spec[role]["coreRequest"] == "1500m"
        assert spec[role]["memory"] == "512m"
        assert "cores" not in spec[role] and "coreLimit" not in spec[role]
    assert "instances" not in spec["executor"] and "hadoopConf" not in spec
    # Flyte: limit.cores defaults to the request (or cores) set in the conf
    conf = spark_manifest.build_manifest(
        Spark(applications_path="local:///a.py", spark_conf={"spark.kubernetes.driver.request.cores": "0.5",
                                                             "spark.executor.cores": "4"}), _target())["spec"]["sparkConf"]
    assert conf["spark.kubernetes.driver.limit.cores"] == "0.5"
    assert conf["spark.kubernetes.executor.limit.cores"] == "4"


def test_spark_user_spark_conf_wins_over_executor_path():
    conf = spark_manifest.build_manifest(
        Spark(executor_path="/venv/bin/python", spark_conf={"spark.pyspark.python": "/other/python"}),
        _target(main_file="local:///a.py"))["spec"]["sparkConf"]
    assert conf["spark.pyspark.python"] == "/other/python"
    assert conf["spark.pyspark.driver.python"] == "/venv/bin/python"


@pytest.mark.parametrize("user", [USER_TEMPLATE, USER_MODEL], ids=["dict", "V1PodTemplateSpec"])
def test_spark_user_pod_templates_are_kept(user):
    config = Spark(applications_path="local:///a.py", driver_pod=copy.deepcopy(user), executor_pod=copy.deepcopy(user))
    m = spark_manifest.build_manifest(config, _target())
    assert crds.errors(m) == []
    _assert_template_kept(m["spec"]["driver"]["template"], "spark-kubernetes-driver")
    _assert_template_kept(m["spec"]["executor"]["template"], "spark-kubernetes-executor")


# spark-operator api/v1beta2 ApplicationStateType ("" is New); the CRD declares no enum (checked below).
SPARK_STATES = {
    "": (False, False), "SUBMITTED": (False, False), "RUNNING": (False, False), "COMPLETED": (True, True),
    "FAILED": (True, False), "SUBMISSION_FAILED": (True, False), "PENDING_RERUN": (False, False),
    "INVALIDATING": (False, False), "SUCCEEDING": (False, False), "FAILING": (False, False),
    "UNKNOWN": (False, False), "SUSPENDING": (False, False), "SUSPENDED": (False, False),
    "RESUMING": (False, False),
}


def test_spark_state_schema_has_no_enum_so_the_operators_list_is_the_source():
    state = crds.schema("SparkApplication", spark_manifest.API_VERSION)["properties"]["status"]["properties"][
        "applicationState"]["properties"]["state"]
    # If upstream ever declares an enum, compare it here with SPARK_STATES instead.
    assert "enum" not in state and state["type"] == "string"
    assert set(SPARK_STATES) >= spark_manifest.SUCCEEDED_STATES | spark_manifest.FAILED_STATES


@pytest.mark.parametrize(("state", "expected"), SPARK_STATES.items(), ids=lambda v: repr(v) if isinstance(v, str) else "")
def test_spark_job_state(state, expected):
    obj = {"status": {"applicationState": {"state": state, "errorMessage": "driver OOM"}}}
    result = spark_manifest.job_state(obj)
    assert (result.done, result.succeeded) == expected
    assert result.phase == (state or "NEW") and result.message == "driver OOM"


def test_spark_job_state_without_status_is_not_done():
    assert spark_manifest.job_state({}).done is False


def test_spark_validation_can_fail():
    m = spark_manifest.build_manifest(SPARK_FULL, _target())
    broken = copy.deepcopy(m)
    broken["spec"]["executor"]["instances"] = "3"
    del broken["spec"]["sparkVersion"]
    errors = crds.errors(broken)
    assert any(e.startswith("spec/executor/instances:") for e in errors), errors
    assert any("'sparkVersion' is a required property" in e for e in errors), errors


def test_spark_bad_inputs_name_the_field():
    with pytest.raises(FlyteConfigError, match=r"^Spark\.applications_path: "):
        spark_manifest.build_manifest(Spark(), _target())
    with pytest.raises(FlyteConfigError, match=r"^Spark\.spark_conf\['spark\.executor\.instances'\]: .*\(got '0'\)"):
        spark_manifest.build_manifest(Spark(spark_conf={"spark.executor.instances": "0"}), _target(main_file="a.py"))
    with pytest.raises(FlyteConfigError, match=r"^Spark\.spark_conf\['spark\.driver\.cores'\]: "):
        spark_manifest.build_manifest(Spark(spark_conf={"spark.driver.cores": "1.5"}), _target(main_file="a.py"))
    with pytest.raises(FlyteConfigError, match=r"^Spark\.driver_pod: "):
        spark_manifest.build_manifest(Spark(driver_pod=42), _target(main_file="a.py"))
    with pytest.raises(FlyteConfigError, match=r"^spark_version: "):
        spark_manifest.build_manifest(Spark(), _target(main_file="a.py"), spark_version="2.4.8")


# ---------------------------------------------------------------------------------------------- Dask

DASK_FULL = Dask(
    scheduler=Scheduler(image="repo/scheduler:2", resources=Resources(cpu="1", memory="2Gi")),
    workers=WorkerGroup(number_of_workers=4, image="repo/worker:3", resources=Resources(cpu=("2", "3"), memory="4Gi")),
)


def _parts(m: dict) -> tuple[dict, dict, dict]:
    cluster = m["spec"]["cluster"]["spec"]
    return m["spec"]["job"], cluster["scheduler"], cluster["worker"]


def test_dask_default_and_full_configs_are_valid_daskjobs():
    default = dask_manifest.build_manifest(Dask(), _target())
    full = dask_manifest.build_manifest(DASK_FULL, _target(Resources(cpu="1", memory="1Gi", gpu=1)),
                                        pod_template=USER_MODEL)
    for manifest in (default, full):
        assert crds.errors(manifest) == []
        assert (manifest["apiVersion"], manifest["kind"]) == ("kubernetes.dask.org/v1", "DaskJob")
    names = (dask_manifest.GROUP, dask_manifest.VERSION, dask_manifest.PLURAL, dask_manifest.KIND)
    assert names == ("kubernetes.dask.org", "v1", "daskjobs", "DaskJob")


def test_dask_fields_map_one_to_one():
    target = _target(Resources(cpu="1", memory="1Gi"))
    m = dask_manifest.build_manifest(DASK_FULL, target)
    assert m["metadata"] == {"name": target.name, "namespace": "default", "labels": target.labels}
    job, scheduler, worker = _parts(m)

    runner = _only(job["spec"]["containers"], "job")
    assert (runner["image"], runner["command"], runner["args"]) == ("repo/img:1", ["python", "-m", "runner"],
                                                                     ["--task", "t1"])
    assert _env(runner) == ENV
    assert runner["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert job["spec"]["restartPolicy"] == "Never"

    sched = _only(scheduler["spec"]["containers"], "scheduler")
    assert (sched["image"], sched["args"]) == ("repo/scheduler:2", ["dask", "scheduler"])  # the dask-scheduler script is gone from distributed
    assert sched["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
    assert {(p["name"], p["containerPort"]) for p in sched["ports"]} == {("tcp-comm", 8786), ("http-dashboard", 8787)}
    for probe in ("readinessProbe", "livenessProbe"):
        assert sched[probe]["httpGet"] == {"port": "http-dashboard", "path": "/health"}
    service = scheduler["service"]
    assert service["selector"] == {"dask.org/cluster-name": target.name, "dask.org/component": "scheduler"}
    assert {(p["port"], p["targetPort"]) for p in service["ports"]} == {(8786, "tcp-comm"), (8787, "http-dashboard")}

    assert worker["replicas"] == 4
    work = _only(worker["spec"]["containers"], "worker")
    assert work["image"] == "repo/worker:3"
    assert work["args"] == ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address",
                            "8788", "--nthreads", "3", "--memory-limit", str(4 * 2**30)]
    assert work["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "3"}}
    assert _env(work) == _env(sched) == ENV
    for part in (job, scheduler, worker):
        assert part["metadata"]["labels"] == target.labels


def test_dask_defaults_fall_back_to_the_task():
    target = _target(Resources(cpu="500m", memory="1Gi"))
    job, scheduler, worker = _parts(dask_manifest.build_manifest(Dask(workers=WorkerGroup(number_of_workers=None)),
                                                                 target))
    assert worker["replicas"] == 1
    for part, name in ((scheduler, "scheduler"), (worker, "worker")):
        container = _only(part["spec"]["containers"], name)
        assert container["image"] == "repo/img:1"
        assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert _only(worker["spec"]["containers"], "worker")["args"][-4:] == ["--nthreads", "1", "--memory-limit",
                                                                           str(2**30)]
    # 0 workers would leave the job waiting forever: refused when the config is built (docs/errors.md).
    with pytest.raises(FlyteConfigError, match=r"WorkerGroup\.number_of_workers: must be at least 1"):
        WorkerGroup(number_of_workers=0)


@pytest.mark.parametrize("user", [USER_TEMPLATE, USER_MODEL], ids=["dict", "V1PodTemplateSpec"])
def test_dask_user_pod_template_is_kept_on_every_pod(user):
    m = dask_manifest.build_manifest(DASK_FULL, _target(), pod_template=copy.deepcopy(user))
    assert crds.errors(m) == []
    for part, name in zip(_parts(m), ("job", "scheduler", "worker"), strict=True):
        _assert_template_kept(part, name)


# dask-kubernetes operator/controller/controller.py sets these; the CRD declares no enum (checked below).
DASK_STATES = {
    "JobCreated": (False, False), "ClusterCreated": (False, False), "Running": (False, False),
    "Successful": (True, True), "Failed": (True, False),
}


def test_dask_job_status_schema_has_no_enum_so_the_controllers_list_is_the_source():
    status = crds.schema("DaskJob", dask_manifest.API_VERSION)["properties"]["status"]["properties"]["jobStatus"]
    assert "enum" not in status and status["type"] == "string"
    assert set(DASK_STATES) >= dask_manifest.SUCCEEDED_STATES | dask_manifest.FAILED_STATES


@pytest.mark.parametrize(("state", "expected"), DASK_STATES.items(), ids=list(DASK_STATES))
def test_dask_job_state(state, expected):
    result = dask_manifest.job_state({"status": {"jobStatus": state, "jobRunnerPodName": "j-runner"}})
    assert (result.phase, result.done, result.succeeded) == (state, *expected)
    assert ("j-runner" in result.message) == (state == "Failed")


def test_dask_job_state_without_status_is_not_done():
    assert dask_manifest.job_state({"status": None}).done is False


def test_dask_validation_can_fail():
    broken = dask_manifest.build_manifest(DASK_FULL, _target())
    broken["spec"]["cluster"]["spec"]["scheduler"]["service"]["ports"][0]["targetPort"] = 8786
    del broken["spec"]["cluster"]["spec"]["worker"]["spec"]["containers"][0]["name"]
    errors = crds.errors(broken)
    assert any(e.startswith("spec/cluster/spec/scheduler/service/ports/0/targetPort:") for e in errors), errors
    assert any("'name' is a required property" in e for e in errors), errors


def test_dask_bad_inputs_name_the_field():
    with pytest.raises(FlyteConfigError, match=r"^pod_template: "):
        dask_manifest.build_manifest(Dask(), _target(), pod_template="nodeSelector: x")
    with pytest.raises(FlyteConfigError, match=r"^WorkerGroup\.number_of_workers: "):
        dask_manifest.build_manifest(Dask(workers=WorkerGroup(number_of_workers=-1)), _target())
