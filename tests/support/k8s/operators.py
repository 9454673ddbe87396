"""The controllers: spark-operator, KubeRay, dask-kubernetes, the training operator, and the two
built-in controllers they rely on (Deployment, Job). Each follows /work/shared/reference/k8s-operators.md
(section numbers below); docs/k8s-simulator.md lists what is approximated.

A controller's ``sync()`` is called by the simulator's loop (one thread); it reads the store, creates
and deletes objects through it (never through HTTP, so the request log holds only the client's
requests) and writes ``/status``. Everything a pod runs comes from the object: the operators add
only what the real ones add (env, generated commands, labels, owner references).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import shlex
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.support.k8s.kubelet import quantity
from tests.support.k8s.store import ApiError, Resource, now, rand_suffix

if TYPE_CHECKING:
    from tests.support.k8s.simulator import OperatorSimulator


def owner_ref(obj: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def _parse_time(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


def _env_list(container: dict[str, Any]) -> list[dict[str, Any]]:
    return container.setdefault("env", [])


def _add_env_if_missing(container: dict[str, Any], name: str, value: str) -> None:
    env = _env_list(container)
    if not any(e.get("name") == name for e in env):
        env.append({"name": name, "value": value})


class Controller:
    kind = ""
    group = ""
    plural = ""

    def __init__(self, sim: OperatorSimulator) -> None:
        self.sim = sim
        self.store = sim.store
        self.res = self.store.resource(self.group, self.plural)
        self.pods = self.store.resource("", "pods")
        self.services = self.store.resource("", "services")

    def sync(self) -> None:
        for obj in self.store.list(self.res)[0]:
            try:
                self.reconcile(obj)
            except ApiError as err:
                if err.code not in (404, 409):
                    raise

    def reconcile(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    # helpers -------------------------------------------------------------------------------
    def set_status(self, obj: dict[str, Any], fn: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        def edit(o: dict[str, Any]) -> None:
            fn(o.setdefault("status", {}))
        out = self.store.mutate(self.res, obj["metadata"]["namespace"], obj["metadata"]["name"], edit,
                                subresource="status")
        if out is not None:
            obj["status"] = out.get("status", {})
        return out

    def ensure(self, res: Resource, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create ``body`` unless an object of that name exists (then return that one)."""
        existing = self.store.try_get(res, ns, body["metadata"]["name"]) if body["metadata"].get("name") else None
        if existing is not None:
            return existing
        return self.store.create(res, ns, body, field_validation="Ignore")

    def event(self, obj: dict[str, Any], reason: str, message: str, kind: str = "Normal") -> None:
        self.sim.record_event(obj, reason, message, kind, component=self.component)

    component = "controller"

    def pod(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.store.try_get(self.pods, ns, name)

    def owned_pods(self, owner: dict[str, Any], selector: str | None = None) -> list[dict[str, Any]]:
        pods, _ = self.store.list(self.pods, owner["metadata"]["namespace"], label_selector=selector)
        return [p for p in pods if owned_by(p, owner)]


def container_terminated(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return (status.get("state") or {}).get("terminated")
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


# =============================================================================== Deployment / Job

class DeploymentController(Controller):
    """apps/v1 Deployment, reduced: the Deployment owns its pods directly (no ReplicaSet),
    ``replicas`` pods named ``<deployment>-<10 hex>-<5 random>``, recreated when one goes."""

    kind, group, plural = "Deployment", "apps", "deployments"
    component = "deployment-controller"

    def reconcile(self, obj: dict[str, Any]) -> None:
        if obj["metadata"].get("deletionTimestamp"):
            return
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        tpl_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        pods = [p for p in self.owned_pods(obj) if not p["metadata"].get("deletionTimestamp")]
        want = int(spec.get("replicas", 1))
        for _ in range(want - len(pods)):
            body = copy.deepcopy(template)
            meta = body.setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), "pod-template-hash": tpl_hash}
            meta["generateName"] = f"{name}-{tpl_hash}-"
            meta.pop("name", None)
            meta["ownerReferences"] = [owner_ref(obj)]
            body["apiVersion"], body["kind"] = "v1", "Pod"
            body.setdefault("spec", {})["restartPolicy"] = "Always"
            pod = self.store.create(self.pods, ns, body)
            self.event(obj, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        pods = self.owned_pods(obj)
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                  "updatedReplicas": len(pods), "observedGeneration": obj["metadata"].get("generation", 1)}
        if (obj.get("status") or {}) != status:
            self.set_status(obj, lambda s: (s.clear(), s.update(status)))


