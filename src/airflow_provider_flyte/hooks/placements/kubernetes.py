"""The ``kubernetes`` placement, shared by every engine: an ephemeral cluster per task, through its operator.

The task's ``conn_id`` names a connection of the cncf-kubernetes provider (type ``kubernetes``).
Nothing runs on the worker: ``run()`` stages the task (:mod:`airflow_provider_flyte.remote.staging`),
builds the engine's object from the plugin config (:mod:`airflow_provider_flyte.manifests`), whose
main container runs the in-cluster entrypoint against the staged spec, creates it (or reattaches to
the one an earlier try of this task left running), and then either defers to
:data:`JOB_TRIGGER` (the default) or waits in the worker, streaming the log
(:mod:`airflow_provider_flyte.remote.watch`). The result comes back from the store; the object is deleted
on success and failure (kept with an expiry annotation if ``keep_failed_s`` is set), on kill and on
timeout. Each engine's ``hooks/<engine>/kubernetes.py`` says only what differs: the main container's
command and the pod whose log is the task's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_flyte.core import field_checks, settings
from airflow_provider_flyte.core.sealed import Sealed
from airflow_provider_flyte.core.spec import KUBERNETES
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.manifests import known_fields, pod_settings
from airflow_provider_flyte.plugins.rebuild import resources_of

#: ``TaskSpec.options`` keys this placement reads (the operator sets them).
DEFERRABLE, STARTUP_TIMEOUT, POLL_INTERVAL, KEEP_FAILED, NAMESPACE, DEADLINE = (
    "deferrable", "startup_timeout", "poll_interval", "keep_failed_s", "namespace", "deadline")
#: The trigger a deferred task waits in. Named by path, as the triggerer's table stores it, not imported:
#: hooks sit below ``triggers/`` (which builds on :mod:`airflow_provider_flyte.remote.watch`).
JOB_TRIGGER = "airflow_provider_flyte.triggers.kubernetes_job.FlyteKubernetesJobTrigger"


#: The in-cluster entrypoint's package (``python -m``). Named, not imported: hooks sit below ``runtime/``.
ENTRYPOINT_MODULE = "airflow_provider_flyte.runtime"


def entrypoint_command(spec_uri: str) -> list[str]:
    """The command a pod runs: the image's ``python`` with the in-cluster entrypoint."""
    return [os.environ.get("FLYTE_POD_PYTHON", "python"), "-m", ENTRYPOINT_MODULE, spec_uri]


def entrypoint_file() -> str:
    """Path of the entrypoint script in the image (``spark-submit`` runs a file); the worker's own layout."""
    found = importlib.util.find_spec(ENTRYPOINT_MODULE)
    assert found is not None and found.origin is not None
    return str(Path(found.origin).with_name("__main__.py"))


