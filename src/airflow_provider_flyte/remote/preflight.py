"""What a Kubernetes connection can do, checked before a task fails on it (``python -m airflow_provider_flyte check``).

One :class:`Line` per check, each ✓ or ✗ with the fix (``·`` for what is only informational):

1. the API server answers (its version), within ``timeout`` seconds even when it never answers;
2. which engines' job kinds are served there (API discovery: ``/apis/<group>/<version>``), so which engines can
   run, and the related kinds (RayCluster, DaskCluster, Kubeflow Trainer v2's TrainJob) for information;
3. each verb of the Roles of docs/kubernetes.md (:mod:`~airflow_provider_flyte.remote.rbac`) in the job
   namespace, asked of the API server for this connection's identity (``SelfSubjectAccessReview``);
4. the staging store is writable from here: a probe object written, read back and deleted (bounded);
5. the Kueue ``LocalQueue`` exists in the namespace, when one is named (``--queue``, else the connection's extra
   ``kueue_queue``, else ``[flyte] kubernetes_kueue_queue``, as for a task).
The namespace is a task's (:func:`job_namespace`); engines not asked about only inform (``engines``).

The client is the cncf-kubernetes provider's ``KubernetesHook``, as for a task. Nothing is created in the
cluster (access reviews are answered, not stored). A ✗ whose verb only degrades a task (no log, no watch,
no kept failed job), or a queue this identity may not read, says so and does not count as a failure
(:attr:`Line.fatal`).
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_flyte.core import engines, settings
from airflow_provider_flyte.remote import rbac
from airflow_provider_flyte.remote.conn_extra import connection_extra

OK, FAILED, INFO = "✓", "✗", "·"
#: Seconds one API request may take (connect and read) unless the caller says otherwise.
DEFAULT_TIMEOUT = 5.0
STAGING_TIMEOUT = 10.0
KUEUE_GROUP, KUEUE_VERSION, KUEUE_PLURAL = "kueue.x-k8s.io", "v1beta1", "localqueues"
#: The connection extra that names a Kueue LocalQueue.
KUEUE_EXTRA = "kueue_queue"
#: What installs each engine's kinds, by API group.
OPERATORS = {
    "sparkoperator.k8s.io": "spark-operator (kubeflow/spark-operator)",
    "ray.io": "KubeRay (ray-project/kuberay)",
    "kubernetes.dask.org": "the Dask Kubernetes operator (dask/dask-kubernetes)",
    "kubeflow.org": "the Kubeflow training operator v1 (kubeflow/training-operator)",
    "trainer.kubeflow.org": "Kubeflow Trainer v2 (kubeflow/trainer)",
}
#: Kinds shown for information: ``(kind, group, version, plural, what it is)``.
RELATED_KINDS = (
    ("RayCluster", "ray.io", "v1", "rayclusters", "KubeRay's cluster, which a RayJob creates"),
    ("DaskCluster", "kubernetes.dask.org", "v1", "daskclusters", "the Dask operator's cluster, which a DaskJob creates"),
    ("TrainJob", "trainer.kubeflow.org", "v1alpha1", "trainjobs", "Kubeflow Trainer v2, PyTorchJob's successor"),
)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Line:
    """One check's outcome: ``mark`` ✓, ✗ or · and one line of text; ``fatal``: some task cannot run."""

    mark: str
    text: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.mark} {self.text}"


def exit_status(lines: list[Line]) -> int:
    """1 when some task could not run (a fatal ✗), else 0."""
    return 1 if any(line.fatal for line in lines) else 0


def bounded(timeout: float, fn: Callable[[], _T]) -> _T:
    """``fn()`` in a daemon thread, waited for at most ``timeout`` s (``TimeoutError`` then): whatever the
    client's own retries, a silent server cannot hold the check."""
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name="flyte-preflight", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"no answer within {timeout:g} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def reason_of(exc: BaseException) -> str:
    """A short reason: the API's status and reason, or the exception's type and text."""
    status = status_of(exc)
    if status is not None:
        return f"{status} {getattr(exc, 'reason', '') or ''}".strip()
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
        return f"no answer in time ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"[:300]


def engine_kinds() -> dict[str, tuple[str, Any]]:
    """The engines that run as Kubernetes jobs, by the name ``--engine`` takes: ``(label, manifest module)``."""
    return {entry.extra or entry.config_name.lower(): (entry.label or entry.config_name,
                                                       importlib.import_module(entry.manifest_path))
            for entry in engines.entries() if entry.manifest_path}