class JobController(Controller):
    """batch/v1 Job with ``completions: 1``: one pod at a time, a new one after a failure until
    ``backoffLimit`` (default 6) failures, then ``Failed``/``BackoffLimitExceeded``; success gives
    ``SuccessCriteriaMet`` + ``Complete``."""

    kind, group, plural = "Job", "batch", "jobs"
    component = "job-controller"

    def reconcile(self, obj: dict[str, Any]) -> None:
        if obj["metadata"].get("deletionTimestamp"):
            return
        status = obj.get("status") or {}
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            return
        ns, name, uid = obj["metadata"]["namespace"], obj["metadata"]["name"], obj["metadata"]["uid"]
        spec = obj.get("spec") or {}
        pods = self.owned_pods(obj)
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running", None)]
        limit = int(spec.get("backoffLimit", 6))
        stamp = now()
        conditions: list[dict[str, Any]] = []
        if succeeded >= int(spec.get("completions", 1)):
            conditions = [{"type": t, "status": "True", "reason": "CompletionsReached", "message": "Reached expected "
                           "number of succeeded pods", "lastProbeTime": stamp, "lastTransitionTime": stamp}
                          for t in ("SuccessCriteriaMet", "Complete")]
            self.event(obj, "Completed", "Job completed")
        elif failed > limit:
            conditions = [{"type": t, "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit", "lastProbeTime": stamp,
                           "lastTransitionTime": stamp} for t in ("FailureTarget", "Failed")]
            self.event(obj, "BackoffLimitExceeded", "Job has reached the specified backoff limit", "Warning")
        elif not active:
            last_fail = max((p["status"].get("containerStatuses", [{}])[0].get("state", {}).get("terminated", {})
                             .get("finishedAt", "") for p in pods if p.get("status", {}).get("phase") == "Failed"),
                            default="")
            delay = self.sim.backoff_base * 2 ** max(0, failed - 1) if failed else 0
            if not last_fail or time.time() >= _parse_time(last_fail) + delay:
                body = copy.deepcopy(spec.get("template") or {})
                meta = body.setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), "batch.kubernetes.io/controller-uid": uid,
                                  "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}
                meta["generateName"], meta["ownerReferences"] = f"{name}-", [owner_ref(obj)]
                meta.pop("name", None)
                body["apiVersion"], body["kind"] = "v1", "Pod"
                pod = self.store.create(self.pods, ns, body)
                self.event(obj, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
                active = [pod]
        new = {"active": len(active) if not conditions else 0, "succeeded": succeeded, "failed": failed,
               "ready": sum(1 for p in active if pod_ready(p)), "startTime": status.get("startTime") or stamp}
        if conditions:
            new["conditions"] = conditions
            if succeeded:
                new["completionTime"] = stamp
            for p in active:  # a failed Job stops what still runs
                self.store.delete(self.pods, ns, p["metadata"]["name"])
        if any(status.get(k) != v for k, v in new.items()):
            self.set_status(obj, lambda s: s.update(new))


# =============================================================================== Spark (§1)

DRIVER = "spark-kubernetes-driver"
SPARK_TERMINAL = ("COMPLETED", "FAILED")


class SparkOperator(Controller):
    """spark-operator: SparkApplication → driver pod (+ UI Service), state from the driver (§1.3).

    The operator execs spark-submit, which creates the driver pod; here the driver pod is created
    directly with the labels, owner reference, env and args spark-submit and the webhook give it
    (§1.1, §1.2, §1.5). The Spark image's entrypoint (``driver`` args → ``spark-submit
    --deploy-mode client``) is the kubelet hook :meth:`entrypoint`; the master is ``local[N]``
    (N = executor instances × executor cores): executors are not separate pods here.
    """

    kind, group, plural = "SparkApplication", "sparkoperator.k8s.io", "sparkapplications"
    component = "spark-operator"

    def __init__(self, sim: OperatorSimulator) -> None:
        super().__init__(sim)
        sim.kubelet.entrypoints.append(self.entrypoint)

    @staticmethod
    def entrypoint(pod: dict[str, Any], container: dict[str, Any]) -> list[str] | None:
        """Spark's image ``entrypoint.sh``: ``driver <args>`` → ``spark-submit --conf
        spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS --deploy-mode client <args>``."""
        labels = pod["metadata"].get("labels") or {}
        args = container.get("args") or []
        if labels.get("spark-role") == "driver" and args[:1] == ["driver"]:
            return ["spark-submit", "--conf", "spark.driver.bindAddress=$(SPARK_DRIVER_BIND_ADDRESS)",
                    "--deploy-mode", "client", *args[1:]]
        return None

    def reconcile(self, app: dict[str, Any]) -> None:
        meta, spec = app["metadata"], app.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        ns, name = meta["namespace"], meta["name"]
        status = app.get("status") or {}
        state = (status.get("applicationState") or {}).get("state", "")
        driver_name = (spec.get("driver") or {}).get("podName") or (spec.get("sparkConf") or {}).get(
            "spark.kubernetes.driver.pod.name") or f"{name}-driver"
        if spec.get("suspend") and state not in (*SPARK_TERMINAL, "SUSPENDING", "SUSPENDED"):
            self._to(app, "SUSPENDING")  # Reconcile's transitionToSuspending, whatever the state (a New one too)
        elif state == "SUSPENDING":  # deleteSparkResources, then Suspended
            self._delete_resources(app, driver_name)
            self._to(app, "SUSPENDED")
            self.event(app, "SparkApplicationSuspended", f"SparkApplication {name} suspended")
        elif state == "SUSPENDED":
            if not spec.get("suspend"):
                self._to(app, "RESUMING")
        elif state == "RESUMING":  # the old driver gone first (validateSparkResourceDeletion), then a new submission
            if not self._delete_resources(app, driver_name):
                self._submit(app, driver_name)
        elif state == "":
            self._submit(app, driver_name)
        elif state in ("SUBMITTED", "RUNNING"):
            pod = self.pod(ns, status.get("driverInfo", {}).get("podName", driver_name))
            if pod is None or not owned_by(pod, app):
                self._to(app, "FAILING", "driver pod not found")
                return
            phase = (pod.get("status") or {}).get("phase")
            term = container_terminated(pod, DRIVER)
            if phase == "Succeeded" or (term and term.get("exitCode") == 0):
                self._to(app, "SUCCEEDING")
                self.event(app, "SparkDriverCompleted", f"Driver {driver_name} completed")
            elif phase == "Failed" or term:
                code = (term or {}).get("exitCode", 1)
                reason = (term or {}).get("reason", "Error")
                self._to(app, "FAILING", f"driver container failed with ExitCode: {code}, Reason: {reason}")
                self.event(app, "SparkDriverFailed", f"Driver {driver_name} failed", "Warning")
            elif phase == "Running" and state == "SUBMITTED":
                self._to(app, "RUNNING", extra={"executionAttempts": 1})
                self.event(app, "SparkDriverRunning", f"Driver {driver_name} is running")
        elif state == "SUCCEEDING":
            self._to(app, "COMPLETED", extra={"terminationTime": now()})
            self.event(app, "SparkApplicationCompleted", f"SparkApplication {name} completed")
        elif state in ("FAILING", "SUBMISSION_FAILED"):
            message = (status.get("applicationState") or {}).get("errorMessage", "")
            self._to(app, "FAILED", message, extra={"terminationTime": now()})
            self.event(app, "SparkApplicationFailed", f"SparkApplication {name} failed: {message}", "Warning")
        elif state in SPARK_TERMINAL and spec.get("timeToLiveSeconds") is not None:
            ended = status.get("terminationTime")
            if ended and time.time() >= _parse_time(ended) + float(spec["timeToLiveSeconds"]):
                self.store.delete(self.res, ns, name)

    def _delete_resources(self, app: dict[str, Any], driver_name: str) -> bool:
        """Delete the driver pod and the UI Service (``deleteSparkResources``); whether one still existed."""
        ns, existed = app["metadata"]["namespace"], False
        for res, name in ((self.pods, driver_name), (self.services, f"{app['metadata']['name']}-ui-svc")):
            if self.store.try_get(res, ns, name) is not None:
                existed = True
                with contextlib.suppress(ApiError):
                    self.store.delete(res, ns, name)
        return existed

    def _to(self, app: dict[str, Any], state: str, message: str | None = None,
            extra: dict[str, Any] | None = None) -> None:
        def edit(s: dict[str, Any]) -> None:
            s["applicationState"] = {"state": state, **({"errorMessage": message} if message else {})}
            s.setdefault("driverInfo", {})  # required by the CRD's status schema (a suspended New app has none yet)
            s.update(extra or {})
        self.set_status(app, edit)

    def _submit(self, app: dict[str, Any], driver_name: str) -> None:
        meta = app["metadata"]
        ns, name = meta["namespace"], meta["name"]
        submission = str(uuid.uuid4())
        app_id = f"spark-{uuid.uuid4().hex}"
        stamp = now()
        existing = self.pod(ns, driver_name)
        if existing is not None:
            self._to(app, "SUBMISSION_FAILED", "driver pod already exist",
                     extra={"submissionID": submission, "lastSubmissionAttemptTime": stamp, "submissionAttempts": 1,
                            "driverInfo": {}})
            self.event(app, "SparkApplicationSubmissionFailed", f"failed to submit SparkApplication {name}: driver "
                       "pod already exist", "Warning")
            return
        props = self._properties(app, submission, app_id)
        pod = self._driver_pod(app, driver_name, submission, app_id, props)
        self.store.create(self.pods, ns, pod)
        ui = self.ensure(self.services, ns, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-ui-svc", "labels": {"sparkoperator.k8s.io/app-name": name},
                         "ownerReferences": [owner_ref(app)]},
            "spec": {"selector": {"spark-app-selector": app_id, "spark-role": "driver"},
                     "ports": [{"name": "spark-driver-ui-port", "port": 4040, "targetPort": 4040}],
                     "type": "ClusterIP"}})
        self._to(app, "SUBMITTED", extra={
            "submissionID": submission, "sparkApplicationId": app_id, "lastSubmissionAttemptTime": stamp,
            "submissionAttempts": 1, "executionAttempts": 0,
            "driverInfo": {"podName": driver_name, "webUIServiceName": ui["metadata"]["name"], "webUIPort": 4040,
                           "webUIAddress": f"{ui['spec']['clusterIP']}:4040"}})
        self.event(app, "SparkApplicationSubmitted", f"SparkApplication {name} was submitted successfully")

    def _properties(self, app: dict[str, Any], submission: str, app_id: str) -> Path:
        """The properties file spark-submit would hand the driver (``/tmp/spark/<submissionID>/``)."""
        spec = app.get("spec") or {}
        driver, executor = spec.get("driver") or {}, spec.get("executor") or {}
        conf = {str(k): str(v) for k, v in (spec.get("sparkConf") or {}).items()}
        instances = int(executor.get("instances") or conf.get("spark.executor.instances") or 1)
        cores = int(executor.get("cores") or conf.get("spark.executor.cores") or 1)
        props: dict[str, str] = {
            **conf,
            "spark.master": f"local[{max(1, instances * cores)}]",
            "spark.app.name": app["metadata"]["name"],
            "spark.app.id": app_id,
            "spark.submit.deployMode": "client",
            "spark.kubernetes.namespace": app["metadata"]["namespace"],
            "spark.kubernetes.submission.waitAppCompletion": "false",
            "spark.kubernetes.driver.pod.name": (driver.get("podName") or f"{app['metadata']['name']}-driver"),
        }
        for k, v in (spec.get("hadoopConf") or {}).items():
            props[f"spark.hadoop.{k}"] = str(v)
        if spec.get("image"):
            props["spark.kubernetes.container.image"] = spec["image"]
        if driver.get("cores"):
            props["spark.driver.cores"] = str(driver["cores"])
        if driver.get("memory"):
            props["spark.driver.memory"] = str(driver["memory"])
        deps = spec.get("deps") or {}
        for key, prop in (("pyFiles", "spark.submit.pyFiles"), ("jars", "spark.jars"), ("files", "spark.files"),
                          ("packages", "spark.jars.packages")):
            if deps.get(key):
                props[prop] = ",".join(deps[key])
        folder = self.sim.directory / "spark" / submission
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "spark.properties"
        path.write_text("".join(f"{k}={_escape_prop(v)}\n" for k, v in sorted(props.items())))
        return path

    def _driver_pod(self, app: dict[str, Any], pod_name: str, submission: str, app_id: str,
                    props: Path) -> dict[str, Any]:
        meta, spec = app["metadata"], app.get("spec") or {}
        driver = spec.get("driver") or {}
        template = copy.deepcopy(driver.get("template") or {})
        pod_spec = template.get("spec") or {}
        containers = pod_spec.setdefault("containers", [])
        conf = spec.get("sparkConf") or {}
        cname = conf.get("spark.kubernetes.driver.podTemplateContainerName", DRIVER)
        container = next((c for c in containers if c.get("name") == cname), None)
        if container is None:
            container = {}
            containers.insert(0, container)
        container["name"] = DRIVER
        container["image"] = driver.get("image") or spec.get("image") or container.get("image")
        if spec.get("imagePullPolicy"):
            container["imagePullPolicy"] = spec["imagePullPolicy"]
        main_file = spec.get("mainApplicationFile", "")
        main_class = spec.get("mainClass") or ("org.apache.spark.deploy.PythonRunner"
                                               if str(main_file).endswith(".py") else "")
        args = ["driver", "--properties-file", str(props)]
        if main_class:
            args += ["--class", main_class]
        container["args"] = [*args, _local_path(main_file), *[str(a) for a in spec.get("arguments") or []]]
        container.pop("command", None)
        env = _env_list(container)
        env.extend(copy.deepcopy(driver.get("env") or []))  # the webhook (§1.2 notes)
        env.extend({"name": k, "value": str(v)} for k, v in sorted((driver.get("envVars") or {}).items()))
        env.extend({"name": k[len("spark.kubernetes.driverEnv."):], "value": str(v)} for k, v in sorted(conf.items())
                   if k.startswith("spark.kubernetes.driverEnv."))
        for prop, var in (("spark.pyspark.python", "PYSPARK_PYTHON"),
                          ("spark.pyspark.driver.python", "PYSPARK_DRIVER_PYTHON")):
            if conf.get(prop):
                env.append({"name": var, "value": conf[prop]})
        env += [{"name": "SPARK_USER", "value": "root"}, {"name": "SPARK_APPLICATION_ID", "value": app_id},
                {"name": "SPARK_DRIVER_BIND_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                                 "fieldPath": "status.podIP"}}},
                {"name": "SPARK_LOCAL_DIRS", "value": "/var/data/spark-" + submission[:8]},
                {"name": "SPARK_CONF_DIR", "value": str(props.parent)}]
        container.setdefault("envFrom", []).extend(copy.deepcopy(driver.get("envFrom") or []))
        if not container["envFrom"]:
            del container["envFrom"]
        resources = container.setdefault("resources", {})
        cores = driver.get("coreRequest") or driver.get("cores") or 1
        memory = _jvm_bytes(str(driver.get("memory") or "1g"))
        overhead = max(quantity("384Mi"), memory * quantity("0.4"))
        resources.setdefault("requests", {}).update({"cpu": str(cores), "memory": f"{int((memory + overhead) / 2**20)}Mi"})
        limits = resources.setdefault("limits", {})
        limits["memory"] = resources["requests"]["memory"]
        if driver.get("coreLimit"):
            limits["cpu"] = str(driver["coreLimit"])
        container.setdefault("ports", [{"name": "driver-rpc-port", "containerPort": 7078, "protocol": "TCP"},
                                       {"name": "blockmanager", "containerPort": 7079, "protocol": "TCP"},
                                       {"name": "spark-ui", "containerPort": 4040, "protocol": "TCP"}])
        pod_spec["restartPolicy"] = "Never"
        pod_spec["hostname"] = pod_name
        if driver.get("serviceAccount"):
            pod_spec["serviceAccountName"] = driver["serviceAccount"]
        labels = {**(template.get("metadata") or {}).get("labels", {}),
                  **{k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith("kueue.x-k8s.io/")},
                  **(driver.get("labels") or {}),
                  "sparkoperator.k8s.io/app-name": meta["name"],
                  "sparkoperator.k8s.io/launched-by-spark-operator": "true",
                  "sparkoperator.k8s.io/submission-id": submission,
                  "spark-app-name": meta["name"], "spark-app-selector": app_id, "spark-role": "driver",
                  "spark-version": str(spec.get("sparkVersion", ""))}
        annotations = {**(template.get("metadata") or {}).get("annotations", {}), **(driver.get("annotations") or {})}
        pod_meta: dict[str, Any] = {"name": pod_name, "labels": labels, "ownerReferences": [owner_ref(app)]}
        if annotations:
            pod_meta["annotations"] = annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


def _jvm_bytes(value: str) -> Decimal:
    """A JVM memory string (``512m``, ``1g``, ``2048k``, bytes) as bytes, the way Spark reads it."""
    text = value.strip().lower().removesuffix("b")
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    if text and text[-1] in units:
        return Decimal(text[:-1]) * units[text[-1]]
    return Decimal(text) if text else Decimal(2**30)


def _escape_prop(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _local_path(uri: str) -> str:
    """``local:///app/main.py`` (a file in the image) and ``file:///...``: the path on this machine."""
    for scheme in ("local://", "file://"):
        if str(uri).startswith(scheme):
            return str(uri)[len(scheme):]
    return str(uri)


# =============================================================================== Ray (§2)

RAY_DEFAULT_PORTS = {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}
RAY_TERMINAL_JOB = ("STOPPED", "SUCCEEDED", "FAILED")
FINALIZER = "ray.io/rayjob-finalizer"


def _ray_flags(params: dict[str, Any]) -> str:
    """``rayStartParams`` as ray start flags (§2.2: sorted; "true" bare; "false" dropped but for three)."""
    out = []
    for key in sorted(params):
        value = str(params[key])
        if key in ("log-color", "include-dashboard", "include-log-monitor"):
            out.append(f"--{key}={value}")
        elif value.lower() == "true":
            out.append(f"--{key}")
        elif value.lower() == "false":
            continue
        else:
            out.append(f"--{key}={value}")
    return " ".join(out)


def _ports(container: dict[str, Any]) -> dict[str, int]:
    ports = {p.get("name"): int(p["containerPort"]) for p in container.get("ports") or [] if p.get("name")}
    return ports if container.get("ports") else dict(RAY_DEFAULT_PORTS)


class RayClusterController(Controller):
    """KubeRay's RayCluster controller (§2.2): head pod (generateName ``<cluster>-head-``), head
    Service ``<cluster>-head-svc``, worker pods per group; ``status.state`` ``ready`` when every pod
    is Running and Ready."""

    kind, group, plural = "RayCluster", "ray.io", "rayclusters"
    component = "raycluster-controller"

    def reconcile(self, cluster: dict[str, Any]) -> None:
        if cluster["metadata"].get("deletionTimestamp"):
            return
        ns, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        spec = cluster.get("spec") or {}
        head_spec = spec.get("headGroupSpec") or {}
        head_container = ((head_spec.get("template") or {}).get("spec") or {}).get("containers", [{}])[0]
        ports = _ports(head_container)
        fqdn = f"{name}-head-svc.{ns}.svc.cluster.local"
        heads = self.owned_pods(cluster, f"ray.io/cluster={name},ray.io/node-type=head")
        if not heads:
            heads = [self.store.create(self.pods, ns, self._pod(cluster, head_spec, "headgroup", True, fqdn, ports))]
            self.event(cluster, "CreatedHeadPod", f"Created head Pod {ns}/{heads[0]['metadata']['name']}")
        svc = self.ensure(self.services, ns, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-head-svc", "ownerReferences": [owner_ref(cluster)],
                         "labels": {"ray.io/cluster": name, "ray.io/node-type": "head",
                                    "app.kubernetes.io/created-by": "kuberay-operator"}},
            "spec": {"selector": {"ray.io/cluster": name, "ray.io/node-type": "head"},
                     "ports": [{"name": k, "port": v, "targetPort": v} for k, v in sorted(ports.items())],
                     "type": "ClusterIP"}})
        desired = 0
        for group in spec.get("workerGroupSpecs") or []:
            gname = group.get("groupName", "workergroup")
            want = int(group.get("replicas", group.get("minReplicas", 0)) or 0)
            if group.get("suspend"):
                want = 0
            desired += want
            have = self.owned_pods(cluster, f"ray.io/cluster={name},ray.io/group={gname}")
            for _ in range(want - len(have)):
                pod = self.store.create(self.pods, ns, self._pod(cluster, group, gname, False, fqdn, ports))
                self.event(cluster, "CreatedWorkerPod", f"Created worker Pod {ns}/{pod['metadata']['name']}")
        pods = self.owned_pods(cluster)
        all_ready = bool(pods) and all(pod_ready(p) for p in pods)
        workers_ready = sum(1 for p in pods if pod_ready(p) and p["metadata"]["labels"].get("ray.io/node-type") == "worker")
        head = heads[0]
        status = {"state": "ready" if all_ready else "", "desiredWorkerReplicas": desired,
                  "readyWorkerReplicas": workers_ready, "availableWorkerReplicas": workers_ready,
                  "head": {"podIP": (head.get("status") or {}).get("podIP", ""), "podName": head["metadata"]["name"],
                           "serviceIP": svc["spec"].get("clusterIP", ""), "serviceName": svc["metadata"]["name"]},
                  "endpoints": {k: str(v) for k, v in ports.items()}}
        if not all_ready and (cluster.get("status") or {}).get("state") == "ready":
            status["state"] = "ready"  # KubeRay keeps "ready" once reached (it does not flap back)
        if {k: (cluster.get("status") or {}).get(k) for k in status} != status:
            self.set_status(cluster, lambda s: s.update(status))

    def _pod(self, cluster: dict[str, Any], group: dict[str, Any], gname: str, head: bool, fqdn: str,
             head_ports: dict[str, int]) -> dict[str, Any]:
        name, ns = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
        pod = copy.deepcopy(group.get("template") or {})
        meta = pod.setdefault("metadata", {})
        spec = pod.setdefault("spec", {})
        node_type = "head" if head else "worker"
        meta.pop("name", None)
        meta["generateName"] = f"{name}-head-" if head else f"{name}-{gname}-worker-"
        meta["labels"] = {**(meta.get("labels") or {}), "ray.io/cluster": name, "ray.io/node-type": node_type,
                          "ray.io/group": gname, "ray.io/is-ray-node": "yes",
                          "ray.io/identifier": f"{name}-{node_type}", "app.kubernetes.io/name": "kuberay",
                          "app.kubernetes.io/created-by": "kuberay-operator"}
        meta["ownerReferences"] = [owner_ref(cluster)]
        container = spec.setdefault("containers", [{}])[0]
        params = {str(k): str(v) for k, v in (group.get("rayStartParams") or {}).items()}
        params.setdefault("block", "true")
        params.setdefault("metrics-export-port", "8080")
        params.setdefault("dashboard-agent-listen-port", "52365")
        if head:
            params.setdefault("dashboard-host", "0.0.0.0")  # noqa: S104 - inside the pod network namespace
        else:
            params.setdefault("address", f"{fqdn}:{head_ports.get('gcs-server', 6379)}")
        resources = container.get("resources") or {}
        wanted = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
        if "num-cpus" not in params and wanted.get("cpu"):
            params["num-cpus"] = str(max(1, int(quantity(wanted["cpu"]))))
        if "memory" not in params and (resources.get("limits") or {}).get("memory"):
            params["memory"] = str(int(quantity(resources["limits"]["memory"])))
        if "num-gpus" not in params and wanted.get("nvidia.com/gpu"):
            params["num-gpus"] = str(wanted["nvidia.com/gpu"])
        start = f"ray start {'--head ' if head else ''}{_ray_flags(params)}".replace("  ", " ").strip()
        user = " ".join([*(container.get("command") or []), *(container.get("args") or [])])
        overwrite = (meta.get("annotations") or {}).get("ray.io/overwrite-container-cmd") == "true"
        if "ray start" not in user and not overwrite:
            ulimit = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; "
            container["command"] = ["/bin/bash", "-c", "--"]
            container["args"] = [f"{user} && {ulimit}{start}" if user else f"{ulimit}{start}"]
        if not container.get("ports") and head:
            container["ports"] = [{"name": k, "containerPort": v, "protocol": "TCP"}
                                  for k, v in sorted(RAY_DEFAULT_PORTS.items())]
        env = _env_list(container)
        gcs = head_ports.get("gcs-server", 6379)
        injected: list[dict[str, Any]] = [
            {"name": "RAY_ADDRESS", "value": f"127.0.0.1:{gcs}" if head else f"{fqdn}:{gcs}"},
            {"name": "RAY_PORT", "value": str(gcs)},
            {"name": "RAY_CLUSTER_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/cluster']"}}},
            {"name": "RAY_CLUSTER_NAMESPACE", "value": ns},
            {"name": "KUBERAY_GEN_RAY_START_CMD", "value": start},
            {"name": "RAY_CLOUD_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "RAY_NODE_TYPE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['ray.io/group']"}}},
            {"name": "RAY_USAGE_STATS_KUBERAY_IN_USE", "value": "1"},
            {"name": "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "value": "1"},
        ]
        if not head:
            injected += [{"name": "FQ_RAY_IP", "value": fqdn}, {"name": "RAY_IP", "value": f"{name}-head-svc"}]
        names = {e.get("name") for e in env}
        env.extend(e for e in injected if e["name"] not in names)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class RayJobOperator(Controller):
    """KubeRay's RayJob controller (§2.1, §2.3, §2.4): K8sJobMode (submitter batch Job) and HTTPMode."""

    kind, group, plural = "RayJob", "ray.io", "rayjobs"
    component = "rayjob-controller"

    def __init__(self, sim: OperatorSimulator) -> None:
        super().__init__(sim)
        self.clusters = self.store.resource("ray.io", "rayclusters")
        self.jobs = self.store.resource("batch", "jobs")
        self._polled: dict[str, float] = {}

    def reconcile(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        status = job.get("status") or {}
        phase = status.get("jobDeploymentStatus", "")
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []):
                if status.get("dashboardURL") and status.get("jobStatus") not in RAY_TERMINAL_JOB:
                    self.sim.prober.request("POST", f"http://{status['dashboardURL']}/api/jobs/{status.get('jobId')}/stop",
                                            timeout=3)
                self.store.mutate(self.res, ns, name, lambda o: o["metadata"].__setitem__(
                    "finalizers", [f for f in o["metadata"].get("finalizers", []) if f != FINALIZER]))
            return
        if phase == "":
            problem = self._validate(job)
            if problem:
                self.set_status(job, lambda s: s.update({"jobDeploymentStatus": "ValidationFailed",
                                                         "reason": "ValidationFailed", "message": problem}))
                self.event(job, "InvalidRayJobSpec", problem, "Warning")
                return
            self.store.mutate(self.res, ns, name, lambda o: o["metadata"].__setitem__(
                "finalizers", [*o["metadata"].get("finalizers", []), FINALIZER]))
            selector = spec.get("clusterSelector") or {}
            cluster = selector.get("ray.io/cluster") or f"{name}-{rand_suffix()}"
            job_id = spec.get("jobId") or f"{name}-{rand_suffix()}"
            self.set_status(job, lambda s: s.update({"jobId": job_id, "rayClusterName": cluster, "jobStatus": "",
                                                     "startTime": now(), "jobDeploymentStatus": "Initializing"}))
            return
        if phase in ("Initializing", "Running") and self._deadline_passed(job):
            return
        if phase == "Initializing":
            self._initializing(job)
        elif phase == "Running":
            self._running(job)
        elif phase in ("Complete", "Failed") and spec.get("shutdownAfterJobFinishes") and status.get("endTime") \
                and not spec.get("clusterSelector"):
            ttl = float(spec.get("ttlSecondsAfterFinished") or 0)
            if time.time() >= _parse_time(status["endTime"]) + ttl:
                cluster = self.store.try_get(self.clusters, ns, status.get("rayClusterName", ""))
                if cluster is not None and owned_by(cluster, job):
                    self.store.delete(self.clusters, ns, cluster["metadata"]["name"])
                    self.event(job, "DeletedRayCluster", f"Deleted RayCluster {ns}/{cluster['metadata']['name']}")

    def _deadline_passed(self, job: dict[str, Any]) -> bool:
        """KubeRay's ``checkActiveDeadlineAndUpdateStatusIfNeeded`` (§2.3): a running RayJob past
        ``activeDeadlineSeconds`` since ``status.startTime`` is ``Failed``/``DeadlineExceeded``; being terminal,
        its RayCluster is then deleted as for any finished job (``shutdownAfterJobFinishes``)."""
        spec, status = job.get("spec") or {}, job.get("status") or {}
        deadline, start = spec.get("activeDeadlineSeconds"), status.get("startTime")
        if deadline is None or not start or time.time() < _parse_time(start) + float(deadline):
            return False
        message = f"The RayJob has passed the activeDeadlineSeconds. StartTime: {start}. ActiveDeadlineSeconds: {deadline}"
        self.set_status(job, lambda s: s.update({"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded",
                                                 "message": message, "endTime": now(), "failed": 1}))
        self.event(job, "DeadlineExceeded", message, "Warning")
        return True

    def _validate(self, job: dict[str, Any]) -> str | None:
        spec, name = job.get("spec") or {}, job["metadata"]["name"]
        if len(name) > 47:
            return f"RayJob name should be no more than 47 characters, got {len(name)}"
        if not spec.get("rayClusterSpec") and not spec.get("clusterSelector"):
            return "one of RayClusterSpec or ClusterSelector must be set"
        if (spec.get("ttlSecondsAfterFinished") or 0) > 0 and not spec.get("shutdownAfterJobFinishes"):
            return "a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"
        if spec.get("suspend") and not spec.get("shutdownAfterJobFinishes"):
            return "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"
        if spec.get("runtimeEnvYAML"):
            try:
                yaml.safe_load(spec["runtimeEnvYAML"])
            except yaml.YAMLError as exc:
                return f"failed to unmarshal RuntimeEnvYAML: {exc}"
        mode = spec.get("submissionMode", "K8sJobMode")
        if mode == "SidecarMode":
            return "simulator: SidecarMode is not simulated"
        return None

    def _initializing(self, job: dict[str, Any]) -> None:
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        cluster_name = status["rayClusterName"]
        mode = spec.get("submissionMode", "K8sJobMode")
        if spec.get("clusterSelector"):
            cluster = self.store.try_get(self.clusters, ns, cluster_name)
            if cluster is None:
                return
        else:
            cluster = self.ensure(self.clusters, ns, {
                "apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"name": cluster_name, "ownerReferences": [owner_ref(job)],
                             "labels": {**(meta.get("labels") or {}), "ray.io/originated-from-cr-name": name,
                                        "ray.io/originated-from-crd": "RayJob", "ray.io/job-submission-mode": mode}},
                "spec": copy.deepcopy(spec.get("rayClusterSpec") or {})})
        if (cluster.get("status") or {}).get("state") != "ready":
            return
        head = ((cluster["spec"].get("headGroupSpec") or {}).get("template") or {}).get("spec", {}).get("containers", [{}])[0]
        ports = _ports(head)
        if "dashboard" not in ports:
            return  # FetchHeadServiceURL fails: the RayJob stays Initializing (§2.5)
        dash = f"{cluster_name}-head-svc.{ns}.svc.cluster.local:{ports['dashboard']}"
        if mode == "K8sJobMode":
            self.ensure(self.jobs, ns, self._submitter(job, head, dash))
        self.set_status(job, lambda s: s.update({"dashboardURL": dash, "jobDeploymentStatus": "Running"}))

    def _submitter(self, job: dict[str, Any], head: dict[str, Any], dash: str) -> dict[str, Any]:
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        job_id = status["jobId"]
        template = copy.deepcopy(spec.get("submitterPodTemplate") or {
            "spec": {"containers": [{"name": "ray-job-submitter", "image": head.get("image"),
                                     "resources": {"requests": {"cpu": "500m", "memory": "200Mi"},
                                                   "limits": {"cpu": "1", "memory": "1Gi"}}}]}})
        tmeta = template.setdefault("metadata", {})
        labels = {"ray.io/originated-from-cr-name": meta["name"], "ray.io/originated-from-crd": "RayJob",
                  "app.kubernetes.io/created-by": "kuberay-operator"}
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        pspec = template.setdefault("spec", {})
        pspec["restartPolicy"] = "Never"
        container = pspec.setdefault("containers", [{}])[0]
        if not container.get("command"):
            container["command"] = ["/bin/bash", "-ce", "--"]
            container["args"] = [self._submit_script(job, dash)]
        env = _env_list(container)
        env += [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "RAY_DASHBOARD_ADDRESS", "value": dash},
                {"name": "RAY_JOB_SUBMISSION_ID", "value": job_id}]
        backoff = int((spec.get("submitterConfig") or {}).get("backoffLimit", 2))
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": meta["name"], "labels": labels, "ownerReferences": [owner_ref(job)]},
                "spec": {"backoffLimit": backoff, "template": template}}

    @staticmethod
    def _submit_script(job: dict[str, Any], dash: str) -> str:
        """KubeRay's ``BuildJobSubmitCommand`` (§2.2), the entrypoint inserted unquoted."""
        spec, job_id = job.get("spec") or {}, (job.get("status") or {})["jobId"]
        addr = f"http://{dash}"
        submit = ["ray", "job", "submit", "--address", addr, "--no-wait"]
        if spec.get("runtimeEnvYAML"):
            submit += ["--runtime-env-json", json.dumps(json.dumps(yaml.safe_load(spec["runtimeEnvYAML"])))]
        if spec.get("metadata"):
            submit += ["--metadata-json", json.dumps(json.dumps(spec["metadata"]))]
        submit += ["--submission-id", job_id]
        if spec.get("entrypointNumCpus") is not None:
            submit += ["--entrypoint-num-cpus", f"{float(spec['entrypointNumCpus']):f}"]
        if spec.get("entrypointNumGpus") is not None:
            submit += ["--entrypoint-num-gpus", f"{float(spec['entrypointNumGpus']):f}"]
        if spec.get("entrypointResources"):
            submit += ["--entrypoint-resources", json.dumps(spec["entrypointResources"])]
        health = (f"until python -c \"import urllib.request; r=urllib.request.urlopen('{addr}/api/gcs_healthz', "
                  "timeout=10); exit(0 if b'success' in r.read() else 1)\" >/dev/null 2>&1 ; do echo \"Waiting for "
                  f"Ray Dashboard GCS to become healthy at {addr} ...\" ; sleep 2 ; done ; ")
        return (f"{health}if ! ray job status --address {addr} {job_id} >/dev/null 2>&1 ; then "
                f"{' '.join(submit)} -- {str(spec.get('entrypoint', '')).strip()} ; fi ; "
                f"ray job logs --address {addr} --follow {job_id}")

    def _running(self, job: dict[str, Any]) -> None:
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        cluster_name = status["rayClusterName"]
        cluster = self.store.try_get(self.clusters, ns, cluster_name)
        if cluster is not None:
            head = ((cluster["spec"].get("headGroupSpec") or {}).get("template") or {}).get("spec", {}).get(
                "containers", [{}])[0]
            self.ensure(self.services, ns, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{name}-head-svc", "ownerReferences": [owner_ref(job)]},
                "spec": {"selector": {"ray.io/cluster": cluster_name, "ray.io/node-type": "head"},
                         "ports": [{"name": k, "port": v, "targetPort": v} for k, v in sorted(_ports(head).items())]}})
        mode = spec.get("submissionMode", "K8sJobMode")
        last = self._polled.get(meta["uid"], 0.0)
        if time.monotonic() - last < 1.0:
            return
        self._polled[meta["uid"]] = time.monotonic()
        dash, job_id = status["dashboardURL"], status["jobId"]
        code, body = self.sim.prober.request("GET", f"http://{dash}/api/jobs/{job_id}", timeout=3)
        info: dict[str, Any] | None = None
        if code == 200:
            try:
                info = json.loads(body)
            except ValueError:
                info = None
        if mode == "HTTPMode" and code == 404:
            req = {"entrypoint": spec.get("entrypoint", ""), "submission_id": job_id,
                   "metadata": spec.get("metadata") or {}}
            if spec.get("runtimeEnvYAML"):
                req["runtime_env"] = yaml.safe_load(spec["runtimeEnvYAML"])
            self.sim.prober.request("POST", f"http://{dash}/api/jobs/", json.dumps(req), timeout=5)
            return
        job_status = (info or {}).get("status", status.get("jobStatus", ""))
        updates: dict[str, Any] = {}
        if info is not None:
            updates["jobStatus"] = job_status
            if info.get("message"):
                updates["message"] = info["message"]
        submitter_done, submitter_failed = True, False
        if mode == "K8sJobMode":
            sub = self.store.try_get(self.jobs, ns, name)
            conds = {c.get("type"): c.get("status") for c in ((sub or {}).get("status") or {}).get("conditions") or []}
            submitter_failed = conds.get("Failed") == "True"
            submitter_done = conds.get("Complete") == "True" or submitter_failed
            if submitter_done and "submitterFinishedAt" not in self._polled:
                self._polled[f"{meta['uid']}-done"] = self._polled.get(f"{meta['uid']}-done", time.monotonic())
        final: tuple[str, str] | None = None
        if submitter_failed:
            final = ("Failed", "AppFailed" if job_status == "FAILED" else "SubmissionFailed")
        elif submitter_done and job_status in RAY_TERMINAL_JOB:
            final = ("Failed", "AppFailed") if job_status == "FAILED" else ("Complete", "")
        elif submitter_done and mode == "K8sJobMode":
            since = self._polled.get(f"{meta['uid']}-done", time.monotonic())
            if info is None and code == 404:
                final = ("Failed", "AppFailed")
                updates["message"] = "Ray job not found after the submitter finished"
            elif time.monotonic() - since > 30:
                final, updates["jobStatus"] = ("Failed", "AppFailed"), "FAILED"
        if final:
            updates.update({"jobDeploymentStatus": final[0], "endTime": now()})
            if final[1]:
                updates["reason"] = final[1]
            updates["succeeded" if final[0] == "Complete" else "failed"] = 1
            self.event(job, "Completed" if final[0] == "Complete" else "Failed",
                       f"RayJob {ns}/{name} finished: {final[0]}", "Normal" if final[0] == "Complete" else "Warning")
        if any(status.get(k) != v for k, v in updates.items()):
            self.set_status(job, lambda s: s.update(updates))


