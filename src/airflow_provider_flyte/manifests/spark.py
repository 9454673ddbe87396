"""``Spark`` as a spark-operator ``SparkApplication`` (``sparkoperator.k8s.io/v1beta2``).

The shape follows flyteplugins' Spark backend plugin (``flyteplugins/go/tasks/plugins/k8s/spark``):

- ``executor_path``: the CRD has no ``executorPath`` field, so, as Flyte does, it becomes
  ``spark.pyspark.python`` and ``spark.pyspark.driver.python`` in ``sparkConf`` (the user's
  ``spark_conf`` wins over both).
- ``driver_pod`` / ``executor_pod``: the user's pod template is the base of the driver's and
  executors' ``template`` (a ``PodTemplateSpec``, Spark >= 3.0), never dropped; the Spark
  container in it is ``spark-kubernetes-driver`` / ``spark-kubernetes-executor`` (the names the
  operator and Spark look for, also set as ``spark.kubernetes.*.podTemplateContainerName``).
  The task's env and resources go on that container, under the template's own values; labels
  go on the template's metadata.
- ``cores`` / ``memory`` / ``executor.instances`` come from ``spark.{driver,executor}.cores``,
  ``spark.{driver,executor}.memory`` and ``spark.executor.instances`` as in Flyte. Where the
  conf leaves them unset the task's :class:`~airflow_provider_flyte.resources.Resources` fill
  ``coreRequest`` / ``coreLimit`` / ``memory`` / ``memoryLimit`` (Spark would otherwise size
  the pods from its defaults and override the template's cpu and memory). ``memory`` is the
  JVM heap (Spark adds its memory overhead on top, ``spark.{driver,executor}.memoryOverhead``).
  As Flyte does, ``spark.kubernetes.*.limit.cores`` defaults to the request or cores set in
  the conf.
- ``restartPolicy`` is ``Never``: a failed try is retried by Airflow, not by the operator.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.base import JobState, JobTarget, object_meta, pod_template, with_labels
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.resources import Resources, memory_bytes

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SparkApplication"
PLURAL = "sparkapplications"

#: ``spec.sparkVersion`` (required by the CRD) when the caller gives none. The operator only
#: compares it with 3.0.0: pod templates need >= 3.0.0 (its validating webhook refuses a
#: template below), and below 3.0.0 it mutates pods through its webhook instead. Flyte sets
#: the same minimum. Pass the image's real version as ``spark_version=`` where it is known.
DEFAULT_SPARK_VERSION = "3.0.0"

DRIVER_CONTAINER = "spark-kubernetes-driver"
EXECUTOR_CONTAINER = "spark-kubernetes-executor"

#: ``status.applicationState.state`` values (spark-operator ``api/v1beta2``
#: ``ApplicationStateType``; ``""`` is New). Only these three are final with
#: ``restartPolicy: Never``: the operator stops at COMPLETED/FAILED, and a SUBMISSION_FAILED
#: application is not resubmitted (Flyte and Kueue treat it as final too).
SUCCEEDED_STATES = frozenset({"COMPLETED"})
FAILED_STATES = frozenset({"FAILED", "SUBMISSION_FAILED"})


def build_manifest(config: Spark, target: JobTarget, *, spark_version: str = DEFAULT_SPARK_VERSION) -> dict[str, Any]:
    """The ``SparkApplication`` that runs ``target`` with ``config``."""
    main_file = config.applications_path or target.main_file
    if not main_file:
        raise FlyteConfigError(
            "Spark.applications_path", None, "a SparkApplication needs a main application file",
            'set Spark(applications_path="local:///path/in/image/main.py") or run the task through a target '
            "with a main_file",
        )
    _check_version(spark_version)
    conf = _spark_conf(config)
    spec: dict[str, Any] = {
        "type": "Python",
        "mode": "cluster",
        "image": target.image,
        "mainApplicationFile": main_file,
        "arguments": list(target.args),
        "sparkVersion": spark_version,
        "sparkConf": conf,
        "restartPolicy": {"type": "Never"},
        "driver": _role(config.driver_pod, "Spark.driver_pod", "driver", DRIVER_CONTAINER, conf, target),
        "executor": _role(config.executor_pod, "Spark.executor_pod", "executor", EXECUTOR_CONTAINER, conf, target),
    }
    if config.hadoop_conf:
        spec["hadoopConf"] = {str(k): str(v) for k, v in config.hadoop_conf.items()}
    instances = _positive_int(conf, "spark.executor.instances")
    if instances is not None:
        spec["executor"]["instances"] = instances
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": object_meta(target), "spec": spec}


def job_state(obj: dict[str, Any]) -> JobState:
    """Whether the application ended, from ``status.applicationState`` (missing: NEW)."""
    app_state = (obj.get("status") or {}).get("applicationState") or {}
    state = app_state.get("state") or "NEW"
    message = app_state.get("errorMessage") or ""
    if state in SUCCEEDED_STATES:
        return JobState(state, done=True, succeeded=True, message=message)
    return JobState(state, done=state in FAILED_STATES, succeeded=False, message=message)


def _check_version(version: str) -> None:
    major = version.split(".", 1)[0]
    if not (major.isdigit() and int(major) >= 3):
        raise FlyteConfigError(
            "spark_version", version, "driver and executor pod templates need Spark 3.0.0 or later",
            'pass the Spark version of the image, e.g. spark_version="3.5.5"',
        )


def _spark_conf(config: Spark) -> dict[str, str]:
    """``sparkConf`` as Flyte builds it: ``executor_path`` first, the user's ``spark_conf`` over it."""
    conf: dict[str, str] = {}
    if config.executor_path:
        conf["spark.pyspark.python"] = config.executor_path
        conf["spark.pyspark.driver.python"] = config.executor_path
    conf.update({str(k): str(v) for k, v in (config.spark_conf or {}).items()})
    conf.setdefault("spark.kubernetes.driver.podTemplateContainerName", DRIVER_CONTAINER)
    conf.setdefault("spark.kubernetes.executor.podTemplateContainerName", EXECUTOR_CONTAINER)
    return conf