def job_namespace(conn_id: str, hook: Any, given: str | None = None) -> tuple[str, str]:
    """The namespace a task's job goes to through this connection, and where it comes from.

    As a task: ``[flyte] kubernetes_namespace`` is in its options (``authoring.spec_builder``), and
    ``remote.jobs.KubernetesJobs`` takes that, else the connection's, else ``default``; ``given`` first.
    """
    for namespace, source in ((given, "--namespace"),
                              (settings.text("kubernetes_namespace"), "[flyte] kubernetes_namespace"),
                              (hook.get_namespace(), f"connection {conn_id!r}")):
        if namespace:
            return namespace, source
    return "default", "neither [flyte] kubernetes_namespace nor the connection names one"


class ConnectionCheck:
    """The checks of one ``kubernetes`` connection; :meth:`run` returns their lines.

    :param conn_id: the cncf-kubernetes provider's connection (``kubernetes`` type).
    :param namespace: the job namespace; default as for a task (:func:`job_namespace`).
    :param queue: a Kueue LocalQueue name; default the connection's extra ``kueue_queue``, else
        ``[flyte] kubernetes_kueue_queue`` (none: not checked).
    :param role: ``worker`` or ``triggerer``: check that process's Role only; ``None``: both (one connection
        used by the worker and the triggerer).
    :param timeout: seconds one API request may take.
    :param engines: the engines asked about (names of :func:`engine_kinds`); ``None``: all. The others'
        kinds and verbs are shown for information only.
    """

    def __init__(self, conn_id: str, *, namespace: str | None = None, queue: str | None = None,
                 role: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 staging_timeout: float = STAGING_TIMEOUT, engines: Collection[str] | None = None) -> None:
        self.conn_id = conn_id
        self.namespace = namespace
        self.queue = queue
        self.namespace_source = self.queue_source = ""
        kinds = engine_kinds()
        unknown = sorted(set(engines or ()) - set(kinds))
        if unknown:
            raise ValueError(f"engines {unknown} are not Kubernetes engines: name some of {sorted(kinds)}")
        self.engines = set(kinds) if engines is None else set(engines)
        #: The job objects ``(group, plural)`` of the engines not asked about.
        self.other_objects = {(m.GROUP, m.PLURAL) for name, (_, m) in kinds.items() if name not in self.engines}
        self.role = role
        self.timeout = timeout
        self.staging_timeout = staging_timeout
        self.hook: Any = None
        self.api: Any = None
        self._discovered: dict[str, set[str] | None] = {}

    # -- the whole check ------------------------------------------------------------------------------------
    def run(self) -> list[Line]:
        lines = [self.connect()]
        if self.api is not None:
            answered = self.api_answers()
            lines.append(answered)
            if answered.mark == OK:
                lines += self.kinds()
                lines += self.permissions()
                queue = self.queue_line()
                if queue is not None:
                    lines.append(queue)
            else:
                lines.append(Line(INFO, "engine kinds, permissions and the Kueue queue not checked: the API server "
                                        "did not answer"))
        lines.append(self.staging())
        return lines

    def connect(self) -> Line:
        """Load the connection and build its client (nothing is sent yet)."""
        try:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            self.hook = KubernetesHook(conn_id=self.conn_id)
            self.api = self.hook.get_conn()
            self.namespace, self.namespace_source = job_namespace(self.conn_id, self.hook, self.namespace)
        except Exception as exc:
            self.api = None
            return Line(FAILED, f"connection {self.conn_id!r} cannot be loaded as a kubernetes connection: "
                                f"{reason_of(exc)}. Fix: create it (type kubernetes: in-cluster, a kubeconfig path "
                                f"or an inline kubeconfig) where this process reads connections", fatal=True)
        self.resolve_queue()
        return Line(OK, f"connection {self.conn_id!r} loaded: API server {self.host}, namespace {self.namespace!r} "
                        f"(from {self.namespace_source})")

    def resolve_queue(self) -> None:  # as the placement's apply_queue
        for queue, source in ((self.queue, "--queue"),
                              (self.connection_extra(KUEUE_EXTRA), f"connection {self.conn_id!r} extra {KUEUE_EXTRA}"),
                              (settings.value("kubernetes_kueue_queue"), "[flyte] kubernetes_kueue_queue")):
            if queue is not None:
                self.queue, self.queue_source = queue or None, source
                return

    @property
    def host(self) -> str:
        return str(getattr(getattr(self.api, "configuration", None), "host", "") or "?")

    def connection_extra(self, key: str) -> str | None:
        return connection_extra(self.hook, key)

    # -- 1. the API answers ---------------------------------------------------------------------------------
    def api_answers(self) -> Line:
        from kubernetes import client

        started = time.monotonic()
        try:
            version = bounded(self.timeout + 1, lambda: client.VersionApi(self.api).get_code(
                _request_timeout=self.timeout))
        except Exception as exc:
            if status_of(exc) == 401:
                why = "refused the connection's credentials (401 Unauthorized)"
                fix = "renew the token or certificate of the connection's kubeconfig"
            elif status_of(exc) is not None:
                why = f"answered {reason_of(exc)}"
                fix = "check that the connection points at a Kubernetes API server"
            else:
                why = (f"did not answer within {self.timeout:g} s ({reason_of(exc)}; gave up after "
                       f"{time.monotonic() - started:.1f} s)")
                fix = ("check the server address of the connection's kubeconfig and network access to it from "
                       "this machine")
            return Line(FAILED, f"API server {self.host} {why}. Fix: {fix}", fatal=True)
        return Line(OK, f"API server {self.host} answers: Kubernetes {version.git_version} ("
                        f"{time.monotonic() - started:.2f} s)")

    # -- 2. the engines' kinds ------------------------------------------------------------------------------
    def served(self, group: str, version: str) -> set[str] | None:
        """The resources served under ``group/version`` (``None``: not served at all)."""
        key = f"{group}/{version}"
        if key not in self._discovered:
            try:
                response = bounded(self.timeout + 1, lambda: self.api.call_api(
                    f"/apis/{key}", "GET", header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"], _return_http_data_only=True, _preload_content=False,
                    _request_timeout=self.timeout))
                found = json.loads(response.data)
            except Exception as exc:
                if status_of(exc) != 404:
                    raise
                found = None
            self._discovered[key] = None if found is None else {r["name"] for r in found.get("resources", [])}
        return self._discovered[key]

    def kinds(self) -> list[Line]:
        lines = []
        for name, (label, manifest) in engine_kinds().items():
            line = self.kind_line(label, manifest.KIND, manifest.GROUP, manifest.VERSION, manifest.PLURAL)
            if name not in self.engines and line.mark != OK:
                line = Line(INFO, f"{line.text} (for information: --engine does not name {name})")
            lines.append(line)
        for kind, group, version, plural, what in RELATED_KINDS:
            try:
                served = self.served(group, version)
            except Exception as exc:
                lines.append(Line(INFO, f"{kind} ({group}/{version}): not known ({reason_of(exc)})"))
                continue
            state = "served" if served is not None and plural in served else "not installed"
            lines.append(Line(INFO, f"{kind} ({group}/{version}, {what}): {state}"))
        return lines

    def kind_line(self, engine: str, kind: str, group: str, version: str, plural: str) -> Line:
        where = f"{kind} ({group}/{version})"
        try:
            served = self.served(group, version)
        except Exception as exc:
            return Line(FAILED, f"{engine}: cannot tell whether {where} is served: API discovery failed "
                                f"({reason_of(exc)})", fatal=True)
        if served is not None and plural in served:
            return Line(OK, f"{engine}: {where} is served")
        return Line(FAILED, f"{engine}: unavailable, {kind} CRD not installed ({group}/{version} {plural} is not "
                            f"served). Fix: install {OPERATORS.get(group, 'its operator')} in the cluster, "
                            f"or run {engine} tasks elsewhere", fatal=True)

    # -- 3. the Roles' verbs --------------------------------------------------------------------------------
    def allowed(self, verb: str, group: str, resource: str) -> bool:
        from kubernetes import client

        name, sub = rbac.split_resource(resource)
        attributes = {"namespace": self.namespace, "verb": verb, "group": group, "resource": name}
        if sub:
            attributes["subresource"] = sub
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        review = bounded(self.timeout + 1, lambda: client.AuthorizationV1Api(self.api).create_self_subject_access_review(
            body, _request_timeout=self.timeout))
        return bool(review.status.allowed)

    def permissions(self) -> list[Line]:
        lines = []
        for role, rule, verb in rbac.checks(self.role):
            who = f"{role.needed_by} ({role.name})"
            try:
                refused = [(group, resource) for group, resource in rule.objects
                           if not self.allowed(verb, group, resource)]
            except Exception as exc:  # one failed review is enough: a slow server is not asked 40 more times
                lines.append(Line(FAILED, f"{who}: cannot ask whether this identity may {verb} "
                                          f"{', '.join(rule.resources)}: {reason_of(exc)}", fatal=True))
                lines.append(Line(INFO, "the Roles' other verbs not checked"))
                break
            if not refused:
                lines.append(Line(OK, f"{who}: may {verb} {', '.join(rule.resources)} in namespace "
                                      f"{self.namespace!r}"))
                continue
            named = ", ".join(f"{resource} ({group})" if group else resource for group, resource in refused)
            degrades = rule.degrades.get(verb)
            counted = [(group, resource) for group, resource in refused
                       if (group, rbac.split_resource(resource)[0]) not in self.other_objects]
            effect = (f" Tasks still run, but {degrades}." if degrades
                      else "" if counted else " Only engines --engine does not name need it.")
            lines.append(Line(FAILED, f"{who}: may not {verb} {named} in namespace {self.namespace!r}.{effect} "
                                      f"Fix: {rbac.fix_rule(role, refused, verb)}",
                              fatal=not degrades and bool(counted)))
        return lines

    # -- 4. the staging store -------------------------------------------------------------------------------
    def staging(self) -> Line:
        from airflow_provider_flyte.remote import store

        started = time.monotonic()
        uri = "[flyte] staging_uri"
        try:
            base = store.staging_base()
            uri = store.uri_of(base)
            probe = base / "checks" / f"probe-{uuid.uuid4().hex}.txt"
            data = f"airflow-provider-flyte check {time.time()}".encode()
            fs = store.filesystem(base, self.staging_timeout)
            try:  # a write that timed out may still complete: the probe is removed whatever happened
                store.write(fs, probe, data, self.staging_timeout)
                back = store.read(fs, probe, self.staging_timeout, missing=f"the probe {store.uri_of(probe)} "
                                  "was written but cannot be read back")
            finally:
                store.remove(fs, probe, self.staging_timeout)
            if back != data:
                raise ValueError(f"the probe {store.uri_of(probe)} read back other bytes than were written")
        except Exception as exc:
            return Line(FAILED, f"staging store {uri} is not writable from here: {exc}", fatal=True)
        return Line(OK, f"staging store {uri} is writable from here: a probe object written, read back and deleted "
                        f"({time.monotonic() - started:.2f} s; the pods need the same access)")

    # -- 5. the Kueue queue ---------------------------------------------------------------------------------
    def queue_line(self) -> Line | None:
        if not self.queue:
            return None
        from kubernetes import client

        where = f"Kueue LocalQueue {self.queue!r} (from {self.queue_source}) in namespace {self.namespace!r}"
        try:
            served = self.served(KUEUE_GROUP, KUEUE_VERSION)
            if served is None or KUEUE_PLURAL not in served:
                return Line(FAILED, f"{where}: Kueue is not installed ({KUEUE_GROUP}/{KUEUE_VERSION} "
                                    f"{KUEUE_PLURAL} is not served). Fix: install Kueue, or name no queue "
                                    f"(--queue, the connection's extra {KUEUE_EXTRA!r}, [flyte] "
                                    f"kubernetes_kueue_queue)", fatal=True)
            found = bounded(self.timeout + 1, lambda: client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, self.namespace, KUEUE_PLURAL, self.queue, _request_timeout=self.timeout))
        except Exception as exc:
            if status_of(exc) == 404:
                return Line(FAILED, f"{where} does not exist. Fix: create it (a LocalQueue pointing at a "
                                    f"ClusterQueue), or name an existing one (kubectl get localqueues -n "
                                    f"{self.namespace})", fatal=True)
            if status_of(exc) == 403:
                return Line(FAILED, f"{where}: this identity may not get {KUEUE_PLURAL} ({KUEUE_GROUP}), so "
                                    f"cannot tell whether it exists (tasks do not need that verb). Fix: check with "
                                    f"an identity that may (kubectl get localqueue {self.queue} -n "
                                    f"{self.namespace}), or grant get on {KUEUE_PLURAL} to this one")
            return Line(FAILED, f"{where}: cannot be read ({reason_of(exc)})", fatal=True)
        cluster_queue = (found.get("spec") or {}).get("clusterQueue", "?")
        return Line(OK, f"{where} exists (ClusterQueue {cluster_queue!r})")


def check_connection(conn_id: str, **options: Any) -> list[Line]:
    """The lines of :class:`ConnectionCheck` ``(conn_id, **options)``."""
    return ConnectionCheck(conn_id, **options).run()


__all__ = ["DEFAULT_TIMEOUT", "FAILED", "INFO", "KUEUE_EXTRA", "OK", "ConnectionCheck", "Line",
           "check_connection", "engine_kinds", "exit_status", "job_namespace"]