# =============================================================================== Dask (§3)

def _scheduler_address(job: str, ns: str) -> str:
    return f"tcp://{job}-scheduler.{ns}.svc.cluster.local:8786"


class DaskJobOperator(Controller):
    """dask-kubernetes' DaskJob handlers (§3.1, §3.3)."""

    kind, group, plural = "DaskJob", "kubernetes.dask.org", "daskjobs"
    component = "dask-kubernetes-operator"

    def __init__(self, sim: OperatorSimulator) -> None:
        super().__init__(sim)
        self.clusters = self.store.resource("kubernetes.dask.org", "daskclusters")

    def reconcile(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        ns, name = meta["namespace"], meta["name"]
        status = job.get("status") or {}
        phase = status.get("jobStatus")
        if not phase:
            self.set_status(job, lambda s: s.update({"jobStatus": "JobCreated"}))
            return
        if phase == "JobCreated":
            cluster_meta = (spec.get("cluster") or {}).get("metadata") or {}
            self.ensure(self.clusters, ns, {
                "apiVersion": "kubernetes.dask.org/v1", "kind": "DaskCluster",
                "metadata": {"name": name, "ownerReferences": [owner_ref(job)],
                             "labels": {**(meta.get("labels") or {}), **(cluster_meta.get("labels") or {})},
                             "annotations": {**(meta.get("annotations") or {}), **(cluster_meta.get("annotations") or {})}},
                "spec": copy.deepcopy((spec.get("cluster") or {}).get("spec") or {})})
            runner = copy.deepcopy((spec.get("job") or {}).get("spec") or {})
            job_meta = (spec.get("job") or {}).get("metadata") or {}
            for c in runner.get("containers", []):
                _add_env_if_missing(c, "DASK_SCHEDULER_ADDRESS", _scheduler_address(name, ns))
            self.ensure(self.pods, ns, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{name}-runner", "ownerReferences": [owner_ref(job)],
                             "labels": {**(meta.get("labels") or {}), **(job_meta.get("labels") or {}),
                                        "dask.org/cluster-name": name, "dask.org/component": "job-runner",
                                        "sidecar.istio.io/inject": "false"},
                             "annotations": {**(meta.get("annotations") or {}), **(job_meta.get("annotations") or {})}},
                "spec": runner})
            self.set_status(job, lambda s: s.update({"clusterName": name, "jobRunnerPodName": f"{name}-runner",
                                                     "jobStatus": "ClusterCreated"}))
            self.event(job, "Created", f"DaskCluster {name} and job runner {name}-runner created")
            return
        if phase in ("Successful", "Failed"):
            return
        pod = self.pod(ns, status.get("jobRunnerPodName", f"{name}-runner"))
        pod_phase = ((pod or {}).get("status") or {}).get("phase")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if pod_phase == "Running" and phase == "ClusterCreated":
            self.set_status(job, lambda s: s.update({"jobStatus": "Running", "startTime": stamp}))
        elif pod_phase in ("Succeeded", "Failed"):
            final = "Successful" if pod_phase == "Succeeded" else "Failed"
            self.set_status(job, lambda s: s.update({"jobStatus": final, "endTime": stamp}))
            self.event(job, final, f"Job runner {name}-runner {pod_phase.lower()}")
            if self.store.try_get(self.clusters, ns, name) is not None:
                self.store.delete(self.clusters, ns, name)


