"""One task's job on Kubernetes, engine-independent: create or reattach, watch, read the outcome, delete.

The engine's Kubernetes operator (spark-operator, KubeRay, dask-kubernetes, the training
operator) runs the job; this module only talks to the API server, through the cncf-kubernetes
provider's ``KubernetesHook`` (sync) and ``AsyncKubernetesHook`` (the trigger), never a client
of its own. Patterned on that provider's ``custom_object_launcher``: a delete that tolerates
404, a create that reattaches on 409, reattach by the task's labels, transient API errors
(429 with ``Retry-After``, 5xx) retried with the provider's ``generic_api_retry``.
A long wait (the trigger's looks) rides out the same kind of errors for longer: :func:`transient_look_error`.
Watching and deciding is :mod:`~airflow_provider_flyte.remote.watch`.

Every object carries the provider's task labels and two annotations: the staged spec's URI
(so a reattaching try reads the right outcome) and, for a failed object kept for debugging,
its expiry (a later task sweeps expired ones).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.remote.conn_extra import connection_extra

log = logging.getLogger(__name__)

SPEC_ANNOTATION = "airflow-provider-flyte/spec-uri"
STAGING_CONN_ANNOTATION = "airflow-provider-flyte/staging-conn-id"
EXPIRES_ANNOTATION = "airflow-provider-flyte/expires-at"
#: Labels that identify a task across tries (the try number is left out to find an earlier try's job).
TASK_LABELS = ("dag_id", "task_id", "run_id", "map_index")
#: Pod phases in which no container runs any more (nothing in the pod can write to the store).
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


class KubernetesJobError(FlyteEngineError):
    """The job failed, could not start, or could not be read; the message has Kubernetes' reason."""


class KubernetesPermissionError(KubernetesJobError):
    """The API server answered 403: the connection's identity lacks a verb (never retried).

    Kubernetes' own message names the verb, the resource and the namespace; ``status`` stays 403.
    """

    status = 403

    def __init__(self, exc: BaseException, doing: str = "") -> None:
        super().__init__(
            f"Kubernetes refused {doing or 'a request'}: {api_reason(exc)}. Fix: grant it to the connection's "
            "identity (the Roles in docs/kubernetes.md, 'RBAC, least privilege'); a 403 is not retried")


@dataclass(frozen=True)
class JobRef:
    """Where a task's job is, as primitives (what the trigger serializes)."""

    conn_id: str
    namespace: str
    name: str
    manifest_module: str
    spec_uri: str
    staging_conn_id: str | None = None
    selector: str = ""
    log_pod: str = ""
    log_selector: str = ""
    log_container: str = ""
    keep_failed_s: float = 0.0
    #: The object's ``uid`` ("": unknown); an object of this name with another uid is not this job.
    uid: str = ""
    queue_timeout: float = 0.0  # seconds it may wait for Kueue's admission (0: no limit; remote/queueing.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRef:
        fields = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in fields})

    @property
    def manifest(self) -> ModuleType:
        return importlib.import_module(self.manifest_module)

    def describe(self) -> str:
        return f"{self.manifest.KIND} {self.namespace}/{self.name}"


# -- the retry policy: one API call (sync), and a long wait's looks (the trigger) ----------------------
#: HTTP statuses a long wait rides out (with a dropped connection: no status at all).
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Consecutive failed looks a long wait tolerates before it gives up (any good look resets the count).
LOOK_RETRIES = 10
#: The longest pause between two failed looks.
LOOK_RETRY_MAX_S = 30.0