def _role(
    user_template: Any, field_name: str, role: str, container: str, conf: dict[str, str], target: JobTarget,
) -> dict[str, Any]:
    """The driver's or executor's spec: pod template, cores and memory (may add to ``conf``)."""
    template = pod_template(user_template, field_name, container_name=container, env=target.env,
                            resources=target.resources)
    spec: dict[str, Any] = {"template": with_labels(template, target.labels)}
    cores = _positive_int(conf, f"spark.{role}.cores")
    if cores is not None:
        spec["cores"] = cores
    if conf.get(f"spark.{role}.memory"):
        spec["memory"] = conf[f"spark.{role}.memory"]
    request_key, limit_key = f"spark.kubernetes.{role}.request.cores", f"spark.kubernetes.{role}.limit.cores"
    res = target.resources or Resources()
    cpu_request, cpu_limit = _split(res.cpu)
    if cpu_request is not None and cores is None and request_key not in conf:
        spec["coreRequest"] = cpu_request
    if limit_key not in conf:
        if cpu_limit is not None:
            spec["coreLimit"] = cpu_limit
        elif conf.get(request_key) or conf.get(f"spark.{role}.cores"):  # Flyte: limit = request or cores
            conf[limit_key] = conf.get(request_key) or conf[f"spark.{role}.cores"]
    mem_request, mem_limit = _split(res.memory)
    if mem_request is not None and "memory" not in spec:
        spec["memory"] = f"{math.ceil(memory_bytes(mem_request) / 2**20)}m"
    if mem_limit is not None:
        spec["memoryLimit"] = mem_limit
    return spec


def _split(value: Any) -> tuple[str | None, str | None]:
    """``(request, limit)`` of a Resources value as strings (a plain value is the request)."""
    if value is None:
        return None, None
    if isinstance(value, tuple):
        return str(value[0]), str(value[1])
    return str(value), None


def _positive_int(conf: dict[str, str], key: str) -> int | None:
    """``conf[key]`` as an int >= 1 (the CRD's ``minimum: 1``), or None when unset."""
    if key not in conf:
        return None
    raw = conf[key].strip()
    if not raw.isdigit() or int(raw) < 1:
        raise FlyteConfigError(
            f"Spark.spark_conf[{key!r}]", conf[key], "must be a whole number of at least 1",
            f'use e.g. spark_conf={{"{key}": "2"}}',
        )
    return int(raw)