class DaskClusterController(Controller):
    """DaskCluster → scheduler Deployment + Service (exactly ``scheduler.service``) + the
    ``<cluster>-default`` DaskWorkerGroup (§3.1); phase Created → Pending → Running."""

    kind, group, plural = "DaskCluster", "kubernetes.dask.org", "daskclusters"
    component = "dask-kubernetes-operator"

    def __init__(self, sim: OperatorSimulator) -> None:
        super().__init__(sim)
        self.deployments = self.store.resource("apps", "deployments")
        self.groups = self.store.resource("kubernetes.dask.org", "daskworkergroups")

    def reconcile(self, cluster: dict[str, Any]) -> None:
        meta, spec = cluster["metadata"], cluster.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        ns, name = meta["namespace"], meta["name"]
        phase = (cluster.get("status") or {}).get("phase")
        labels = {**(meta.get("labels") or {}), "dask.org/cluster-name": name}
        if not phase:
            scheduler = spec.get("scheduler") or {}
            smeta = scheduler.get("metadata") or {}
            slabels = {**labels, **(smeta.get("labels") or {}), "dask.org/component": "scheduler"}
            self.ensure(self.deployments, ns, {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"{name}-scheduler", "labels": slabels, "ownerReferences": [owner_ref(cluster)]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"dask.org/cluster-name": name,
                                                                     "dask.org/component": "scheduler"}},
                         "template": {"metadata": {"labels": slabels, "annotations": smeta.get("annotations") or {}},
                                      "spec": copy.deepcopy(scheduler.get("spec") or {})}}})
            self.ensure(self.services, ns, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"{name}-scheduler", "labels": slabels, "ownerReferences": [owner_ref(cluster)]},
                "spec": copy.deepcopy(scheduler.get("service") or {})})
            self.ensure(self.groups, ns, {
                "apiVersion": "kubernetes.dask.org/v1", "kind": "DaskWorkerGroup",
                "metadata": {"name": f"{name}-default", "labels": {**labels, "dask.org/component": "workergroup"},
                             "ownerReferences": [owner_ref(cluster)]},
                "spec": {"cluster": name, "worker": copy.deepcopy(spec.get("worker") or {})}})
            self.set_status(cluster, lambda s: s.update({"phase": "Pending"}))
            return
        if phase == "Pending":
            pods, _ = self.store.list(self.pods, ns,
                                      label_selector=f"dask.org/cluster-name={name},dask.org/component=scheduler")
            if any(pod_ready(p) for p in pods):
                self.set_status(cluster, lambda s: s.update({"phase": "Running"}))