class KubernetesPlacement:
    """Mixin for an engine's hook: ``class KubernetesSparkHook(KubernetesPlacement, FlyteSparkHook)``."""

    placement: ClassVar[str | None] = KUBERNETES
    #: Container whose log is the task's, and how to find its pod (exact name pattern or label selector).
    log_container: ClassVar[str] = ""

    # provided by FlyteEngineHook
    config: Any
    spec: Any
    task: Any
    conn_id: str | None
    links: dict[str, str]
    job_identity: dict[str, str]
    log: Any
    add_cleanup: Callable[..., None]

    # -- what each engine says ------------------------------------------------------------------
    def job_target(self, spec_uri: str, namespace: str) -> Any:
        """The :class:`~airflow_provider_flyte.manifests.base.JobTarget` whose main container runs the task."""
        from airflow_provider_flyte.manifests.base import JobTarget

        return JobTarget.for_task(self.task, image=self.spec.image, command=entrypoint_command(spec_uri),
                                  namespace=namespace, env=self.spec.env_vars, resources=resources_of(self.spec))

    def log_source(self, name: str) -> dict[str, str]:
        """``{"log_pod": ...}`` or ``{"log_selector": ...}`` for the job named ``name``."""
        return {}

    # -- the contract ---------------------------------------------------------------------------
    @property
    def manifest_module(self) -> str:
        from airflow_provider_flyte.core import engines as registry

        path = registry.find(type(self.config)).manifest_path
        if not path:
            raise TypeError(f"{type(self.config).__name__} has no Kubernetes manifest module")
        return path

    def option(self, key: str, default: Any = None) -> Any:
        value = (self.spec.options or {}).get(key)
        return default if value is None else value

    def pre(self) -> dict[str, Any]:
        from airflow_provider_flyte.manifests.base import JobTarget, job_name

        JobTarget.for_task(self.task, image=self.spec.image, command=["true"])  # the image is required
        self._name = job_name(self.task)
        self.record_links(self._name)
        return {}

    def record_links(self, name: str) -> None:
        """The job's and its driver pod's dashboard URLs, where ``[flyte] kubernetes_*_url`` templates are set."""
        values = {"name": name, "namespace": self.option(NAMESPACE) or settings.value("kubernetes_namespace") or "default",
                  "conn_id": self.conn_id or "", "kind": importlib.import_module(self.manifest_module).KIND}
        source = self.log_source(name)
        pod = {"pod": source.get("log_pod", ""), "selector": source.get("log_selector", "")}
        for key, option, extra in (("kubernetes_object", "kubernetes_object_url", {}),
                                   ("kubernetes_pod", "kubernetes_pod_url", pod)):
            template = settings.value(option)
            if not template:
                continue
            try:
                self.links[key] = template.format(**values, **extra)
            except (KeyError, IndexError, ValueError) as exc:
                raise FlyteConfigError(f"[flyte] {option}", template, f"cannot be filled in ({exc!r})",
                                       "use only {name}, {namespace}, {conn_id}, {kind}"
                                       + (", {pod}, {selector}" if extra else "")) from None

    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        from airflow_provider_flyte.remote import jobs as k8s
        from airflow_provider_flyte.remote import watch
        from airflow_provider_flyte.remote.staging import cleanup_run, stage_task

        assert self.conn_id is not None
        jobs = k8s.KubernetesJobs(self.conn_id, self.manifest_module, self.option(NAMESPACE))
        with api_unreachable_error(jobs):  # the first call to the API: a server that is down says so here
            jobs.sweep_expired()
        from airflow_provider_flyte.manifests.base import task_labels

        labels = task_labels(self.task)
        ref_fields: dict[str, Any] = {
            "conn_id": self.conn_id, "namespace": jobs.namespace, "manifest_module": self.manifest_module,
            "selector": k8s.selector_of(labels), "log_container": self.log_container,
            "keep_failed_s": float(self.option(KEEP_FAILED, 0.0)),
        }
        from airflow_provider_flyte.remote import resume

        store = resume.task_state_store()
        stored = resume.recall(store, jobs.manifest.KIND)
        if stored is not None:  # Airflow >= 3.3, an earlier try stored its object: exactly that uid or a new job
            there = jobs if stored["namespace"] == jobs.namespace else k8s.KubernetesJobs(
                self.conn_id, self.manifest_module, stored["namespace"])
            resumed = resume.resume(there, stored)
            self.log.info("%s", resumed.why)
            obj = resumed.obj
            if obj is not None:  # reattached where it runs; a new job goes to this try's namespace
                jobs, ref_fields["namespace"] = there, there.namespace
        else:
            obj = self._reattachable(jobs, labels)
            if obj is not None:
                resume.remember(store, obj, jobs.manifest.KIND, jobs.namespace)
        if obj is None:
            # secrets travel as a Kubernetes Secret the pods read; the staged spec only says which env var
            refs = [{**dict(ref), "from_env": ref.get("as_env_var") or pod_settings.secret_env_name(i)}
                    for i, ref in enumerate(self.spec.secrets)]
            sealed = Sealed.of(self.spec)  # secret values of the config and env_vars: through the Secret too
            staged = stage_task(self.spec.with_changes(secrets=tuple(refs)), fn, args, kwargs, run_key=self._name,
                                sealed=sealed)
            secret, submitted = None, False
            try:  # until the job is set up, a failure removes what was staged for it, its Secret and the job
                target = self.job_target(staged.spec_uri, jobs.namespace)
                if self.option(DEADLINE) is not None:  # execution_timeout is the job's deadline where its CRD has one
                    from airflow_provider_flyte.manifests.base import cluster_deadline_s

                    target = dataclasses.replace(target, active_deadline_s=cluster_deadline_s(self.option(DEADLINE),
                                                                                              time.time()))
                body = self.build_body(target)
                sealed_data = pod_settings.seal_manifest(body, sealed, self._name)
                body["metadata"].setdefault("annotations", {}).update({
                    k8s.SPEC_ANNOTATION: staged.spec_uri,
                    **({k8s.STAGING_CONN_ANNOTATION: staged.conn_id} if staged.conn_id else {}),
                })
                self.apply_pod_settings(body, jobs, [r["from_env"] for r in refs])
                self.apply_queue(body, jobs)
                known_fields.check_known_fields(body)  # a field the CRD lacks: the API server would drop it
                secret = self._create_secret(jobs, labels, sealed_data) if refs or sealed_data else None
                submitted = True  # the job may exist from here even if the create raises (a lost answer, a kill)
                obj, created = jobs.create(body)
                if secret:
                    jobs.own_secret(secret, obj)
            except BaseException:
                if submitted:
                    with contextlib.suppress(Exception):
                        jobs.delete(body["metadata"]["name"])
                if secret:
                    jobs.delete_secret(secret)
                with contextlib.suppress(Exception):
                    cleanup_run(staged)
                raise
            resume.remember(store, obj, jobs.manifest.KIND, jobs.namespace)  # before the wait, as the mixin
            self.log.info("%s %s/%s %s", jobs.manifest.KIND, jobs.namespace, obj["metadata"]["name"],
                          "created" if created else "already existed: reattached")
        annotations = obj["metadata"].get("annotations") or {}
        name = obj["metadata"]["name"]
        ref = k8s.JobRef.from_dict({
            **ref_fields, "name": name, "spec_uri": annotations[k8s.SPEC_ANNOTATION],
            "staging_conn_id": annotations.get(k8s.STAGING_CONN_ANNOTATION),
            "selector": k8s.selector_of(own_labels(obj["metadata"].get("labels") or labels)), **self.log_source(name),
            "uid": obj["metadata"].get("uid") or "", "queue_timeout": float(self.option("kueue_timeout") or 0.0),
        })
        self._ref = ref
        self.job_identity.update(kind=jobs.manifest.KIND, namespace=ref.namespace, name=ref.name, uid=ref.uid)
        self._handed_over = False
        self.add_cleanup(self._delete_unless_handed_over)
        deadline = self.option(DEADLINE)
        startup_timeout = float(self.option(STARTUP_TIMEOUT, watch.DEFAULT_STARTUP_TIMEOUT_S))
        poll_interval = float(self.option(POLL_INTERVAL, watch.DEFAULT_POLL_INTERVAL_S))
        if self.option(DEFERRABLE, True):
            from airflow.sdk.exceptions import TaskDeferred

            module, _, name = JOB_TRIGGER.rpartition(".")
            trigger_class = getattr(importlib.import_module(module), name)
            self._handed_over = True  # the trigger (or execute_complete) owns the object from here on
            self.log.info("Deferring: the triggerer waits for %s", ref.describe())
            raise TaskDeferred(
                trigger=trigger_class(ref.to_dict(), poll_interval=poll_interval, startup_timeout=startup_timeout,
                                      started_at=time.time(), deadline=deadline),
                method_name="execute_complete",
            )
        self.log.info("Waiting in the worker for %s", ref.describe())
        event = watch.wait(ref, poll_interval=poll_interval, startup_timeout=startup_timeout, deadline=deadline,
                         logger=self.log)
        self._handed_over = True  # finish() deletes it (or keeps it, failed, with an expiry)
        return watch.finish(ref, event, logger=self.log)

    def build_body(self, target: Any) -> dict[str, Any]:
        module = importlib.import_module(self.manifest_module)
        kwargs = {"pod_template": self.spec.pod_template} if getattr(self.spec, "pod_template", None) else {}
        return module.build_manifest(self.config, target, **kwargs)  # type: ignore[no-any-return]

    def apply_pod_settings(self, body: dict[str, Any], jobs: Any, secret_env: Sequence[str]) -> None:
        """Secrets (as env from the job's Secret), service account and interruptible nodes on every pod."""
        interruptible = bool(getattr(self.spec, "interruptible", False))
        pod_settings.apply_pod_settings(
            body, secret_env=secret_env, job_name=body["metadata"]["name"],
            service_account=self.spec.service_account or jobs.connection_extra("service_account")
            or settings.value("kubernetes_service_account"),
            interruptible=interruptible,
            tolerations=_json_conf("kubernetes_interruptible_tolerations", list) if interruptible else [],
            node_selector=_json_conf("kubernetes_interruptible_node_selector", dict) if interruptible else {},
        )

    def apply_queue(self, body: dict[str, Any], jobs: Any) -> None:
        """The task's Kueue queue (its TaskEnvironment, else the connection's extra, else ``[flyte]``): suspended."""
        from airflow_provider_flyte.manifests import kueue

        task_queue = self.option("kueue_queue")
        for queue, source in ((task_queue, "TaskEnvironment.kueue_queue"),
                              (jobs.connection_extra("kueue_queue"), f"connection {jobs.conn_id!r} extra kueue_queue"),
                              (settings.value("kubernetes_kueue_queue"), "[flyte] kubernetes_kueue_queue")):
            if queue is None:
                continue
            if queue:
                field_checks.check_kueue_queue(source, queue)
                kueue.apply_queue(body, queue, source=source)
            return

    def _create_secret(self, jobs: Any, labels: Mapping[str, str], sealed: Mapping[str, str]) -> str:
        """Resolve the task's secrets here (Airflow's Variables and Connections), mask them, store them as a
        Secret with the ``sealed`` values taken out of the spec and the job object."""
        from airflow_provider_flyte import secrets

        values = []
        for ref in self.spec.secrets:
            secret = secrets.from_ref(ref)
            value = secrets.resolve(secret)
            secrets.mask(value, secret.as_env_var or secret.key)
            values.append(value)
        body = pod_settings.secret_manifest(self._name, jobs.namespace, labels, values, sealed)
        name = jobs.create_secret(body)
        self.log.info("Secret %s/%s holds the task's %d secret(s) and %d secret config/env value(s) (values masked)",
                      jobs.namespace, name, len(values), len(sealed))
        return name

    def _reattachable(self, jobs: Any, labels: Mapping[str, str]) -> dict[str, Any] | None:
        """A job of an earlier try (or this one) of the same task that is still running: reattach instead of a duplicate."""
        from airflow_provider_flyte.remote import jobs as k8s

        found = jobs.find(k8s.selector_of(labels, k8s.TASK_LABELS))
        for obj in found:
            annotations = obj["metadata"].get("annotations") or {}
            if annotations.get(k8s.EXPIRES_ANNOTATION) or k8s.SPEC_ANNOTATION not in annotations:
                continue
            if jobs.manifest.job_state(obj).done:
                jobs.delete(obj["metadata"]["name"])  # a finished job of an earlier try: not this try's
                continue
            self.log.info("Reattaching to %s %s/%s (try %s), still running", jobs.manifest.KIND, jobs.namespace,
                          obj["metadata"]["name"], (obj["metadata"].get("labels") or {}).get("try_number"))
            return obj  # type: ignore[no-any-return]
        return None

    def _delete_unless_handed_over(self) -> None:
        if getattr(self, "_handed_over", True):
            return
        from airflow_provider_flyte.remote import watch
        from airflow_provider_flyte.remote.jobs import KubernetesJobs

        ref = self._ref
        watch.delete_job(KubernetesJobs(ref.conn_id, ref.manifest_module, ref.namespace), ref,
                         pod_stop_wait_s=watch.KILL_POD_STOP_WAIT_S, out=self.log)

    def interrupt(self) -> None:
        """The worker waits in ``time.sleep``/HTTP calls, which the timeout interrupts by itself."""


