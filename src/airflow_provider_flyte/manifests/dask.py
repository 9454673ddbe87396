"""``Dask`` as a dask-kubernetes ``DaskJob`` (``kubernetes.dask.org/v1``).

The operator creates a ``DaskCluster`` named after the job (scheduler deployment + service,
``replicas`` workers) and a runner pod from ``spec.job.spec``; it sets ``DASK_SCHEDULER_ADDRESS``
in every container, so a bare ``distributed.Client()`` in the task connects. Shape as in
flyteplugins' Dask plugin and dask-kubernetes' ``simplejob.yaml``:

- job: container ``job`` runs ``target.command + target.args`` with the task's image, env and
  resources; ``restartPolicy: Never`` (the job ends when that pod ends).
- scheduler: ``Scheduler.image`` (else the task's), ``dask scheduler``, ports ``tcp-comm`` 8786
  and ``http-dashboard`` 8787, ``/health`` probes, a ClusterIP service with both ports.
- workers: ``replicas = number_of_workers``, ``WorkerGroup.image`` (else the task's),
  ``dask worker --name $(DASK_WORKER_NAME) --dashboard --dashboard-address 8788``, plus, as
  Flyte does, ``--nthreads`` / ``--memory-limit`` from the worker resources (limit, else request).
- Resources of the scheduler and workers default to the task's, as in Flyte.
- ``pod_template`` (optional, the task's pod template) is the base of all three pods, never
  dropped; the task's env goes under each container's own entries.

In the resolved CRD, int-or-string fields and quantities are ``type: string``: ports used as
``targetPort`` / probe ``port`` are names, and quantities are strings.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_provider_flyte.manifests import base
from airflow_provider_flyte.manifests.base import JobState, JobTarget, object_meta, with_labels
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.resources import Resources, cpu_count, memory_bytes

GROUP = "kubernetes.dask.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "DaskJob"
PLURAL = "daskjobs"

SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788

#: ``status.jobStatus`` values set by the dask-kubernetes controller (``JobCreated``,
#: ``ClusterCreated``, ``Running`` and these two, final, when the runner pod ends).
SUCCEEDED_STATES = frozenset({"Successful"})
FAILED_STATES = frozenset({"Failed"})


def build_manifest(config: Dask, target: JobTarget, *, pod_template: Any = None) -> dict[str, Any]:
    """The ``DaskJob`` that runs ``target`` with ``config`` (``pod_template``: the task's pod template)."""
    scheduler_resources = config.scheduler.resources or target.resources
    worker_resources = config.workers.resources or target.resources
    job = _pod(pod_template, "job", target, image=target.image, command=target.command, args=target.args,
               resources=target.resources)
    job["spec"].setdefault("restartPolicy", "Never")

    scheduler = _pod(pod_template, "scheduler", target, image=config.scheduler.image or target.image,
                     command=None, args=["dask", "scheduler"], resources=scheduler_resources)
    scheduler_container = _container(scheduler, "scheduler")
    scheduler_container.setdefault("ports", [
        {"name": "tcp-comm", "containerPort": SCHEDULER_PORT, "protocol": "TCP"},
        {"name": "http-dashboard", "containerPort": DASHBOARD_PORT, "protocol": "TCP"},
    ])
    scheduler_container.setdefault("readinessProbe", _probe(initial_delay=5, period=10))
    scheduler_container.setdefault("livenessProbe", _probe(initial_delay=15, period=20))
    scheduler["service"] = {
        "type": "ClusterIP",
        "selector": {"dask.org/cluster-name": target.name, "dask.org/component": "scheduler"},
        "ports": [
            {"name": "tcp-comm", "protocol": "TCP", "port": SCHEDULER_PORT, "targetPort": "tcp-comm"},
            {"name": "http-dashboard", "protocol": "TCP", "port": DASHBOARD_PORT, "targetPort": "http-dashboard"},
        ],
    }

    worker = _pod(pod_template, "worker", target, image=config.workers.image or target.image, command=None,
                  args=_worker_args(worker_resources), resources=worker_resources)
    _container(worker, "worker").setdefault(
        "ports", [{"name": "http-dashboard", "containerPort": WORKER_DASHBOARD_PORT, "protocol": "TCP"}])
    replicas = config.workers.number_of_workers
    worker["replicas"] = 1 if replicas is None else replicas

    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": object_meta(target),
        "spec": {"job": job, "cluster": {"spec": {"scheduler": scheduler, "worker": worker}}},
    }


def job_state(obj: dict[str, Any]) -> JobState:
    """Whether the job ended, from ``status.jobStatus`` (missing: not started yet)."""
    status = obj.get("status") or {}
    phase = status.get("jobStatus") or ""
    if phase in SUCCEEDED_STATES:
        return JobState(phase, done=True, succeeded=True)
    if phase in FAILED_STATES:
        runner = status.get("jobRunnerPodName") or "the job runner pod"
        return JobState(phase, done=True, succeeded=False, message=f"{runner} failed (see its logs)")
    return JobState(phase, done=False)


def _pod(
    user_template: Any, name: str, target: JobTarget, *, image: str, command: list[str] | None,
    args: list[str] | None = None, resources: Resources | None,
) -> dict[str, Any]:
    """One pod (``metadata`` + ``spec``) on the task's template, its main container named ``name``."""
    if command is None and args:  # pod_template sets args only together with a command
        template = base.pod_template(user_template, "pod_template", container_name=name, image=image,
                                     env=target.env, resources=resources)
        container = _container(template, name)
        if not container.get("command") and not container.get("args"):
            container["args"] = list(args)
    else:
        template = base.pod_template(user_template, "pod_template", container_name=name, image=image,
                                     command=command, args=args, env=target.env, resources=resources)
    return with_labels(template, target.labels)


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod["spec"]["containers"]
    return next(c for c in containers if c.get("name") == name)


def _probe(*, initial_delay: int, period: int) -> dict[str, Any]:
    return {"httpGet": {"port": "http-dashboard", "path": "/health"},
            "initialDelaySeconds": initial_delay, "periodSeconds": period}


def _worker_args(resources: Resources | None) -> list[str]:
    args = ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address",
            str(WORKER_DASHBOARD_PORT)]
    if resources is None:
        return args
    if resources.cpu is not None:
        cpu = resources.cpu[1] if isinstance(resources.cpu, tuple) else resources.cpu
        args += ["--nthreads", str(max(1, math.ceil(cpu_count(cpu, "WorkerGroup.resources.cpu"))))]
    if resources.memory is not None:
        memory = resources.memory[1] if isinstance(resources.memory, tuple) else resources.memory
        args += ["--memory-limit", str(memory_bytes(memory, "WorkerGroup.resources.memory"))]
    return args