def retry(func: Any) -> Any:
    """Retry transient API errors (429 honouring Retry-After, 5xx, dropped connections) with backoff.

    The cncf provider's wait strategy and attempt count, but not its 409 retry: a 409 on create
    means the object exists, which is answered by reattaching, not by asking again.
    """
    import tenacity
    from airflow.providers.cncf.kubernetes import kubernetes_helper_functions as helpers

    def transient(exc: BaseException) -> bool:
        return api_status(exc) != 409 and helpers._should_retry_api(exc)

    retrying = tenacity.retry(stop=tenacity.stop_after_attempt(helpers.API_RETRIES),
                              wait=helpers.WaitRetryAfterOrExponential(), retry=tenacity.retry_if_exception(transient),
                              reraise=True, before_sleep=tenacity.before_sleep_log(log, logging.WARNING))(func)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return retrying(*args, **kwargs)
        except Exception as exc:
            if api_status(exc) == 403 and not isinstance(exc, KubernetesPermissionError):
                raise KubernetesPermissionError(exc) from exc  # RBAC: at once, naming what is missing
            raise

    return call


def api_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return int(status) if isinstance(status, int) else None


def transient_look_error(exc: BaseException, failed_looks: int) -> bool:
    """Whether a long wait should look again after ``exc`` (``failed_looks`` in a row so far, this one excepted)."""
    status = api_status(exc)
    return (status in TRANSIENT_STATUSES or status is None) and failed_looks < LOOK_RETRIES


def look_retry_delay(failed_looks: int, poll_interval: float) -> float:
    """Seconds before the next look after ``failed_looks`` failed looks in a row: doubling, at most 30 s."""
    return min(LOOK_RETRY_MAX_S, poll_interval * 2 ** failed_looks)


def api_reason(exc: BaseException) -> str:
    """An API error as ``HTTP <status>: <Kubernetes' message>``."""
    status = api_status(exc)
    body = getattr(exc, "body", None)
    message = ""
    if body:
        try:
            import json

            message = json.loads(body).get("message", "")
        except Exception:
            message = str(body)[:300]
    return f"HTTP {status}: {message or getattr(exc, 'reason', '') or exc}" if status else str(exc)


