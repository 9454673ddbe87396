"""Settings every pod of a job gets, whatever its engine: secrets, service account, interruptible nodes.

The engine's manifest module builds the object; :func:`apply_pod_settings` then walks every pod
spec in it (every dict with ``containers``) and adds:

- **sealed values** (:func:`seal_manifest`, :mod:`airflow_provider_flyte.core.sealed`): secret values
  of the plugin config and ``env_vars`` leave the object: ``FLYTE_SEALED_<i>`` in every container and
  each env var holding one come from the job's ``Secret``; Spark properties holding one are left out of
  ``sparkConf`` / ``hadoopConf`` (the driver sets them from the spec), Ray's ``runtimeEnvYAML`` drops
  ``env_vars`` holding one (the driver's ``ray.init`` passes them);
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
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.manifests.base import MANAGED_BY

if TYPE_CHECKING:
    from airflow_provider_flyte.core.sealed import Sealed

#: Env var (in every pod) holding secret number ``i`` of the task; the in-pod runner exposes it
#: under the name (or file) the task asked for.
SECRET_ENV_PREFIX = "FLYTE_SECRET_"


def secret_env_name(index: int) -> str:
    return f"{SECRET_ENV_PREFIX}{index}"


def secret_name(job_name: str) -> str:
    """The job's ``Secret``: ``<job>-secrets`` (job names stay under 47 characters)."""
    return f"{job_name}-secrets"


def secret_manifest(job_name: str, namespace: str, labels: Mapping[str, str],
                    values: Sequence[str], sealed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``Secret`` holding the task's secret values (``data`` keys ``s0``, ``s1``, ...) and the
    sealed ones :func:`seal_manifest` took out of the job object."""
    data = {**{f"s{i}": value for i, value in enumerate(values)}, **(sealed or {})}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": secret_name(job_name), "namespace": namespace, "labels": {**labels, **MANAGED_BY}},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def seal_manifest(body: dict[str, Any], sealed: Sealed, job_name: str) -> dict[str, str]:
    """Take every sealed value out of the job object (in place); returns the ``Secret`` data that replaces them."""
    if not sealed:
        return {}
    data = {f"c{i}": value for i, value in enumerate(sealed.values)}
    refs = [_secret_ref(name, job_name, f"c{i}") for i, name in enumerate(sealed.env)]

    def env_key(value: str) -> str:
        key = next((k for k, v in data.items() if v == value), f"e{len(data)}")
        data[key] = value
        return key

    for role, value in _drop_sealed_properties(body, sealed):  # spark.{kubernetes.driverEnv,executorEnv}.X
        for _, spec in pod_specs(body.get("spec", {}).get(role)):
            for container in spec.get("containers") or []:
                container["env"] = [*(container.get("env") or []), {"name": value[0], "value": value[1]}]
    for _, spec in pod_specs(body):
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            env = [_secret_ref(e["name"], job_name, env_key(e["value"]))
                   if isinstance(e.get("value"), str) and sealed.holds(e["value"]) else e
                   for e in container.get("env") or []]
            own = {e.get("name") for e in env}
            container["env"] = [*env, *(r for r in refs if r["name"] not in own)]
    _seal_runtime_env(body, sealed)
    return data


def _secret_ref(env: str, job_name: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret_name(job_name), "key": key}}}


#: Spark properties that are env vars of a SparkApplication's driver or executor pods.
_SPARK_ENV_PREFIXES = {"spark.kubernetes.driverEnv.": "driver", "spark.executorEnv.": "executor"}


def _drop_sealed_properties(body: dict[str, Any], sealed: Sealed) -> list[tuple[str, tuple[str, str]]]:
    """Remove ``sparkConf`` / ``hadoopConf`` entries holding a sealed value; ``(role, (env, value))`` of
    those that were pod env vars (they come back as env entries, then from the ``Secret``)."""
    spec = body.get("spec") or {}
    moved = []
    for section in ("sparkConf", "hadoopConf"):
        conf = spec.get(section)
        if not isinstance(conf, dict):
            continue
        for key in [k for k, v in conf.items() if isinstance(v, str) and sealed.holds(v)]:
            value = conf.pop(key)
            moved += [(role, (key[len(prefix):], value)) for prefix, role in _SPARK_ENV_PREFIXES.items()
                      if section == "sparkConf" and key.startswith(prefix)]
    return moved


def _seal_runtime_env(body: dict[str, Any], sealed: Sealed) -> None:
    """A RayJob's ``runtimeEnvYAML`` without the ``env_vars`` holding a sealed value, other values sealed."""
    spec = body.get("spec") or {}
    text = spec.get("runtimeEnvYAML")
    if not isinstance(text, str) or not sealed.holds(text):
        return
    import yaml

    from airflow_provider_flyte.core.sealed import map_strings

    runtime_env = yaml.safe_load(text) or {}
    env_vars = runtime_env.get("env_vars") or {}
    runtime_env["env_vars"] = {k: v for k, v in env_vars.items() if not (isinstance(v, str) and sealed.holds(v))}
    spec["runtimeEnvYAML"] = yaml.safe_dump(map_strings(runtime_env, sealed.seal_text), sort_keys=True)


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
