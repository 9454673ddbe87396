"""Waiting for a task's job on Kubernetes and ending it: one decision rule, one ending, shared by three callers.

- the worker that waits (``deferrable=False``): :func:`wait`, then :func:`finish`;
- the triggerer (:class:`~airflow_provider_flyte.triggers.kubernetes_job.FlyteKubernetesJobTrigger`):
  :func:`evaluate` on each look, :func:`remove_staged_run` on kill;
- the resume after a deferral (the operator's ``execute_complete``): :func:`complete`.

:func:`evaluate` turns the job's object and pods into a final event (or ``None``: keep waiting);
:func:`finish` reads the outcome the pod wrote, deletes the job (or keeps a failed one with an
expiry) and returns the result or raises; :func:`delete_job` is the one way a job and its staged run go.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.remote.jobs import (
    EXPIRES_ANNOTATION,
    FINISHED_PHASES,
    JobRef,
    KubernetesJobError,
    KubernetesJobs,
    api_reason,
    expiry_stamp,
)

log = logging.getLogger(__name__)

#: Container waiting reasons that never resolve by waiting: the job fails at once with the reason.
FATAL_WAITING_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError",
    "CreateContainerError", "ErrImageNeverPull",
})
DEFAULT_STARTUP_TIMEOUT_S = 300.0
DEFAULT_POLL_INTERVAL_S = 2.0
#: Seconds a failed or killed job's pods get to stop before its staged run is removed a second time.
POD_STOP_WAIT_S = 20.0
#: The same on ``on_kill`` in the worker, which Airflow SIGKILLs 5 s after its SIGTERM.
KILL_POD_STOP_WAIT_S = 3.0


def startup_problem(pods: list[Any]) -> tuple[str, bool] | None:
    """``(reason, fatal)`` when a pod cannot start: an image or container error (fatal at once) or Unschedulable."""
    for pod in pods:
        name = pod.metadata.name
        status = pod.status
        for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
            waiting = container.state.waiting if container.state else None
            if waiting is not None and waiting.reason in FATAL_WAITING_REASONS:
                return f"pod {name} container {container.name}: {waiting.reason}: {waiting.message or ''}".strip(), True
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable":
                return f"pod {name}: Unschedulable: {condition.message or ''}".strip(), False
    return None


# -- watching: one decision rule for the worker's loop and the trigger ------------------------------
def evaluate(ref: JobRef, obj: Mapping[str, Any] | None, pods: list[Any], *, started: float, now: float,
             startup_timeout: float, deadline: float | None) -> dict[str, Any] | None:
    """The final event for the job's current state, or ``None`` to keep waiting.

    ``{"status": "succeeded" | "failed" | "timeout", "message": ..., "job": ref}``. A job that
    cannot start (an image or container error) fails at once; one that is still not running
    after ``startup_timeout`` (Unschedulable, an operator that never moves the status) fails
    with the reason seen; ``deadline`` is the task's ``execution_timeout``.
    """
    def event(status: str, message: str) -> dict[str, Any]:
        return {"status": status, "message": message, "job": ref.to_dict()}

    if obj is None:
        return event("failed", f"{ref.describe()} was deleted while the task waited for it")
    state = ref.manifest.job_state(obj)
    if state.done:
        return event("succeeded" if state.succeeded else "failed",
                     f"{state.phase}{': ' + state.message if state.message else ''}")
    if deadline is not None and now >= deadline:
        return event("timeout", f"the task's execution_timeout passed while {ref.describe()} was {state.phase}")
    problem = startup_problem(pods)
    if problem is not None and problem[1]:
        return event("failed", f"{ref.describe()} cannot start: {problem[0]}")
    # a pod that ended has started: a look between its end and the operator's final status is no startup failure
    running = any(getattr(pod.status, "phase", None) in FINISHED_PHASES for pod in pods) or (
        any(getattr(pod.status, "phase", None) == "Running" for pod in pods) and state.phase not in (
            "NEW", "New", "", "SUBMITTED", "Initializing", "Pending", "Created"))
    if not running and now - started > startup_timeout:
        seen = problem[0] if problem else f"status stayed {state.phase!r}"
        return event("failed", f"{ref.describe()} did not start within {startup_timeout:g} s ({seen})")
    return None


def wait(ref: JobRef, *, poll_interval: float, startup_timeout: float, deadline: float | None,
         logger: Any = None, stream_logs: bool = True) -> dict[str, Any]:
    """Wait in the worker until :func:`evaluate` gives a final event; stream the log pod meanwhile.

    A job waiting in a Kueue queue is followed by a :class:`~airflow_provider_flyte.remote.queueing.QueueWait`:
    its startup timeout starts at admission.
    """
    from airflow_provider_flyte.remote.queueing import QueueWait

    out = logger or log
    jobs = KubernetesJobs(ref.conn_id, ref.manifest_module, ref.namespace)
    started = time.monotonic()
    queued = QueueWait(ref, created=started, log=out)
    streamed = threading.Event()
    streamer: threading.Thread | None = None
    while True:
        obj = jobs.get(ref.name)
        pods = jobs.pods(ref.selector) if ref.selector else []
        now = time.monotonic()
        since, final = queued.look(obj, now)
        final = final or evaluate(ref, obj, pods, started=since, now=now, startup_timeout=startup_timeout,
                                  deadline=None if deadline is None else started + (deadline - time.time()))
        if final is not None:
            if streamer is not None:
                streamer.join(timeout=10)
                if streamed.is_set():
                    final["log"] = ""  # already in the task log
            return final
        if stream_logs and streamer is None:
            pod = jobs.log_pod(ref)
            if pod and any(p.metadata.name == pod and getattr(p.status, "phase", None) in ("Running", "Succeeded",
                                                                                        "Failed") for p in pods):
                streamer = threading.Thread(target=_stream, args=(jobs, ref, pod, out, streamed), daemon=True,
                                            name="flyte-k8s-log")
                streamer.start()
        time.sleep(poll_interval)


def _stream(jobs: KubernetesJobs, ref: JobRef, pod: str, out: Any, done: threading.Event) -> None:
    try:
        for chunk in jobs.stream_log(pod, ref.log_container):
            for line in chunk.splitlines():
                out.info("[%s] %s", pod, line.rstrip())
        done.set()
    except Exception as exc:  # the pod went away; the tail is fetched at the end instead
        out.debug("Log stream of %s ended: %s", pod, exc)


# -- the end of a run: shared by waiting in the worker and the deferred path -----------------------
def finish(ref: JobRef, event: Mapping[str, Any], *, logger: Any = None) -> Any:
    """Read the outcome named by a final ``event``, delete (or keep) the object, return the result or raise."""
    from airflow_provider_flyte.remote.staging import (  # the bundle code: only here
        RemoteTaskError,
        read_result,
    )

    out = logger or log
    jobs = KubernetesJobs(ref.conn_id, ref.manifest_module, ref.namespace)
    status = event.get("status")
    log_text = event.get("log")
    # a failure may be "the name now holds another object" (the trigger checked the uid of a success)
    current = jobs.get(ref.name) if ref.uid and log_text is None and status != "succeeded" else None
    stranger = current is not None and (current.get("metadata") or {}).get("uid") != ref.uid
    pod = jobs.log_pod(ref) if log_text is None and not stranger else None  # never another object's pod log
    if pod:
        log_text = jobs.log_tail(pod, ref.log_container)
        out.info("Log of pod %s (%s):\n%s", pod, ref.describe(), str(log_text).rstrip())
    if status == "succeeded":
        try:
            result = read_result(ref.spec_uri, conn_id=ref.staging_conn_id, where=f"in {ref.describe()}")
        finally:
            _dispose(jobs, ref, failed=False, out=out)
        return result
    reason = str(event.get("message") or status)
    remote: BaseException | None = None
    try:
        read_result(ref.spec_uri, conn_id=ref.staging_conn_id, where=f"in {ref.describe()}")
    except RemoteTaskError as exc:
        remote = exc
    except Exception:
        remote = None
    _dispose(jobs, ref, failed=not event.get("not_admitted"), out=out)  # a queued job is never kept: it would run
    if status == "timeout":
        from airflow.providers.common.compat.sdk import AirflowTaskTimeout

        raise AirflowTaskTimeout(f"{ref.describe()}: {reason}; the object was deleted")
    detail = f"\n{remote}" if remote is not None else ""
    raise KubernetesJobError(f"{ref.describe()} failed: {reason}{detail}") from remote


def _dispose(jobs: KubernetesJobs, ref: JobRef, *, failed: bool, out: Any) -> None:
    if failed and ref.keep_failed_s > 0:
        stamp = expiry_stamp(ref.keep_failed_s)
        try:
            jobs.annotate(ref.name, {EXPIRES_ANNOTATION: stamp}, uid=ref.uid)
            out.warning("Keeping failed %s for debugging until %s (a later task deletes it)", ref.describe(), stamp)
            return
        except Exception:
            out.warning("Could not annotate %s for keeping; deleting it", ref.describe(), exc_info=True)
    # a succeeded job's outcome is written: its pods have nothing left to write
    delete_job(jobs, ref, pod_stop_wait_s=POD_STOP_WAIT_S if failed else 0.0, out=out)


def delete_job(jobs: KubernetesJobs, ref: JobRef, *, pod_stop_wait_s: float, out: Any = None) -> None:
    """Delete the object and its staged run; with ``pod_stop_wait_s``, wait for its pods to stop and remove the run again.

    A pod of a deleted job gets SIGTERM and may still write ``error.json``. The entrypoint writes
    nothing once ``spec.json`` is gone; the second removal catches a pod that looked just before.
    """
    out = out or log
    if jobs.delete(ref.name, uid=ref.uid):
        out.info("Deleted %s", ref.describe())
    remove_staged_run(ref, out)
    if pod_stop_wait_s <= 0 or not ref.selector:
        return
    try:
        running = jobs.wait_pods_stopped(ref.selector, pod_stop_wait_s)
    except Exception as exc:  # as the trigger does: remove the run again all the same
        out.warning("Could not list the pods of %s: %s", ref.describe(), api_reason(exc))
        running = []
    if running:
        out.warning("Pods of %s still running %.0f s after its deletion: %s", ref.describe(), pod_stop_wait_s,
                    ", ".join(running))
    remove_staged_run(ref, out)


def remove_staged_run(ref: JobRef, out: Any = None) -> None:
    """Remove the job's staged spec, payload and outcome (bundles stay: other runs share them)."""
    from airflow_provider_flyte.remote.staging import cleanup_run

    try:
        cleanup_run(ref.spec_uri, conn_id=ref.staging_conn_id)
    except Exception:
        (out or log).warning("Could not remove the staged run %s", ref.spec_uri, exc_info=True)


def complete(event: Mapping[str, Any], *, logger: Any = None) -> Any:
    """``execute_complete``: the trigger's final event -> the task's result (or its error)."""
    return finish(JobRef.from_dict(event["job"]), event, logger=logger)


__all__ = [
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "KILL_POD_STOP_WAIT_S",
    "POD_STOP_WAIT_S",
    "complete",
    "delete_job",
    "evaluate",
    "finish",
    "remove_staged_run",
    "startup_problem",
    "wait",
]
