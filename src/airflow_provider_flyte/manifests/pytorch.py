"""``Elastic`` as a Kubeflow Training Operator ``PyTorchJob`` (``kubeflow.org/v1``).

The shape follows flyteplugins' PyTorch backend plugin (``flyteplugins/go/tasks/plugins/k8s/kfoperators/pytorch``):

- Always a ``PyTorchJob``, even for one node with one process (Flyte runs that case as a plain
  pod); the run path then has a single kind of object to watch and delete.
- ``pytorchReplicaSpecs.Worker`` only (no Master, as Flyte's elastic jobs): ``replicas`` is the
  maximum number of nodes; its container is named ``pytorch`` (the operator requires that name)
  and runs ``command + args``, with the image, the task's resources and env. The env is the
  Elastic NCCL/launcher defaults the local hook sets (:func:`elastic_env`), then the task's
  env over them; a pod template's own entries win over both.
- ``restartPolicy`` is ``Never`` (as Flyte): when a node's elastic agent gives up after
  ``max_restarts`` the job fails instead of rejoining forever (the hang of flyte-sdk#698).
  With ``RunPolicy.backoff_limit`` set it is ``OnFailure``, the only policy under which the
  operator counts that limit.
- ``elasticPolicy``: ``rdzvBackend``, ``minReplicas`` / ``maxReplicas`` (``nnodes``),
  ``maxRestarts`` and ``rdzvConf`` (``rdzv_configs`` as ``{key, value}`` strings). Processes per
  node go to ``spec.nprocPerNode`` (a string): ``elasticPolicy.nProcPerNode``, which Flyte
  sends, is deprecated since Training Operator v1.7 and refused together with it.
- ``runPolicy`` from ``RunPolicy`` where set; ``clean_pod_policy="all"`` is the operator's ``All``.
- ``pod_template`` (Flyte's ``TaskEnvironment.pod_template``) is the base of the Worker template,
  never dropped (flyte-sdk#1196).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests import base
from airflow_provider_flyte.manifests.base import JobState, JobTarget, object_meta, with_labels
from airflow_provider_flyte.plugins.pytorch import Elastic, RunPolicy

GROUP = "kubeflow.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PyTorchJob"
PLURAL = "pytorchjobs"

CONTAINER = "pytorch"
REPLICA_TYPE = "Worker"

#: ``RunPolicy.clean_pod_policy`` (flyteplugins' spelling) -> the operator's ``CleanPodPolicy``.
CLEAN_POD_POLICIES = {"None": "None", "all": "All", "Running": "Running"}

#: ``status.conditions[].type`` values (Training Operator v1 ``JobConditionType``).
CONDITION_TYPES = ("Created", "Running", "Restarting", "Succeeded", "Suspended", "Failed")
FINAL_CONDITIONS = frozenset({"Succeeded", "Failed"})


def build_manifest(config: Elastic, target: JobTarget, *, pod_template: Any = None) -> dict[str, Any]:
    """The ``PyTorchJob`` that runs ``target`` on ``config.nnodes`` nodes (``config`` validated first)."""
    config = config.validated()
    if not target.command:
        raise FlyteConfigError(
            "JobTarget.command", target.command, "a PyTorchJob's workers need a command to run",
            "build the target with the command that runs the task (JobTarget.for_task(command=[...]))",
        )
    min_nodes, max_nodes = config.min_nodes, config.max_nodes
    run_policy = _run_policy(config.run_policy)
    worker: dict[str, Any] = {
        "replicas": max_nodes,
        "restartPolicy": "OnFailure" if "backoffLimit" in run_policy else "Never",
        "template": _worker_template(pod_template, config, target),
    }
    elastic: dict[str, Any] = {
        "rdzvBackend": config.rdzv_backend,
        "minReplicas": min_nodes,
        "maxReplicas": max_nodes,
        "maxRestarts": config.max_restarts,
    }
    if config.rdzv_configs:
        elastic["rdzvConf"] = [
            {"key": str(key), "value": _conf_value(value)} for key, value in sorted(config.rdzv_configs.items())
        ]
    spec: dict[str, Any] = {
        "pytorchReplicaSpecs": {REPLICA_TYPE: worker},
        "elasticPolicy": elastic,
        "nprocPerNode": str(config.nproc_per_node),
    }
    if target.active_deadline_s is not None:  # the task's execution_timeout; a shorter one of the user's stays
        run_policy["activeDeadlineSeconds"] = min(run_policy.get("activeDeadlineSeconds", target.active_deadline_s),
                                                  target.active_deadline_s)
    if run_policy:
        spec["runPolicy"] = run_policy
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": object_meta(target), "spec": spec}


def job_state(obj: Mapping[str, Any]) -> JobState:
    """Whether the job ended, from ``status.conditions``: the last true condition decides.

    A true ``Succeeded`` or ``Failed`` condition ends the job wherever it is in the list (the
    operator never unsets them); otherwise the phase is the last true condition (``New``: none).
    """
    conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    final = [c for c in conditions if c.get("type") in FINAL_CONDITIONS]
    deciding = (final or conditions or [None])[-1]
    if deciding is None:
        return JobState("New", done=False)
    phase = str(deciding.get("type"))
    message = ": ".join(part for part in (deciding.get("reason") or "", deciding.get("message") or "") if part)
    return JobState(phase, done=phase in FINAL_CONDITIONS, succeeded=phase == "Succeeded", message=message)


def elastic_env(config: Elastic) -> dict[str, str]:
    """The env defaults the Elastic hook's ``pre`` sets locally (:meth:`Elastic.default_env`), for every node.

    Loopback-only settings (``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME=lo``) and the DAG
    folder on ``PYTHONPATH`` are local matters and left out.
    """
    return config.default_env()


#: The pod's own address (downward API): the in-cluster placement binds the rendezvous stores to it.
POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _worker_template(user_template: Any, config: Elastic, target: JobTarget) -> dict[str, Any]:
    template = base.pod_template(
        user_template, "TaskEnvironment.pod_template", container_name=CONTAINER, image=target.image,
        command=target.command, args=target.args, env={**elastic_env(config), **target.env},
        resources=target.resources,
    )
    for container in template["spec"]["containers"]:
        if container.get("name") == CONTAINER and not any(e.get("name") == "POD_IP" for e in container.get("env", [])):
            container.setdefault("env", []).append(dict(POD_IP_ENV))
    return with_labels(template, target.labels)


def _run_policy(policy: RunPolicy | None) -> dict[str, Any]:
    if policy is None:
        return {}
    out: dict[str, Any] = {}
    if policy.clean_pod_policy is not None:
        out["cleanPodPolicy"] = CLEAN_POD_POLICIES[policy.clean_pod_policy]
    if policy.ttl_seconds_after_finished is not None:
        out["ttlSecondsAfterFinished"] = policy.ttl_seconds_after_finished
    if policy.active_deadline_seconds is not None:
        out["activeDeadlineSeconds"] = policy.active_deadline_seconds
    if policy.backoff_limit is not None:
        out["backoffLimit"] = policy.backoff_limit
    return out


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