class DaskWorkerGroupController(Controller):
    """DaskWorkerGroup → ``replicas`` Deployments ``<group>-worker-<10 hex>`` of one pod each, with
    ``DASK_WORKER_NAME`` and ``DASK_SCHEDULER_ADDRESS`` (§3.2)."""

    kind, group, plural = "DaskWorkerGroup", "kubernetes.dask.org", "daskworkergroups"
    component = "dask-kubernetes-operator"

    def __init__(self, sim: OperatorSimulator) -> None:
        super().__init__(sim)
        self.deployments = self.store.resource("apps", "deployments")

    def reconcile(self, group: dict[str, Any]) -> None:
        meta, spec = group["metadata"], group.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        ns, name, cluster = meta["namespace"], meta["name"], spec.get("cluster", "")
        worker = spec.get("worker") or {}
        deployments, _ = self.store.list(self.deployments, ns, label_selector=f"dask.org/workergroup-name={name}")
        mine = [d for d in deployments if owned_by(d, group)]
        wmeta = worker.get("metadata") or {}
        for _ in range(int(worker.get("replicas", 1)) - len(mine)):
            dname = f"{name}-worker-{uuid.uuid4().hex[:10]}"
            labels = {**(meta.get("labels") or {}), **(wmeta.get("labels") or {}), "dask.org/cluster-name": cluster,
                      "dask.org/component": "worker", "dask.org/workergroup-name": name}
            labels.pop("dask.org/component", None)
            labels["dask.org/component"] = "worker"
            pod_spec = copy.deepcopy(worker.get("spec") or {})
            for c in pod_spec.get("containers", []):
                _add_env_if_missing(c, "DASK_WORKER_NAME", dname)
                _add_env_if_missing(c, "DASK_SCHEDULER_ADDRESS", _scheduler_address(cluster, ns))
            self.store.create(self.deployments, ns, {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": dname, "labels": labels, "ownerReferences": [owner_ref(group)]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"dask.org/workergroup-name": name}},
                         "template": {"metadata": {"labels": labels, "annotations": wmeta.get("annotations") or {}},
                                      "spec": pod_spec}}})


