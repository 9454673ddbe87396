"""Every ``[flyte]`` option: declared here with its default, and read only here.

Provider info's ``config`` section is :data:`CONFIG`. Values come from Airflow's configuration
(``airflow.cfg`` or ``AIRFLOW__FLYTE__<OPTION>``); where Airflow's configuration cannot be read
(a pod's or a warm server's process without it) from the ``AIRFLOW__FLYTE__<OPTION>`` variable.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: ``[flyte]`` options the provider reads (``airflow config get-value flyte <option>``).
CONFIG: dict[str, Any] = {
    "flyte": {
        "description": "Settings of the Flyte plugins provider (Spark, Ray, Dask, PyTorch Elastic).",
        "options": {
            "code_bundle": {
                "description": "Ship the task's code (the DAG folder or TaskEnvironment.include) to existing "
                "clusters as a code bundle. Set to False when the code is installed on the cluster already.",
                "version_added": "0.1.0",
                "type": "boolean",
                "example": "False",
                "default": "True",
            },
            "bundle_max_bytes": {
                "description": "Largest code bundle, in bytes, that a task may build; a larger project root "
                "fails the task with the biggest files named. Also read from AIRFLOW__FLYTE__BUNDLE_MAX_BYTES.",
                "version_added": "0.1.0",
                "type": "integer",
                "example": "209715200",
                "default": "104857600",
            },
            "staging_uri": {
                "description": "Object-store base URI where staged remote runs put their code bundles and "
                "results, e.g. s3://bucket/prefix. Empty: nothing is staged.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://my-bucket/flyte-staging",
                "default": "",
            },
            "staging_conn_id": {
                "description": "Airflow connection used to reach staging_uri (e.g. an aws connection). "
                "Empty: the object store's default credentials.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "aws_default",
                "default": "",
            },
            "warm_dir": {
                "description": "State folder of the warm engine servers on this machine (ReusePolicy; "
                "docs/warm-engines.md). Empty: <tmp>/flyte-warm-<uid>.",
                "version_added": "0.1.0", "type": "string", "example": "/var/lib/airflow/flyte-warm", "default": "",
            },
            "warm_ttl_override_s": {
                "description": "Test/ops knob: replaces idle_ttl and scaledown_ttl (seconds) of warm servers started "
                "from now on, below Flyte's 30 s minimum if need be. Empty: the ReusePolicy's values.",
                "version_added": "0.1.0", "type": "float", "example": "5", "default": "",
            },
            "kubernetes_namespace": {
                "description": "Namespace of Kubernetes jobs, before the kubernetes connection's namespace. Empty: the "
                               "connection's, else default.",
                "version_added": "0.1.0", "type": "string", "example": "airflow-jobs", "default": "",
            },
            "kubernetes_deferrable": {
                "description": "Wait for Kubernetes jobs in the triggerer (True) or in the worker (False).",
                "version_added": "0.1.0", "type": "boolean", "example": "False", "default": "True",
            },
            "kubernetes_startup_timeout": {
                "description": "Seconds a Kubernetes job may take to get running before the task fails with the reason.",
                "version_added": "0.1.0", "type": "float", "example": "600", "default": "300",
            },
            "kubernetes_keep_failed_s": {
                "description": "Keep a failed Kubernetes job this many seconds for debugging (0: delete it at once).",
                "version_added": "0.1.0", "type": "float", "example": "3600", "default": "0",
            },
            "kubernetes_service_account": {
                "description": "Service account of a Kubernetes job's pods when neither the task (TaskEnvironment("
                               "service_account=...)) nor the connection's extra service_account names one.",
                "version_added": "0.1.0", "type": "string", "example": "flyte-jobs", "default": "",
            },
            "kubernetes_interruptible_tolerations": {
                "description": "JSON list of tolerations added to the pods of an interruptible task's job "
                               "(a Spark driver excepted, as in Flyte).",
                "version_added": "0.1.0", "type": "string",
                "example": '[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]', "default": "",
            },
            "kubernetes_interruptible_node_selector": {
                "description": "JSON object of node labels required by the pods of an interruptible task's job "
                               "(a Spark driver excepted).",
                "version_added": "0.1.0", "type": "string", "example": '{"node-pool": "spot"}', "default": "",
            },
            "kubernetes_kueue_queue": {
                "description": "Kueue LocalQueue of every Kubernetes job when neither the task (TaskEnvironment("
                               "kueue_queue=...)) nor the connection's extra kueue_queue names one: the job is "
                               "created suspended with the kueue.x-k8s.io/queue-name label. Empty: no queue.",
                "version_added": "0.1.0", "type": "string", "example": "team-a", "default": "",
            },
            "kubernetes_kueue_timeout": {
                "description": "Seconds a queued Kubernetes job may wait for Kueue's admission before the task "
                               "fails naming the queue and the job is deleted. Empty: no limit.",
                "version_added": "0.1.0", "type": "float", "example": "3600", "default": "",
            },
            "kubernetes_object_url": {
                "description": "Extra-link template for a task's Kubernetes job ({name}, {namespace}, {conn_id}, {kind}).",
                "version_added": "0.1.0", "type": "string",
                "example": "https://dashboard.example/#/customresourcedefinition/{kind}/{namespace}/{name}",
                "default": "",
            },
            "kubernetes_pod_url": {
                "description": "Extra-link template for the job's driver / head / rank-0 pod ({pod} where the operator "
                "names it, else {selector}; also {name}, {namespace}, {conn_id}, {kind}).",
                "version_added": "0.1.0", "type": "string",
                "example": "https://dashboard.example/#/pod/{namespace}/{pod}", "default": "",
            },
        },
    },
}


def env_name(option: str) -> str:
    """The environment variable that sets ``[flyte] option``."""
    return f"AIRFLOW__FLYTE__{option.upper()}"


def _declared(option: str) -> dict[str, Any]:
    try:
        return dict(CONFIG["flyte"]["options"][option])
    except KeyError:
        raise KeyError(f"[flyte] {option} is not declared in core/settings.py CONFIG") from None


def value(option: str) -> str | None:
    """``[flyte] option`` as set, stripped; ``None`` where unset or empty (then the declared default applies).

    Airflow's configuration first: it gives ``AIRFLOW__FLYTE__<OPTION>`` precedence over airflow.cfg and
    expands ``$VARS`` and ``~`` in it. Where it cannot be read (no Airflow in this process), the variable.
    """
    _declared(option)
    try:
        from airflow.configuration import conf

        raw = conf.get("flyte", option, fallback=None)
    except Exception:  # no Airflow configuration in this process
        raw = os.environ.get(env_name(option))
    text = str(raw).strip() if raw is not None else ""
    return text or None


def text(option: str) -> str | None:
    """A string option, or its declared default (``None`` where that is empty)."""
    return value(option) or (str(_declared(option)["default"]) or None)


def flag(option: str) -> bool:
    """A boolean option (true/false, t/f, 1/0, as Airflow's ``getboolean``; also yes/no, on/off), or its default.

    An inline comment (``False  # baked into the image``) is cut off, as Airflow does.
    """
    raw = (value(option) or "").split("#")[0].strip() or str(_declared(option)["default"])
    lowered = raw.lower()
    if lowered in ("true", "t", "1", "yes", "on"):
        return True
    if lowered in ("false", "f", "0", "no", "off"):
        return False
    raise FlyteConfigError(f"[flyte] {option}", raw, "is not a boolean",
                           f"set {env_name(option)} (or [flyte] {option}) to true or false")


def number(option: str) -> float | None:
    """A numeric option, or its declared default (``None`` where that is empty)."""
    raw = value(option) or str(_declared(option)["default"])
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise FlyteConfigError(f"[flyte] {option}", raw, "is not a number",
                               f"set {env_name(option)} (or [flyte] {option}) to a number") from None
