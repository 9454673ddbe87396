"""Settings every pod of a job gets, whatever its engine: secrets, service account, interruptible nodes.

The engine's manifest module builds the object; :func:`apply_pod_settings` then walks every pod
spec in it (every dict with ``containers``) and adds:

- **secrets**: each secret the task requests, as an env var read from one Kubernetes ``Secret``
  per job (``secretKeyRef``), under its ``as_env_var`` name (so every engine worker has it) or
  ``FLYTE_SECRET_<i>`` for a mounted one (the pod running the task writes the file): the value
  never enters the object, the staged spec or a log;
- **service account**: ``serviceAccountName`` where the user's template leaves it unset (and the
  SparkApplication's ``driver.serviceAccount``, which spark-operator uses to create executors);
- **interruptible**: the ``[flyte] kubernetes_interruptible_tolerations`` and
  ``..._node_selector``, on every pod except a Spark driver (Flyte keeps drivers on-demand).

:func:`secret_manifest` is that ``Secret``; the worker creates it before the job and then makes the
job its owner, so Kubernetes deletes it with the job.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_flyte.manifests.base import MANAGED_BY

#: Env var (in every pod) holding secret number ``i`` of the task; the in-pod runner exposes it
#: under the name (or file) the task asked for.
SECRET_ENV_PREFIX = "FLYTE_SECRET_"


def secret_env_name(index: int) -> str:
    return f"{SECRET_ENV_PREFIX}{index}"


def secret_name(job_name: str) -> str:
    """The job's ``Secret``: ``<job>-secrets`` (job names stay under 47 characters)."""
    return f"{job_name}-secrets"


def secret_manifest(job_name: str, namespace: str, labels: Mapping[str, str],
                    values: Sequence[str]) -> dict[str, Any]:
    """The ``Secret`` holding the task's secret values (``data`` keys ``s0``, ``s1``, ...)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": secret_name(job_name), "namespace": namespace, "labels": {**labels, **MANAGED_BY}},
        "data": {f"s{i}": base64.b64encode(value.encode()).decode() for i, value in enumerate(values)},
    }


def pod_specs(body: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every pod spec (a dict with ``containers``) of a job object, with its path.

    The kinds nest them differently: ``template.spec`` (SparkApplication, RayJob, PyTorchJob), a
    bare ``spec`` (DaskJob's job, scheduler and worker).
    """
    if isinstance(body, dict):
        if isinstance(body.get("containers"), list):
            yield path, body
            return
        for key, value in body.items():
            yield from pod_specs(value, (*path, str(key)))
    elif isinstance(body, list):
        for i, item in enumerate(body):
            yield from pod_specs(item, (*path, str(i)))


def apply_pod_settings(body: dict[str, Any], *, secret_env: Sequence[str] = (), job_name: str = "",
                       service_account: str | None = None, interruptible: bool = False,
                       tolerations: Sequence[Mapping[str, Any]] = (),
                       node_selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Add secrets, service account and interruptible settings to every pod of ``body`` (in place)."""
    env_refs = [
        {"name": env, "valueFrom": {"secretKeyRef": {"name": secret_name(job_name), "key": f"s{i}"}}}
        for i, env in enumerate(secret_env)
    ]
    for path, spec in pod_specs(body):
        for container in spec.get("containers") or []:
            own = {item.get("name") for item in container.get("env") or []}
            added = [e for e in env_refs if e["name"] not in own]
            if added:
                container["env"] = list(container.get("env") or []) + added
        if service_account and not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = service_account
        if interruptible and path[:2] != ("spec", "driver"):
            if tolerations:
                spec["tolerations"] = list(spec.get("tolerations") or []) + [dict(t) for t in tolerations]
            if node_selector:
                spec["nodeSelector"] = {**node_selector, **(spec.get("nodeSelector") or {})}
    if service_account and body.get("kind") == "SparkApplication":
        body["spec"].setdefault("driver", {}).setdefault("serviceAccount", service_account)
    return body