class KubernetesJobs:
    """Sync access to one connection's jobs of one kind (the manifest module names group/version/plural)."""

    def __init__(self, conn_id: str, manifest_module: str, namespace: str | None = None) -> None:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        self.conn_id = conn_id
        self.hook = KubernetesHook(conn_id=conn_id)
        self.manifest_module = manifest_module
        self.manifest = importlib.import_module(manifest_module)
        self.namespace = namespace or self.hook.get_namespace() or "default"

    # -- objects --------------------------------------------------------------------------------
    def _custom(self) -> Any:
        return self.hook.custom_object_client

    def get(self, name: str) -> dict[str, Any] | None:
        """The object, or ``None`` when it does not exist."""
        try:
            return retry(self._custom().get_namespaced_custom_object)(
                self.manifest.GROUP, self.manifest.VERSION, self.namespace, self.manifest.PLURAL, name)
        except Exception as exc:
            if api_status(exc) == 404:
                return None
            raise

    def find(self, selector: str) -> list[dict[str, Any]]:
        found = retry(self._custom().list_namespaced_custom_object)(
            self.manifest.GROUP, self.manifest.VERSION, self.namespace, self.manifest.PLURAL,
            label_selector=selector)
        return list(found.get("items", []))

    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the object; a 409 (it exists: a retried create, or another worker) reattaches to it.

        Returns ``(object, created)``. Transient errors are retried; a create that reached the
        server before its answer was lost comes back as 409 on the retry, so it never makes two.
        """
        name = body["metadata"]["name"]

        def attempt() -> dict[str, Any]:
            return self._custom().create_namespaced_custom_object(  # type: ignore[no-any-return]
                self.manifest.GROUP, self.manifest.VERSION, self.namespace, self.manifest.PLURAL, body)

        try:
            return retry(attempt)(), True
        except KubernetesPermissionError:
            raise
        except Exception as exc:
            if api_status(exc) != 409:
                raise KubernetesJobError(
                    f"Cannot create {self.manifest.KIND} {self.namespace}/{name} through connection "
                    f"{self.conn_id!r}: {api_reason(exc)}") from exc
        existing = self.get(name)
        if existing is None:
            raise KubernetesJobError(f"{self.manifest.KIND} {self.namespace}/{name} exists (409) but cannot be read")
        log.info("%s %s/%s exists already: reattaching to it", self.manifest.KIND, self.namespace, name)
        return existing, False

    # -- the job's Secret (the task's secret values; owned by the job, so deleted with it) ----------
    def connection_extra(self, key: str) -> str | None:
        """A field of the kubernetes connection's extras (``service_account``), if set."""
        return connection_extra(self.hook, key)

    def create_secret(self, body: dict[str, Any]) -> str:
        """Create the Secret; one that exists (a retried create, an earlier try) is replaced with these values."""
        core = self.hook.core_v1_client
        name = str(body["metadata"]["name"])
        try:
            retry(core.create_namespaced_secret)(self.namespace, body)
        except KubernetesPermissionError:
            raise
        except Exception as exc:
            if api_status(exc) != 409:
                raise KubernetesJobError(f"Cannot create Secret {self.namespace}/{name} through connection "
                                         f"{self.conn_id!r}: {api_reason(exc)}") from exc
            retry(core.replace_namespaced_secret)(name, self.namespace, body)
        return name

    def own_secret(self, name: str, owner: Mapping[str, Any]) -> None:
        """Make the job the Secret's owner: Kubernetes' garbage collector deletes it with the job.

        A refusal deletes the job and the Secret and raises: a Secret nothing owns would outlive the job.
        """
        meta = owner["metadata"]
        ref = {"apiVersion": owner.get("apiVersion") or f"{self.manifest.GROUP}/{self.manifest.VERSION}",
               "kind": self.manifest.KIND, "name": meta["name"], "uid": meta["uid"], "blockOwnerDeletion": True}
        try:
            retry(self.hook.core_v1_client.patch_namespaced_secret)(
                name, self.namespace, {"metadata": {"ownerReferences": [ref]}})
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.delete(meta["name"])
            self.delete_secret(name)
            # where owner references are enforced the server names neither verb: say which ones it checks
            raise KubernetesJobError(
                f"Cannot make {self.manifest.KIND} {self.namespace}/{meta['name']} the owner of Secret {name} "
                f"through connection {self.conn_id!r} (it needs patch and delete on secrets and update on "
                f"{self.manifest.PLURAL}/finalizers in API group {self.manifest.GROUP} in the namespace "
                f"{self.namespace!r}): {exc}. The job and the Secret were deleted") from exc

    def delete_secret(self, name: str) -> None:
        try:
            retry(self.hook.core_v1_client.delete_namespaced_secret)(name, self.namespace)
        except Exception as exc:
            if api_status(exc) != 404:
                log.error("Could not delete Secret %s/%s: %s", self.namespace, name, exc)

    def delete(self, name: str, uid: str | None = None) -> bool:
        """Delete the object and what it owns (foreground); ``False`` if it was gone already (404) or, with
        ``uid`` (a precondition), if the name now holds another object (409: that one is left alone)."""
        pre = {"body": {"preconditions": {"uid": uid}}} if uid else {}
        try:
            retry(self._custom().delete_namespaced_custom_object)(
                self.manifest.GROUP, self.manifest.VERSION, self.namespace, self.manifest.PLURAL, name,
                propagation_policy="Foreground", **pre)
        except Exception as exc:
            if api_status(exc) == 404 or (uid and api_status(exc) == 409):
                return False
            raise
        return True

    def annotate(self, name: str, annotations: Mapping[str, str], uid: str | None = None) -> None:
        meta = {"annotations": dict(annotations), **({"uid": uid} if uid else {})}  # a uid is a precondition
        retry(self._custom().patch_namespaced_custom_object)(
            self.manifest.GROUP, self.manifest.VERSION, self.namespace, self.manifest.PLURAL, name, {"metadata": meta})

    # -- pods, logs -----------------------------------------------------------------------------
    def pods(self, selector: str) -> list[Any]:
        return list(retry(self.hook.core_v1_client.list_namespaced_pod)(
            self.namespace, label_selector=selector).items)

    def wait_pods_stopped(self, selector: str, timeout: float, interval: float = 0.25) -> list[str]:
        """Wait up to ``timeout`` s until no pod of ``selector`` runs; the names of those that still do."""
        deadline = time.monotonic() + timeout
        while True:
            running = running_pods(self.pods(selector)) if selector else []
            if not running or time.monotonic() >= deadline:
                return running
            time.sleep(interval)

    def log_pod(self, ref: JobRef) -> str | None:
        """The pod whose log is the task's (driver, submitter, job runner, rank 0), once it exists."""
        if ref.log_pod:
            return ref.log_pod
        if ref.log_selector:
            pods = sorted(self.pods(ref.log_selector), key=lambda p: p.metadata.creation_timestamp or 0)
            if pods:
                return str(pods[-1].metadata.name)
        return None

    def log_tail(self, pod: str, container: str | None, lines: int = 200) -> str:
        try:
            # the raw body: kubernetes client 36 deserializes a log to the str of its bytes ("b'...'")
            response = retry(self.hook.core_v1_client.read_namespaced_pod_log)(
                pod, self.namespace, container=container or None, tail_lines=lines, _preload_content=False)
            try:
                data = response.data
            finally:
                response.release_conn()
            return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        except Exception as exc:
            if isinstance(exc, KubernetesPermissionError):
                log.error("No log from pod %s: %s", pod, exc)
            return f"(no log from pod {pod}: {exc if isinstance(exc, KubernetesJobError) else api_reason(exc)})"

    def stream_log(self, pod: str, container: str | None) -> Iterator[str]:
        """The pod's log as it is written (ends when the container ends)."""
        response = self.hook.core_v1_client.read_namespaced_pod_log(
            pod, self.namespace, container=container or None, follow=True, _preload_content=False)
        try:
            for line in response.stream():
                yield line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
        finally:
            response.release_conn()

    # -- sweeping kept failed objects -------------------------------------------------------------
    def sweep_expired(self, now: float | None = None) -> list[str]:
        """Delete this provider's kept failed objects whose expiry has passed; return their names."""
        from airflow_provider_flyte.manifests.base import MANAGED_BY

        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        current = time.time() if now is None else now
        removed = []
        for obj in self.find(selector):
            expires = (obj.get("metadata", {}).get("annotations") or {}).get(EXPIRES_ANNOTATION)
            if expires and _parse_time(expires) <= current and self.delete(obj["metadata"]["name"]):
                removed.append(obj["metadata"]["name"])
        if removed:
            log.info("Deleted %d kept failed %s object(s) past their expiry: %s", len(removed),
                     self.manifest.KIND, removed)
        return removed


def running_pods(pods: list[Any]) -> list[str]:
    """Names of the pods whose containers may still run (a deleted pod stays listed until they stopped)."""
    return [str(p.metadata.name) for p in pods if getattr(p.status, "phase", None) not in FINISHED_PHASES]


def selector_of(labels: Mapping[str, str], keys: tuple[str, ...] | None = None) -> str:
    items = [(k, v) for k, v in sorted(labels.items()) if keys is None or k in keys or k.startswith("app.kubernetes")]
    return ",".join(f"{k}={v}" for k, v in items)


def expiry_stamp(seconds: float, now: float | None = None) -> str:
    moment = (time.time() if now is None else now) + seconds
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return float("inf")


__all__ = [
    "EXPIRES_ANNOTATION",
    "SPEC_ANNOTATION",
    "STAGING_CONN_ANNOTATION",
    "TASK_LABELS",
    "JobRef",
    "KubernetesJobError",
    "KubernetesJobs",
    "KubernetesPermissionError",
    "api_reason",
    "api_status",
    "expiry_stamp",
    "look_retry_delay",
    "retry",
    "running_pods",
    "selector_of",
    "transient_look_error",
]
