"""A RayJob carries the task's env in ``runtimeEnvYAML``, not in its pods: a secret value leaves it too.

(The end-to-end runs are in tests/kubernetes/test_secret_places.py; RayJob here, without an engine.)
"""

from __future__ import annotations

import yaml

from airflow_provider_flyte.core.sealed import Sealed, unseal
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.manifests.base import MANAGED_BY, JobTarget
from airflow_provider_flyte.manifests.pod_settings import seal_manifest
from airflow_provider_flyte.manifests.ray import build_manifest
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

SECRET = "ray-secret-9d41c0"


def test_a_secret_env_value_leaves_the_rayjob_and_comes_back_in_the_pod() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "DATABASE": f"postgresql://etl:{SECRET}@db/wh", "MODE": "batch"}
    spec = TaskSpec(env_vars=env)
    sealed = Sealed.of(spec)
    target = JobTarget(name="etl-train-0a1b2c3d", namespace="ml", image="repo/img:1", labels=dict(MANAGED_BY),
                       command=["python", "-m", "airflow_provider_flyte.runtime", "file:///s/spec.json"], env=env)
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)],
                          runtime_env={"pip": ["pandas"]})
    body = build_manifest(config, target)
    data = seal_manifest(body, sealed, target.name)
    assert SECRET not in yaml.safe_dump(body)
    runtime_env = yaml.safe_load(body["spec"]["runtimeEnvYAML"])
    assert runtime_env == {"pip": ["pandas"], "env_vars": {"MODE": "batch"}}
    assert set(data.values()) == {SECRET}  # the Secret's data; every pod reads it as FLYTE_SEALED_0
    for group in [body["spec"]["rayClusterSpec"]["headGroupSpec"], *body["spec"]["rayClusterSpec"]["workerGroupSpecs"]]:
        (container,) = group["template"]["spec"]["containers"]
        assert {"name": "FLYTE_SEALED_0", "valueFrom": {"secretKeyRef": {"name": f"{target.name}-secrets",
                                                                         "key": "c0"}}} in container["env"]
    # spec.json holds placeholders (a password in a URL too); the pod puts the values back
    staged = sealed.seal_document(spec.to_json())
    assert SECRET not in yaml.safe_dump(staged)
    assert staged["env_vars"]["DATABASE"] == "postgresql://etl:<flyte-sealed:FLYTE_SEALED_0>@db/wh"
    assert TaskSpec.from_json(unseal(staged, {"FLYTE_SEALED_0": SECRET})).env_vars == env


def test_spark_properties_holding_a_secret_leave_the_sparkapplication() -> None:
    from airflow_provider_flyte.manifests.spark import build_manifest as spark_manifest
    from airflow_provider_flyte.plugins.spark import Spark

    config = Spark(spark_conf={"spark.executor.instances": "1", "spark.executorEnv.DB_PASSWORD": SECRET,
                               "spark.kubernetes.driverEnv.DB_PASSWORD": SECRET},
                   hadoop_conf={"fs.s3a.secret.key": SECRET})
    sealed = Sealed.of(TaskSpec(config=config.to_dict()))
    target = JobTarget(name="etl-load-0a1b2c3d", namespace="ml", image="repo/img:1", labels=dict(MANAGED_BY),
                       command=[], args=["file:///s/spec.json"], main_file="local:///app/main.py", env={"MODE": "batch"})
    body = spark_manifest(config, target)
    seal_manifest(body, sealed, target.name)
    assert SECRET not in yaml.safe_dump(body)
    assert body["spec"]["sparkConf"]["spark.executor.instances"] == "1"  # the other properties stay
    assert body["spec"].get("hadoopConf", {}) == {}
    for role in ("driver", "executor"):  # the env var the property meant, from the Secret
        (container,) = body["spec"][role]["template"]["spec"]["containers"]
        (entry,) = [e for e in container["env"] if e["name"] == "DB_PASSWORD"]
        assert entry["valueFrom"]["secretKeyRef"]["name"] == f"{target.name}-secrets"
        assert {"name": "MODE", "value": "batch"} in container["env"]