# =============================================================================== PyTorch (§4)

PT_CONTAINER = "pytorch"
PT_PORT = 23456


class PyTorchJobOperator(Controller):
    """The training operator's PyTorchJob controller, v1.9 (§4.1 to §4.4)."""

    kind, group, plural = "PyTorchJob", "kubeflow.org", "pytorchjobs"
    component = "pytorchjob-controller"

    def reconcile(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        ns, name = meta["namespace"], meta["name"]
        status = job.get("status") or {}
        conditions = status.get("conditions") or []
        if not conditions:
            self._condition(job, "Created", f"PyTorchJob {name} is created.")
            self.event(job, "PyTorchJobCreated", f"PyTorchJob {name} is created.")
            return
        run_policy = spec.get("runPolicy") or {}
        replicas = self._replicas(spec)
        if self._final(conditions):
            self._finished(job, run_policy, replicas)
            return
        for rtype, rspec in replicas.items():
            for i in range(int(rspec.get("replicas", 1))):
                pname = f"{name}-{rtype.lower()}-{i}"
                if self.pod(ns, pname) is None:
                    self.store.create(self.pods, ns, self._pod(job, spec, replicas, rtype, rspec, i, pname))
                    self.event(job, "SuccessfulCreatePod", f"Created pod: {pname}")
                container = next((c for c in rspec["template"]["spec"]["containers"] if c.get("name") == PT_CONTAINER),
                                 {})
                ports = [{"name": p.get("name"), "port": int(p["containerPort"]), "targetPort": int(p["containerPort"])}
                         for p in container.get("ports") or [] if p.get("containerPort")]
                self.ensure(self.services, ns, {
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": pname, "labels": self._labels(name, rtype, i, replicas),
                                 "ownerReferences": [owner_ref(job)]},
                    "spec": {"clusterIP": "None", "selector": self._labels(name, rtype, i, replicas),
                             "ports": ports or [{"name": "pytorchjob-port", "port": PT_PORT, "targetPort": PT_PORT}]}})
        self._update(job, spec, replicas, run_policy)

    @staticmethod
    def _replicas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``pytorchReplicaSpecs`` with the operator's defaults (§4.2): Master first."""
        out: dict[str, dict[str, Any]] = {}
        specs = spec.get("pytorchReplicaSpecs") or {}
        for rtype in sorted(specs, key=lambda t: (t != "Master", t)):
            rspec = copy.deepcopy(specs[rtype])
            rspec.setdefault("replicas", 1)
            rspec.setdefault("restartPolicy", "OnFailure")
            containers = rspec.setdefault("template", {}).setdefault("spec", {}).setdefault("containers", [])
            for c in containers:
                if c.get("name") == PT_CONTAINER and not any(p.get("name") == "pytorchjob-port"
                                                             for p in c.get("ports") or []):
                    c.setdefault("ports", []).append({"name": "pytorchjob-port", "containerPort": PT_PORT})
            out[rtype] = rspec
        return out

    @staticmethod
    def _labels(job: str, rtype: str, index: int, replicas: dict[str, Any]) -> dict[str, str]:
        labels = {"training.kubeflow.org/job-name": job, "training.kubeflow.org/operator-name": "pytorchjob-controller",
                  "training.kubeflow.org/replica-type": rtype.lower(), "training.kubeflow.org/replica-index": str(index)}
        if rtype == "Master" or ("Master" not in replicas and rtype == "Worker" and index == 0):
            labels["training.kubeflow.org/job-role"] = "master"
        return labels

    @staticmethod
    def _port(rspec: dict[str, Any]) -> int:
        for c in rspec["template"]["spec"].get("containers", []):
            if c.get("name") == PT_CONTAINER:
                for p in c.get("ports") or []:
                    if p.get("name") == "pytorchjob-port":
                        return int(p["containerPort"])
        return PT_PORT

    def _env(self, job: dict[str, Any], spec: dict[str, Any], replicas: dict[str, Any], rtype: str,
             index: int) -> list[dict[str, str]]:
        name = job["metadata"]["name"]
        env = [("PYTHONUNBUFFERED", "1")]
        nproc = str(spec.get("nprocPerNode") or "auto")
        elastic = spec.get("elasticPolicy")
        total = sum(int(r.get("replicas", 1)) for r in replicas.values())
        if "Master" in replicas:
            port = str(self._port(replicas["Master"]))
            per_node = 1 if nproc == "auto" else int(nproc)
            rank = "0" if rtype == "Master" else str(index + 1)
            env += [("MASTER_PORT", port), ("PET_MASTER_PORT", port), ("MASTER_ADDR", f"{name}-master-0"),
                    ("PET_MASTER_ADDR", f"{name}-master-0"), ("WORLD_SIZE", str(total * per_node)),
                    ("RANK", rank), ("PET_NODE_RANK", rank)]
        if elastic is None:
            env += [("PET_NPROC_PER_NODE", nproc), ("PET_NNODES", str(total))]
        else:
            workers = int((replicas.get("Worker") or {}).get("replicas", 1))
            low = elastic.get("minReplicas", elastic.get("maxReplicas", workers))
            high = elastic.get("maxReplicas", elastic.get("minReplicas", workers))
            host = elastic.get("rdzvHost") or f"{name}-worker-0"
            port = elastic.get("rdzvPort") or self._port(replicas.get("Worker") or replicas[rtype])
            env += [("PET_NPROC_PER_NODE", str(elastic.get("nProcPerNode") or nproc)),
                    ("PET_RDZV_ENDPOINT", f"{host}:{port}"), ("PET_RDZV_BACKEND", elastic.get("rdzvBackend") or "c10d"),
                    ("PET_NNODES", f"{low}:{high}")]
            if elastic.get("maxRestarts") is not None:
                env.append(("PET_MAX_RESTARTS", str(elastic["maxRestarts"])))
            if elastic.get("rdzvId"):
                env.append(("PET_RDZV_ID", str(elastic["rdzvId"])))
            if elastic.get("rdzvConf"):
                env.append(("PET_RDZV_CONF", ",".join(f"{c['key']}={c['value']}" for c in elastic["rdzvConf"])))
            if elastic.get("standalone"):
                env.append(("PET_STANDALONE", ""))
        return [{"name": k, "value": v} for k, v in env]

    def _pod(self, job: dict[str, Any], spec: dict[str, Any], replicas: dict[str, Any], rtype: str,
             rspec: dict[str, Any], index: int, pname: str) -> dict[str, Any]:
        template = copy.deepcopy(rspec["template"])
        meta = template.setdefault("metadata", {})
        meta["name"] = pname
        meta["labels"] = {**(meta.get("labels") or {}), **self._labels(job["metadata"]["name"], rtype, index, replicas)}
        meta["ownerReferences"] = [owner_ref(job)]
        pspec = template["spec"]
        pspec["restartPolicy"] = "Never" if rspec["restartPolicy"] == "ExitCode" else rspec["restartPolicy"]
        pspec.setdefault("hostname", pname)
        env = self._env(job, spec, replicas, rtype, index)
        for c in pspec.get("containers", []):
            _env_list(c).extend(copy.deepcopy(env))  # appended after the user's env (§4.2)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pspec}

    @staticmethod
    def _final(conditions: list[dict[str, Any]]) -> str | None:
        for c in conditions:
            if c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True":
                return str(c["type"])
        return None

    def _condition(self, job: dict[str, Any], kind: str, message: str, reason: str | None = None,
                   extra: dict[str, Any] | None = None) -> None:
        stamp = now()

        def edit(s: dict[str, Any]) -> None:
            conds = s.setdefault("conditions", [])
            if kind in ("Succeeded", "Failed"):
                for c in conds:
                    if c.get("type") == "Running" and c.get("status") == "True":
                        c.update({"status": "False", "lastUpdateTime": stamp, "lastTransitionTime": stamp})
            for c in conds:
                if c.get("type") == kind:
                    c.update({"status": "True", "reason": reason or f"PyTorchJob{kind}", "message": message,
                              "lastUpdateTime": stamp})
                    break
            else:
                conds.append({"type": kind, "status": "True", "reason": reason or f"PyTorchJob{kind}",
                              "message": message, "lastUpdateTime": stamp, "lastTransitionTime": stamp})
            s.update(extra or {})
        self.set_status(job, edit)

    def _update(self, job: dict[str, Any], spec: dict[str, Any], replicas: dict[str, Any],
                run_policy: dict[str, Any]) -> None:
        meta, status = job["metadata"], job.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        counts: dict[str, dict[str, int]] = {}
        restarts = 0
        for rtype, rspec in replicas.items():
            active = succeeded = failed = 0
            for i in range(int(rspec.get("replicas", 1))):
                pod = self.pod(ns, f"{name}-{rtype.lower()}-{i}") or {}
                phase = (pod.get("status") or {}).get("phase")
                active += phase == "Running"
                succeeded += phase == "Succeeded"
                failed += phase == "Failed"
                restarts += sum(int(c.get("restartCount", 0))
                                for c in (pod.get("status") or {}).get("containerStatuses") or [])
            counts[rtype] = {"active": active, "succeeded": succeeded, "failed": failed}
        replica_statuses = {
            rtype: {**{k: v for k, v in c.items() if v}, "selector": ",".join(
                f"{k}={v}" for k, v in sorted(self._labels(name, rtype, 0, replicas).items())
                if k != "training.kubeflow.org/replica-index" and k != "training.kubeflow.org/job-role")}
            for rtype, c in counts.items()}
        start = status.get("startTime") or now()
        if status.get("replicaStatuses") != replica_statuses or not status.get("startTime"):
            self.set_status(job, lambda s: s.update({"replicaStatuses": replica_statuses, "startTime": start}))
        has_master = "Master" in replicas
        elastic = spec.get("elasticPolicy") is not None
        conds = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
        running = counts["Master"]["active"] > 0 if has_master else any(c["active"] for c in counts.values())
        if running and conds.get("Running") != "True":
            self._condition(job, "Running", f"PyTorchJob {ns}/{name} is running.")
            self.event(job, "PyTorchJobRunning", f"PyTorchJob {ns}/{name} is running.")
        workers = counts.get("Worker", {"active": 0, "succeeded": 0, "failed": 0})
        n_workers = int((replicas.get("Worker") or {}).get("replicas", 0))
        if has_master:
            succeeded = counts["Master"]["succeeded"] > 0
        else:
            succeeded = workers["succeeded"] > 0 if elastic else (n_workers > 0 and workers["succeeded"] == n_workers)
        if succeeded:
            self._condition(job, "Succeeded", f"PyTorchJob {ns}/{name} successfully completed.",
                            extra={"completionTime": now()})
            self.event(job, "PyTorchJobSucceeded", f"PyTorchJob {ns}/{name} successfully completed.")
            return
        for rtype, c in counts.items():
            n = int(replicas[rtype].get("replicas", 1))
            if c["failed"] > 0 and replicas[rtype]["restartPolicy"] in ("Never", "ExitCode") \
                    and n > c["succeeded"] + c["active"]:
                message = f"PyTorchJob {name} is failed because {c['failed']} {rtype} replica(s) failed."
                self._condition(job, "Failed", message, extra={"completionTime": now()})
                self.event(job, "PyTorchJobFailed", message, "Warning")
                return
        if run_policy.get("backoffLimit") is not None and restarts > int(run_policy["backoffLimit"]):
            message = f"PyTorchJob {name} has failed because it has reached the specified backoff limit"
            self._condition(job, "Failed", message, reason="BackoffLimitExceeded", extra={"completionTime": now()})
            self.event(job, "BackoffLimitExceeded", message, "Warning")
            return
        deadline = run_policy.get("activeDeadlineSeconds")
        if deadline is not None and time.time() >= _parse_time(start) + float(deadline):
            message = f"PyTorchJob {name} has failed because it was active longer than specified deadline"
            self._condition(job, "Failed", message, reason="DeadlineExceeded", extra={"completionTime": now()})
            self.event(job, "DeadlineExceeded", message, "Warning")

    def _finished(self, job: dict[str, Any], run_policy: dict[str, Any], replicas: dict[str, Any]) -> None:
        meta, status = job["metadata"], job.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        policy = run_policy.get("cleanPodPolicy", "None")
        if policy in ("Running", "All"):
            for pod in self.owned_pods(job):
                phase = (pod.get("status") or {}).get("phase")
                if policy == "All" or phase in ("Running", "Pending"):
                    self.store.delete(self.pods, ns, pod["metadata"]["name"])
                    svc = self.store.try_get(self.services, ns, pod["metadata"]["name"])
                    if svc is not None and owned_by(svc, job):
                        self.store.delete(self.services, ns, pod["metadata"]["name"])
        ttl = run_policy.get("ttlSecondsAfterFinished")
        if ttl is not None and status.get("completionTime") \
                and time.time() >= _parse_time(status["completionTime"]) + float(ttl):
            self.store.delete(self.res, ns, name)


ALL_CONTROLLERS: tuple[type[Controller], ...] = (
    SparkOperator, RayJobOperator, RayClusterController, DaskJobOperator, DaskClusterController,
    DaskWorkerGroupController, PyTorchJobOperator, DeploymentController, JobController,
)


def quote(s: str) -> str:
    return shlex.quote(s)