def own_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The object's labels less Kueue's queue label, which the operators do not copy to the pods (the pod selector)."""
    from airflow_provider_flyte.manifests.kueue import QUEUE_LABEL

    return {k: v for k, v in labels.items() if k != QUEUE_LABEL}


@contextlib.contextmanager
def api_unreachable_error(jobs: Any) -> Iterator[None]:
    """urllib3's ``MaxRetryError`` (no answer after the retries) as an error naming the API address and connection."""
    from urllib3.exceptions import MaxRetryError

    try:
        yield
    except MaxRetryError as exc:
        address = getattr(getattr(jobs.hook.api_client, "configuration", None), "host", None) or "?"
        raise FlyteEngineError(
            f"Cannot reach the Kubernetes API at {address} (connection {jobs.conn_id!r}): {exc.reason}. Fix: check "
            "that the cluster is running and that the connection's kubeconfig (or in-cluster setting) names it."
        ) from exc


def _json_conf(key: str, kind: type) -> Any:
    """A ``[flyte]`` option holding JSON of type ``kind`` (empty when unset)."""
    import json

    raw = settings.value(key)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise FlyteConfigError(f"[flyte] {key}", raw, f"not JSON ({exc})",
                               'use e.g. [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]'
                               if kind is list else 'use e.g. {"node-pool": "spot"}') from None
    if not isinstance(value, kind):
        raise FlyteConfigError(f"[flyte] {key}", raw, f"must be a JSON {'list' if kind is list else 'object'}",
                               "see docs/kubernetes.md, 'Interruptible tasks'")
    return value


__all__ = ["JOB_TRIGGER", "KubernetesPlacement", "entrypoint_command", "entrypoint_file"]
