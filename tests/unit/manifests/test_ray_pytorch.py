"""RayJob and PyTorchJob manifests: valid against the upstream CRDs, field for field, templates kept."""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import pytest
import yaml
from kubernetes.client import V1Container, V1EnvVar, V1PodSpec, V1PodTemplateSpec, V1Toleration

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests import pytorch as torch_manifest
from airflow_provider_flyte.manifests import ray as ray_manifest
from airflow_provider_flyte.manifests.base import MANAGED_BY, JobTarget
from airflow_provider_flyte.plugins.pytorch import Elastic, RunPolicy
from airflow_provider_flyte.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from airflow_provider_flyte.resources import Resources
from tests.support import crds

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABELS = {"dag_id": "etl", "task_id": "train", "try_number": "1", **MANAGED_BY}


def _target(**kw: Any) -> JobTarget:
    base: dict[str, Any] = {
        "name": "etl-train-0a1b2c3d", "namespace": "ml", "image": "repo/img:1", "labels": dict(LABELS),
        "command": ["python", "-m", "airflow_provider_flyte.run"], "args": ["--task", "train it"],
        "env": {"MODE": "ours", "TASK_ENV": "1"}, "resources": Resources(cpu="2", memory="4Gi"),
    }
    return JobTarget(**{**base, **kw})


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys the schema does not declare (the CRDs allow them; Kubernetes would prune them silently)."""
    found: list[str] = []
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            sub = schema["properties"].get(key)
            if sub is None:
                if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
                    found.append(f"{path}/{key}")
                continue
            found += unknown_fields(value, sub, f"{path}/{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}/{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(obj):
            found += unknown_fields(value, schema["items"], f"{path}/{i}")
    return found


def assert_valid(manifest: dict[str, Any]) -> None:
    assert crds.errors(manifest) == []
    assert unknown_fields(manifest, crds.schema(manifest["kind"], manifest["apiVersion"])) == []
    assert DNS_1035.match(manifest["metadata"]["name"]), manifest["metadata"]["name"]


def _user_template(form: str, container: str) -> Any:
    """A pod template with a node selector, a toleration and its own env entry (MODE=user)."""
    if form == "model":
        return V1PodTemplateSpec(spec=V1PodSpec(
            node_selector={"pool": "gpu"}, tolerations=[V1Toleration(key="gpu", operator="Exists")],
            containers=[V1Container(name=container, env=[V1EnvVar(name="MODE", value="user")])]))
    return {
        "metadata": {"labels": {"team": "ml"}},
        "spec": {
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "containers": [{"name": container, "env": [{"name": "MODE", "value": "user"}]}],
        },
    }


# -- RayJob ----------------------------------------------------------------------------------------


def _ray_minimal() -> RayJobConfig:
    return RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)])


def _ray_full() -> RayJobConfig:
    return RayJobConfig(
        worker_node_config=[
            WorkerNodeConfig(
                group_name="cpu", replicas=2, min_replicas=1, max_replicas=5, ray_start_params={"num-cpus": "4"},
                requests=Resources(cpu="4", memory="8Gi"), limits=Resources(cpu="6", memory="8Gi"),
            ),
            WorkerNodeConfig(group_name="gpu", replicas=1, requests=Resources(cpu="8", gpu=1)),
        ],
        head_node_config=HeadNodeConfig(
            ray_start_params={"num-cpus": "0", "disable-usage-stats": "false"},
            requests=Resources(cpu="1", memory="2Gi"), limits=Resources(cpu="2", memory="4Gi"),
        ),
        enable_autoscaling=True,
        autoscaler_options=AutoscalerOptionsConfig(
            upscaling_mode=AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE, idle_timeout_seconds=120,
            image="rayproject/ray:2.60.0", env={"AUTOSCALER_LOG": "debug"},
            resources=Resources(cpu=("500m", "1"), memory="512Mi"),
        ),
        runtime_env={"pip": ("pandas", "pyarrow"), "env_vars": {"MODE": "config", "RAY_X": "1"}},
        shutdown_after_job_finishes=True,
        ttl_seconds_after_finished=300,
    )


@pytest.mark.parametrize("config", [_ray_minimal, _ray_full])
def test_ray_manifests_validate_against_the_kuberay_crd(config):
    manifest = ray_manifest.build_manifest(config(), _target())
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert (ray_manifest.API_VERSION, ray_manifest.KIND, ray_manifest.PLURAL) == ("ray.io/v1", "RayJob", "rayjobs")
    assert_valid(manifest)


def test_a_minimal_ray_config_maps_to_kuberay_defaults():
    spec = ray_manifest.build_manifest(_ray_minimal(), _target())["spec"]
    assert spec["entrypoint"] == "python -m airflow_provider_flyte.run --task 'train it'"
    assert spec["shutdownAfterJobFinishes"] is False
    assert "ttlSecondsAfterFinished" not in spec
    cluster = spec["rayClusterSpec"]
    assert "enableInTreeAutoscaling" not in cluster and "autoscalerOptions" not in cluster
    assert cluster["headGroupSpec"]["rayStartParams"] == {"disable-usage-stats": "true"}
    (group,) = cluster["workerGroupSpecs"]
    assert (group["groupName"], group["replicas"], group["minReplicas"], group["maxReplicas"]) == ("ray-group", 2, 0, 2)
    assert group["rayStartParams"] == {}
    # Only the task's env: it still reaches the job (flyte#5843), through runtime_env.
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": {"MODE": "ours", "TASK_ENV": "1"}}
    # The task's resources size nodes that set none.
    for template in (cluster["headGroupSpec"]["template"], group["template"]):
        assert template["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}}
    assert "runtimeEnvYAML" not in ray_manifest.build_manifest(_ray_minimal(), _target(env={}))["spec"]


def test_every_ray_field_maps_to_its_rayjob_field():
    manifest = ray_manifest.build_manifest(_ray_full(), _target())
    assert manifest["metadata"] == {"name": "etl-train-0a1b2c3d", "namespace": "ml", "labels": LABELS}
    spec = manifest["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 300
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {
        "pip": ["pandas", "pyarrow"],
        "env_vars": {"MODE": "config", "RAY_X": "1", "TASK_ENV": "1"},  # the config's entries win
    }
    cluster = spec["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"] == {
        "upscalingMode": "Conservative", "idleTimeoutSeconds": 120, "image": "rayproject/ray:2.60.0",
        "env": [{"name": "AUTOSCALER_LOG", "value": "debug"}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1"}},
    }
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"] == {"num-cpus": "0", "disable-usage-stats": "false"}  # the user's value wins
    (head_container,) = head["template"]["spec"]["containers"]
    assert head_container == {
        "name": "ray-head", "image": "repo/img:1",
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    }
    assert head["template"]["metadata"]["labels"] == LABELS
    cpu, gpu = cluster["workerGroupSpecs"]
    assert {k: cpu[k] for k in ("groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams")} == {
        "groupName": "cpu", "replicas": 2, "minReplicas": 1, "maxReplicas": 5, "rayStartParams": {"num-cpus": "4"}}
    assert cpu["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "6", "memory": "8Gi"}}
    assert (gpu["groupName"], gpu["minReplicas"], gpu["maxReplicas"]) == ("gpu", 0, 1)
    assert gpu["template"]["spec"]["containers"][0] == {
        "name": "ray-worker", "image": "repo/img:1",
        "resources": {"requests": {"cpu": "8"}, "limits": {"nvidia.com/gpu": "1"}},
    }
    assert gpu["template"]["metadata"]["labels"] == LABELS


def test_ray_upscaling_mode_unspecified_and_autoscaling_off_leave_the_fields_unset():
    options = AutoscalerOptionsConfig(upscaling_mode=AutoscalerOptionsConfig.UpscalingMode.UNSPECIFIED)
    on = RayJobConfig(worker_node_config=[], enable_autoscaling=True, autoscaler_options=options)
    cluster = ray_manifest.build_manifest(on, _target())["spec"]["rayClusterSpec"]
    assert cluster["autoscalerOptions"] == {} and cluster["workerGroupSpecs"] == []
    upstream_modes = crds.schema("RayJob", "ray.io/v1")["properties"]["spec"]["properties"]["rayClusterSpec"][
        "properties"]["autoscalerOptions"]["properties"]["upscalingMode"]["enum"]
    assert sorted(ray_manifest.UPSCALING_MODES.values()) == sorted(upstream_modes)
    off = RayJobConfig(worker_node_config=[], autoscaler_options=options)
    assert "autoscalerOptions" not in ray_manifest.build_manifest(off, _target())["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("form", ["dict", "model"])
def test_ray_node_pod_templates_are_kept(form):
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1, pod_template=_user_template(form, "ray-worker"))],
        head_node_config=HeadNodeConfig(pod_template=_user_template(form, "ray-head"), requests=Resources(cpu="1")),
    )
    manifest = ray_manifest.build_manifest(config, _target())
    assert_valid(manifest)
    cluster = manifest["spec"]["rayClusterSpec"]
    for name, template in (("ray-head", cluster["headGroupSpec"]["template"]),
                           ("ray-worker", cluster["workerGroupSpecs"][0]["template"])):
        spec = template["spec"]
        assert spec["nodeSelector"] == {"pool": "gpu"}
        assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
        (container,) = spec["containers"]
        assert container["name"] == name and container["image"] == "repo/img:1"
        assert container["env"] == [{"name": "MODE", "value": "user"}]  # the template's own; ours go to runtime_env
        assert set(LABELS.items()) <= set(template["metadata"]["labels"].items())
        if form == "dict":
            assert template["metadata"]["labels"]["team"] == "ml"
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "1"}}


def test_the_ray_container_goes_first_and_the_templates_own_resources_and_sidecars_stay():
    user = {"spec": {"containers": [
        {"name": "log-shipper", "image": "fluent:1"},
        {"name": "ray-head", "image": "custom-ray:1", "resources": {"limits": {"cpu": "3"}}},
    ]}}
    config = RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(
        pod_template=user, requests=Resources(cpu="1")))
    manifest = ray_manifest.build_manifest(config, _target())
    assert_valid(manifest)
    containers = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "ray-head", "image": "custom-ray:1", "resources": {"limits": {"cpu": "3"}}},
        {"name": "log-shipper", "image": "fluent:1"},
    ]
    assert user["spec"]["containers"][0]["name"] == "log-shipper"  # the user's object is not changed


def test_a_long_job_name_fits_kuberays_limit_and_stays_unique():
    targets = [JobTarget.for_task(TaskInfo(dag_id="d" * 200, task_id="t", run_id="r", try_number=n),
                                  image="img:1", command=["python"]) for n in (1, 2)]
    names = [ray_manifest.build_manifest(_ray_minimal(), t)["metadata"]["name"] for t in targets]
    assert names[0] != names[1]
    for name in names:
        assert len(name) <= 47 and DNS_1035.match(name)  # KubeRay refuses longer RayJob names


def test_a_broken_ray_manifest_fails_validation():
    manifest = ray_manifest.build_manifest(_ray_full(), _target())
    broken = copy.deepcopy(manifest)
    del broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["minReplicas"]
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]["replicas"] = "1"
    broken["spec"]["rayClusterSpec"]["autoscalerOptions"]["upscalingMode"] = "Eager"
    errors = crds.errors(broken)
    assert any("minReplicas' is a required property" in e for e in errors), errors
    assert any(e.startswith("spec/rayClusterSpec/workerGroupSpecs/1/replicas") for e in errors), errors
    assert any(e.startswith("spec/rayClusterSpec/autoscalerOptions/upscalingMode") for e in errors), errors
    typo = copy.deepcopy(manifest)
    typo["spec"]["rayClusterSpec"]["workerGroupSpec"] = typo["spec"]["rayClusterSpec"].pop("workerGroupSpecs")
    assert crds.errors(typo) == []  # the CRD lets unknown fields through...
    assert unknown_fields(typo, crds.schema("RayJob", "ray.io/v1")) == ["/spec/rayClusterSpec/workerGroupSpec"]


def test_bad_ray_input_is_refused_naming_the_field():
    with pytest.raises(FlyteConfigError, match=r"^RayJobConfig\.ttl_seconds_after_finished: .*shutdown_after_job"):
        ray_manifest.build_manifest(RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=60), _target())
    assert ray_manifest.build_manifest(RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=0),
                                       _target())["spec"]["ttlSecondsAfterFinished"] == 0
    with pytest.raises(FlyteConfigError, match=r"^HeadNodeConfig\.pod_template: .*not a pod template"):
        ray_manifest.build_manifest(
            RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(pod_template="pod.yaml")), _target())
    with pytest.raises(FlyteConfigError, match=r"^WorkerNodeConfig\['g'\]\.pod_template: "):
        ray_manifest.build_manifest(RayJobConfig(worker_node_config=[
            WorkerNodeConfig(group_name="g", replicas=1, pod_template=42)]), _target())
    with pytest.raises(FlyteConfigError, match=r"^HeadNodeConfig\.ray_start_params: .*not rendered"):
        ray_manifest.build_manifest(RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(
            ray_start_params="{{ params.ray }}")), _target())
    with pytest.raises(FlyteConfigError, match=r"^RayJobConfig\.runtime_env: .*YAML"):
        ray_manifest.build_manifest(RayJobConfig(worker_node_config=[], runtime_env={"config": object()}), _target())
    with pytest.raises(FlyteConfigError, match=r"^JobTarget\.command: "):
        ray_manifest.build_manifest(_ray_minimal(), _target(command=[], args=[]))


def test_ray_node_resources_keep_requests_and_limits_apart():
    assert ray_manifest.node_resources(Resources(cpu="1", gpu=2), Resources(cpu="2", memory=("1Gi", "2Gi"))) == {
        "requests": {"cpu": "1"}, "limits": {"nvidia.com/gpu": "2", "cpu": "2", "memory": "2Gi"}}
    assert ray_manifest.node_resources(None, Resources(cpu="2")) == {"limits": {"cpu": "2"}}
    assert ray_manifest.node_resources(None, None, Resources(cpu=("1", "2"))) == {
        "requests": {"cpu": "1"}, "limits": {"cpu": "2"}}
    assert ray_manifest.node_resources(None, None) == {}


#: KubeRay's ``JobDeploymentStatus`` and Ray's ``JobStatus`` values (``ray-operator/apis/ray/v1/rayjob_types.go``).
KUBERAY_DEPLOYMENT_STATUSES = ("", "Initializing", "Running", "Complete", "Failed", "ValidationFailed",
                               "Suspending", "Suspended", "Retrying", "Waiting")
RAY_JOB_STATUSES = ("", "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED")


def test_ray_job_states_cover_kuberay_and_the_crds_terminal_values():
    assert ray_manifest.DEPLOYMENT_STATUSES == KUBERAY_DEPLOYMENT_STATUSES
    assert ray_manifest.JOB_STATUSES == RAY_JOB_STATUSES
    # The CRD names its terminal values in deletionStrategy's conditions (enums): each must end a job here.
    rules = crds.schema("RayJob", "ray.io/v1")["properties"]["spec"]["properties"]["deletionStrategy"][
        "properties"]["deletionRules"]["items"]["properties"]["condition"]["properties"]
    assert set(rules["jobStatus"]["enum"]) <= set(RAY_JOB_STATUSES) - {"", "PENDING", "RUNNING"}
    assert set(rules["jobDeploymentStatus"]["enum"]) <= ray_manifest.FINAL_DEPLOYMENT_STATUSES


@pytest.mark.parametrize("deployment", KUBERAY_DEPLOYMENT_STATUSES)
@pytest.mark.parametrize("job", RAY_JOB_STATUSES)
def test_ray_job_state_for_every_status(deployment, job):
    status = {"jobDeploymentStatus": deployment, "jobStatus": job, "reason": "AppFailed", "message": "boom"}
    state = ray_manifest.job_state({"status": {k: v for k, v in status.items() if v}})
    assert state.done == (deployment in {"Complete", "Failed", "ValidationFailed"})
    assert state.succeeded == (deployment == "Complete" and job == "SUCCEEDED")
    assert state.phase.split("/")[0] == (deployment or "New")
    assert state.message == "AppFailed: boom"


def test_ray_job_state_without_status_is_new():
    assert ray_manifest.job_state({}) == ray_manifest.job_state({"status": None})
    state = ray_manifest.job_state({})
    assert (state.phase, state.done, state.succeeded, state.message) == ("New", False, False, "")


# -- PyTorchJob ------------------------------------------------------------------------------------


def _elastic_full() -> Elastic:
    return Elastic(
        nnodes="2:4", nproc_per_node=8, rdzv_backend="c10d",  # is_host below is a c10d setting
        run_policy=RunPolicy(clean_pod_policy="all", ttl_seconds_after_finished=600, active_deadline_seconds=3600,
                             backoff_limit=2),
        monitor_interval=5, max_restarts=1, rdzv_configs={"timeout": 120, "join_timeout": 60, "is_host": False},
        nccl_heartbeat_timeout_sec=120, nccl_async_error_handling=True, nccl_collective_timeout_sec=600,
        nccl_enable_monitoring=True,
    )


@pytest.mark.parametrize("config", [lambda: Elastic(nnodes=1, nproc_per_node=1), _elastic_full])
def test_pytorch_manifests_validate_against_the_training_operator_crd(config):
    manifest = torch_manifest.build_manifest(config(), _target())
    assert (manifest["apiVersion"], manifest["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    assert (torch_manifest.API_VERSION, torch_manifest.KIND, torch_manifest.PLURAL) == (
        "kubeflow.org/v1", "PyTorchJob", "pytorchjobs")
    assert_valid(manifest)


def test_one_node_one_process_is_still_a_pytorchjob():
    manifest = torch_manifest.build_manifest(Elastic(nnodes=1, nproc_per_node=1, nccl_heartbeat_timeout_sec=None,
                                                     nccl_enable_monitoring=False), _target(resources=None))
    spec = manifest["spec"]
    assert manifest["metadata"] == {"name": "etl-train-0a1b2c3d", "namespace": "ml", "labels": LABELS}
    assert set(spec) == {"pytorchReplicaSpecs", "elasticPolicy", "nprocPerNode"}  # no runPolicy when unset
    worker = spec["pytorchReplicaSpecs"]["Worker"]
    assert set(spec["pytorchReplicaSpecs"]) == {"Worker"}
    assert (worker["replicas"], worker["restartPolicy"]) == (1, "Never")
    assert spec["elasticPolicy"] == {
        "rdzvBackend": "c10d", "minReplicas": 1, "maxReplicas": 1, "maxRestarts": 3,
        "rdzvConf": [{"key": "join_timeout", "value": "900"}, {"key": "timeout", "value": "900"}],
    }
    assert spec["nprocPerNode"] == "1"
    (container,) = worker["template"]["spec"]["containers"]
    assert container == {
        "name": "pytorch", "image": "repo/img:1", "command": ["python", "-m", "airflow_provider_flyte.run"],
        "args": ["--task", "train it"],
        "env": [{"name": "MODE", "value": "ours"}, {"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "TASK_ENV", "value": "1"}, torch_manifest.POD_IP_ENV],
    }
    assert worker["template"]["metadata"]["labels"] == LABELS


def test_every_elastic_field_maps_to_its_pytorchjob_field():
    spec = torch_manifest.build_manifest(_elastic_full(), _target(env={"TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC": "60"}))[
        "spec"]
    worker = spec["pytorchReplicaSpecs"]["Worker"]
    assert (worker["replicas"], worker["restartPolicy"]) == (4, "OnFailure")  # max nodes; backoffLimit counts
    assert spec["elasticPolicy"] == {
        "rdzvBackend": "c10d", "minReplicas": 2, "maxReplicas": 4, "maxRestarts": 1,
        "rdzvConf": [{"key": "is_host", "value": "false"}, {"key": "join_timeout", "value": "60"},
                     {"key": "timeout", "value": "120"}],
    }
    assert spec["nprocPerNode"] == "8" and "nProcPerNode" not in spec["elasticPolicy"]
    assert spec["runPolicy"] == {"cleanPodPolicy": "All", "ttlSecondsAfterFinished": 600,
                                 "activeDeadlineSeconds": 3600, "backoffLimit": 2}
    (container,) = worker["template"]["spec"]["containers"]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}}
    assert container["env"][-1] == torch_manifest.POD_IP_ENV  # the pod's address, for the rendezvous stores
    assert {e["name"]: e["value"] for e in container["env"][:-1]} == {
        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
        "FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC": "600", "TORCH_NCCL_ENABLE_MONITORING": "1",
        "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC": "60",  # the task's env wins over the defaults
    }


@pytest.mark.parametrize("policy, expected", [("None", "None"), ("all", "All"), ("Running", "Running")])
def test_clean_pod_policies_use_the_operators_spelling(policy, expected):
    config = Elastic(nnodes=2, nproc_per_node=1, run_policy=RunPolicy(clean_pod_policy=policy))
    spec = torch_manifest.build_manifest(config, _target())["spec"]
    assert spec["runPolicy"] == {"cleanPodPolicy": expected}
    assert spec["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] == "Never"


def test_the_container_env_defaults_are_what_the_local_hook_sets(monkeypatch):
    """elastic_env and FlyteElasticHook.pre set the same variables (the loopback-only ones aside)."""
    from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook

    config = _elastic_full()
    config.nnodes = 1  # the local hook runs one node
    expected = torch_manifest.elastic_env(config)
    local_only = {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "PYTHONPATH"}
    for name in {*expected, *local_only}:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    hook = FlyteElasticHook(config.validated())
    try:
        hook.pre()
        set_by_hook = {k: v for k, v in os.environ.items() if before.get(k) != v and k not in local_only}
    finally:
        hook.post()
    assert set_by_hook == expected
    assert dict(os.environ) == before


@pytest.mark.parametrize("form", ["dict", "model"])
def test_the_users_pod_template_is_the_pytorch_workers_base(form):
    manifest = torch_manifest.build_manifest(Elastic(nnodes=2, nproc_per_node=1), _target(),
                                             pod_template=_user_template(form, "pytorch"))
    assert_valid(manifest)
    template = manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]
    assert template["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert template["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    (container,) = template["spec"]["containers"]
    env = [(e["name"], e["value"]) for e in container["env"] if "value" in e]
    assert env[0] == ("MODE", "user") and ("MODE", "ours") not in env and ("TASK_ENV", "1") in env
    assert container["name"] == "pytorch" and container["image"] == "repo/img:1"
    assert set(LABELS.items()) <= set(template["metadata"]["labels"].items())


def test_a_template_without_a_pytorch_container_gets_one_and_keeps_its_sidecar():
    user = {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}
    manifest = torch_manifest.build_manifest(Elastic(nnodes=1, nproc_per_node=1), _target(), pod_template=user)
    assert_valid(manifest)
    containers = manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["pytorch", "proxy"]
    assert containers[1] == {"name": "proxy", "image": "envoy:1"}


def test_a_broken_pytorch_manifest_fails_validation():
    manifest = torch_manifest.build_manifest(_elastic_full(), _target())
    broken = copy.deepcopy(manifest)
    broken["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "4"
    broken["spec"]["elasticPolicy"]["rdzvConf"] = {"timeout": "120"}
    del broken["spec"]["pytorchReplicaSpecs"]
    errors = crds.errors(broken)
    assert "spec: 'pytorchReplicaSpecs' is a required property" in errors, errors
    assert any(e.startswith("spec/elasticPolicy/rdzvConf") for e in errors), errors
    bad_replicas = copy.deepcopy(manifest)
    bad_replicas["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "4"
    assert crds.errors(bad_replicas) == ["spec/pytorchReplicaSpecs/Worker/replicas: '4' is not of type 'integer'"]


def test_bad_pytorch_input_is_refused_naming_the_field():
    with pytest.raises(FlyteConfigError, match=r"^TaskEnvironment\.pod_template: .*not a pod template"):
        torch_manifest.build_manifest(Elastic(nnodes=1, nproc_per_node=1), _target(), pod_template="pod.yaml")
    with pytest.raises(FlyteConfigError, match=r"^Elastic\.nnodes: .*not rendered"):
        torch_manifest.build_manifest(Elastic(nnodes="{{ params.nodes }}", nproc_per_node=1), _target())
    with pytest.raises(FlyteConfigError, match=r"^JobTarget\.command: "):
        torch_manifest.build_manifest(Elastic(nnodes=1, nproc_per_node=1), _target(command=[]))


#: Training Operator v1 ``JobConditionType`` values (``pkg/apis/kubeflow.org/v1/common_types.go``).
OPERATOR_CONDITIONS = ("Created", "Running", "Restarting", "Succeeded", "Suspended", "Failed")


def _condition(kind: str, status: str = "True", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": f"PyTorchJob{kind}", "message": message}


def test_pytorch_condition_types_are_the_operators():
    assert torch_manifest.CONDITION_TYPES == OPERATOR_CONDITIONS


@pytest.mark.parametrize("kind", OPERATOR_CONDITIONS)
def test_pytorch_job_state_for_every_condition(kind):
    history = [_condition("Created"), _condition("Running", "False" if kind in {"Succeeded", "Failed"} else "True")]
    state = torch_manifest.job_state({"status": {"conditions": [*history, _condition(kind, message="m")]}})
    assert state.phase == kind
    assert state.done == (kind in {"Succeeded", "Failed"})
    assert state.succeeded == (kind == "Succeeded")
    assert state.message == f"PyTorchJob{kind}: m"


def test_pytorch_job_state_reads_the_last_true_condition():
    assert torch_manifest.job_state({}).phase == "New"
    assert torch_manifest.job_state({"status": {"conditions": [_condition("Created", "False")]}}).phase == "New"
    running = torch_manifest.job_state({"status": {"conditions": [
        _condition("Created"), _condition("Restarting", "False"), _condition("Running")]}})
    assert (running.phase, running.done) == ("Running", False)
    failed = torch_manifest.job_state({"status": {"conditions": [
        _condition("Created"), _condition("Failed", message="worker 1 exited 1"), _condition("Running", "False")]}})
    assert (failed.phase, failed.done, failed.succeeded) == ("Failed", True, False)
    assert failed.message == "PyTorchJobFailed: worker 1 exited 1"


# -- the task's execution_timeout as the job's own deadline ----------------------------------------
def test_a_rayjob_carries_the_targets_deadline_valid_against_the_crd() -> None:
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    assert "activeDeadlineSeconds" not in ray_manifest.build_manifest(config, _target())["spec"]
    manifest = ray_manifest.build_manifest(config, _target(active_deadline_s=660))
    assert manifest["spec"]["activeDeadlineSeconds"] == 660
    assert crds.errors(manifest) == []


def test_a_pytorchjob_carries_the_targets_deadline_in_its_run_policy_a_shorter_one_of_the_user_stays() -> None:
    assert "runPolicy" not in torch_manifest.build_manifest(Elastic(nnodes=2, nproc_per_node=1), _target())["spec"]
    manifest = torch_manifest.build_manifest(Elastic(nnodes=2, nproc_per_node=1), _target(active_deadline_s=660))
    assert manifest["spec"]["runPolicy"] == {"activeDeadlineSeconds": 660}
    assert crds.errors(manifest) == []
    shorter = Elastic(nnodes=2, nproc_per_node=1, run_policy=RunPolicy(active_deadline_seconds=100, backoff_limit=1))
    assert torch_manifest.build_manifest(shorter, _target(active_deadline_s=660))["spec"]["runPolicy"][
        "activeDeadlineSeconds"] == 100
    longer = Elastic(nnodes=2, nproc_per_node=1, run_policy=RunPolicy(active_deadline_seconds=5000))
    assert torch_manifest.build_manifest(longer, _target(active_deadline_s=660))["spec"]["runPolicy"][
        "activeDeadlineSeconds"] == 660
