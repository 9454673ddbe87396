"""A one-node kubelet (and scheduler) that runs pod containers as local processes.

For every pod in the store (see :class:`Kubelet.sync`):

- **Scheduling**: ``nodeSelector`` against the node's labels, and the sum of the containers'
  ``requests`` (``limits`` where a request is unset, as the API server defaults them) against the
  node's capacity minus the pods already running. A pod that does not fit stays ``Pending`` with
  condition ``PodScheduled=False reason=Unschedulable`` and a ``FailedScheduling`` event, and is
  retried. Then ``spec.nodeName``, ``status.podIP`` (its own 127.0.x.y, see
  :mod:`tests.support.k8s.sandbox`), ``hostIP``, ``startTime``.
- **Images**: the simulated "image" of every container is the machine itself with the venv's
  ``bin`` first on ``PATH``. An image for which ``pull_fails(image)`` is true (default: the tag
  ends in ``pull-fails``, e.g. ``repo/img:pull-fails``) is never pulled: the container waits with
  ``ErrImagePull`` then ``ImagePullBackOff`` (``Failed``/``BackOff`` events), the pod stays Pending.
- **Init containers** run one after another, then all containers at once, each as a process:
  ``command`` + ``args`` (``$(VAR)`` expanded as the kubelet does; ``args`` alone are the command,
  as for an image without ENTRYPOINT; an ``entrypoints`` hook may stand for an image's entrypoint,
  e.g. Spark's), ``env`` / ``envFrom`` (``value``, ``fieldRef`` incl. ``status.podIP``,
  ``metadata.name``/``namespace``/``uid``/``labels['k']``/``annotations['k']``,
  ``spec.nodeName``, ``resourceFieldRef``, ``configMapKeyRef``, ``secretKeyRef``) over the
  image's env (``PATH``, ``HOME`` = a scratch folder of the pod, ``HOSTNAME``, ``LANG``,
  ``TMPDIR``, ``JAVA_HOME`` where the machine has one, ``KUBERNETES_SERVICE_HOST/PORT``);
  nothing else from the test process's environment reaches them. ``workingDir`` must exist
  on this machine (else ``CreateContainerError``); unset, the pod's scratch folder.
- **Exit and restarts**: exit 0 is ``Completed``, non-zero ``Error`` (``StartError``/128 when the
  executable is not found). ``restartPolicy`` ``Always`` restarts every exit, ``OnFailure`` the
  non-zero ones, with ``CrashLoopBackOff`` while waiting (``backoff_base`` doubling up to
  ``backoff_max``; the kubelet's 10 s .. 300 s scaled down), ``restartCount``, ``lastState``
  and the previous run's log kept for ``?previous=true``. Phase: ``Pending`` → ``Running`` →
  ``Succeeded`` (all exited 0 for good) / ``Failed``. ``Ready`` when every container runs
  (probes are not run).
- **Deletion**: a deleted pod's containers get SIGTERM (process group), then SIGKILL after
  ``min(terminationGracePeriodSeconds, grace_period)`` s; the container's PID namespace goes
  with its init, so no process it started survives.
- stdout and stderr of each run go, interleaved as they come, to the pod's log (:mod:`tests.support.k8s.logs`).
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil

from tests.support.k8s.logs import ContainerLog, LogHub, rfc3339nano
from tests.support.k8s.sandbox import PodNetwork
from tests.support.k8s.store import ApiError, Store, now

#: How long a container whose process exited may take to finish writing its log before it counts as terminated.
LOG_DRAIN_S = 5.0

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10**3, "K": 10**3,
           "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)?$")


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``"2Gi"``, ``1``) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = match.group(1), match.group(2) or ""
    return Decimal(number) * Decimal(_SUFFIX[suffix])


def pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for c in (pod.get("spec") or {}).get("containers", []):
        res = c.get("resources") or {}
        wanted = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for key, value in wanted.items():
            total[key] = total.get(key, Decimal(0)) + quantity(value)
    return total


def pull_fails_default(image: str) -> bool:
    return image.rsplit(":", 1)[-1].endswith("pull-fails") if ":" in image.rsplit("/", 1)[-1] else False


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion (``$$`` escapes; unknown references are kept)."""
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(repl, str(text))


class ContainerConfigError(Exception):
    """CreateContainerConfigError (a missing ConfigMap/Secret key, a bad fieldRef)."""


class ContainerCreateError(Exception):
    """CreateContainerError (no command; workingDir missing)."""


@dataclass
class ContainerRun:
    name: str
    spec: dict[str, Any]
    init: bool = False
    proc: subprocess.Popen[bytes] | None = None
    log: ContainerLog | None = None
    restarts: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    pulled: bool = False
    pull_attempts: int = 0
    next_start: float = 0.0
    done: bool = False  # terminated for good (no restart coming)
    exit_code: int | None = None
    started_once: bool = False
    exited_at: float | None = None  # when the kubelet first saw the process gone (its log may still be draining)
    container_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state


@dataclass
class PodRun:
    uid: str
    ns: str
    name: str
    scratch: Path
    inits: list[ContainerRun]
    containers: list[ContainerRun]
    restart_policy: str
    grace: float
    scheduled: bool = False
    ip: str | None = None
    start_time: str | None = None
    unschedulable: str | None = None
    failed: bool = False  # an init container failed for good
    stopping: bool = False
    stopped: threading.Event = field(default_factory=threading.Event)
    transitions: dict[str, str] = field(default_factory=dict)

    def all_runs(self) -> list[ContainerRun]:
        return self.inits + self.containers


EventFn = Callable[[dict[str, Any], str, str, str], None]  # (pod, reason, message, type)
Entrypoint = Callable[[dict[str, Any], dict[str, Any]], "list[str] | None"]


class Kubelet:
    def __init__(self, store: Store, logs: LogHub, network: PodNetwork, *, directory: Path, record_event: EventFn,
                 node_name: str = "k8s-sim-node", capacity: dict[str, str] | None = None,
                 node_labels: dict[str, str] | None = None, venv_bin: str | None = None,
                 pull_fails: Callable[[str], bool] = pull_fails_default, grace_period: float = 3.0,
                 backoff_base: float = 1.0, backoff_max: float = 8.0, api_host: str = "127.0.0.1",
                 api_port: int = 443) -> None:
        self.store, self.logs, self.network = store, logs, network
        self.directory = directory
        self.record_event = record_event
        self.node_name = node_name
        self.capacity = {k: quantity(v) for k, v in (capacity or {"cpu": "16", "memory": "64Gi", "pods": "110"}).items()}
        self.node_labels = {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64", **(node_labels or {})}
        self.venv_bin = venv_bin
        self.pull_fails = pull_fails
        self.grace_period = grace_period
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.api_host, self.api_port = api_host, api_port
        self.entrypoints: list[Entrypoint] = []
        #: called once a pod has its IP, before its containers start (the simulator updates the pod DNS)
        self.on_scheduled: Callable[[], None] = lambda: None
        self.runs: dict[str, PodRun] = {}
        self._serial = 0
        #: every container process ever started: pid -> create time (to tell a reused pid apart)
        self.started: dict[int, float] = {}
        self._stoppers: list[threading.Thread] = []
        self._nsenter = shutil.which("nsenter") or "nsenter"
        self._pods = store.resource("", "pods")

    # ---------------------------------------------------------------- the loop's entry point
    def sync(self) -> None:
        pods, _ = self.store.list(self._pods)
        seen = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            run = self.runs.get(uid)
            if run is None:
                run = self._admit(pod)
            if pod["metadata"].get("deletionTimestamp"):
                self._stop_async(run, "deleted")
                continue
            try:
                self._step(run, pod)
            except ApiError:
                continue  # the pod went away meanwhile
        for uid in [u for u in self.runs if u not in seen]:
            run = self.runs.pop(uid)
            self._stop_async(run, "deleted", drop_logs=True)
        self._stoppers = [t for t in self._stoppers if t.is_alive()]

    def shutdown(self, timeout: float = 15) -> None:
        for run in list(self.runs.values()):
            self._stop_async(run, "simulator stopped", drop_logs=True)
        self.runs.clear()
        deadline = time.monotonic() + timeout
        for t in list(self._stoppers):
            t.join(max(0.1, deadline - time.monotonic()))

    # ---------------------------------------------------------------- introspection
    def pids(self, ns: str | None = None, name: str | None = None) -> list[int]:
        """The live processes of the pods' containers (each container's runtime process and all under it)."""
        out: list[int] = []
        for run in list(self.runs.values()):
            if (ns and run.ns != ns) or (name and run.name != name):
                continue
            for c in run.all_runs():
                proc = c.proc
                if proc is not None and proc.poll() is None:
                    out.append(proc.pid)
                    with contextlib.suppress(psutil.NoSuchProcess):
                        out.extend(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
        return out

    # ---------------------------------------------------------------- pod lifecycle
    def _admit(self, pod: dict[str, Any]) -> PodRun:
        meta, spec = pod["metadata"], pod["spec"]
        # short: TMPDIR and HOME hold unix sockets (multiprocessing, Ray), whose paths are limited to 107 bytes
        self._serial += 1
        scratch = self.directory / f"p{self._serial}"
        (scratch / "home").mkdir(parents=True, exist_ok=True)
        (scratch / "tmp").mkdir(exist_ok=True)
        run = PodRun(
            meta["uid"], meta["namespace"], meta["name"], scratch,
            [ContainerRun(c["name"], c, init=True) for c in spec.get("initContainers", [])],
            [ContainerRun(c["name"], c) for c in spec.get("containers", [])],
            spec.get("restartPolicy", "Always"),
            float(min(spec.get("terminationGracePeriodSeconds", 30), self.grace_period)),
        )
        self.runs[run.uid] = run
        return run

    def _step(self, run: PodRun, pod: dict[str, Any]) -> None:
        if run.stopping:
            return
        if not run.scheduled and not self._schedule(run, pod):
            self._write_status(run, pod)
            return
        t = time.monotonic()
        for c in run.all_runs():
            if not c.pulled:
                self._pull(run, pod, c, t)
        if any(not c.pulled for c in run.all_runs()):
            self._write_status(run, pod)
            return
        # init containers, one at a time
        for c in run.inits:
            self._reap(run, pod, c)
            if c.done and c.exit_code == 0:
                continue
            if c.done:  # failed for good
                run.failed = True
                break
            if not c.running and t >= c.next_start:
                self._start(run, pod, c)
            break
        else:
            for c in run.containers:
                self._reap(run, pod, c)
                if not c.done and not c.running and t >= c.next_start:
                    self._start(run, pod, c)
        self._write_status(run, pod)

    def _schedule(self, run: PodRun, pod: dict[str, Any]) -> bool:
        spec = pod["spec"]
        message = None
        selector = spec.get("nodeSelector") or {}
        if any(self.node_labels.get(k) != v for k, v in selector.items()):
            message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        else:
            used: dict[str, Decimal] = {"pods": Decimal(0)}
            for other in self.runs.values():
                if other is run or not other.scheduled or other.stopping or self._terminal(other):
                    continue
                opod = self.store.try_get(self._pods, other.ns, other.name)
                if opod is None:
                    continue
                used["pods"] += 1
                for k, v in pod_requests(opod).items():
                    used[k] = used.get(k, Decimal(0)) + v
            wanted = {**pod_requests(pod), "pods": Decimal(1)}
            short = sorted(k for k, v in wanted.items()
                           if v > 0 and v + used.get(k, Decimal(0)) > self.capacity.get(k, Decimal(0)))
            if short:
                message = "0/1 nodes are available: " + ", ".join(
                    f"1 Too many {k}" if k == "pods" else f"1 Insufficient {k}" for k in short) + "."
        if message:
            if run.unschedulable != message:
                self.record_event(pod, "FailedScheduling", message, "Warning")
            run.unschedulable = message
            return False
        run.scheduled, run.unschedulable = True, None
        run.ip = self.network.allocate_ip()
        run.start_time = now()
        self.store.mutate(self._pods, run.ns, run.name, lambda p: p["spec"].__setitem__("nodeName", self.node_name))
        pod["spec"]["nodeName"] = self.node_name
        self.record_event(pod, "Scheduled", f"Successfully assigned {run.ns}/{run.name} to {self.node_name}", "Normal")
        self.on_scheduled()  # the pod's hostname resolves before anything in it runs
        return True

    def _pull(self, run: PodRun, pod: dict[str, Any], c: ContainerRun, t: float) -> None:
        image = str(c.spec.get("image") or "")
        if not self.pull_fails(image):
            c.pulled = True
            self.record_event(pod, "Pulled", f'Container image "{image}" already present on machine', "Normal")
            return
        if t < c.next_start:
            return
        c.pull_attempts += 1
        if c.pull_attempts % 2 == 1:
            self.record_event(pod, "Pulling", f'Pulling image "{image}"', "Normal")
            error = (f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack '
                     f'image "{image}": not found')
            self.record_event(pod, "Failed", error, "Warning")
            self.record_event(pod, "Failed", "Error: ErrImagePull", "Warning")
            c.state = {"waiting": {"reason": "ErrImagePull", "message": error}}
            c.next_start = t + self.backoff_base
        else:
            self.record_event(pod, "BackOff", f'Back-off pulling image "{image}"', "Normal")
            self.record_event(pod, "Failed", "Error: ImagePullBackOff", "Warning")
            c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            c.next_start = t + min(self.backoff_max, self.backoff_base * 2 ** (c.pull_attempts // 2))

    # ---------------------------------------------------------------- containers
    def _image_env(self, run: PodRun) -> dict[str, str]:
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env = {"PATH": f"{self.venv_bin}:{path}" if self.venv_bin else path, "HOME": str(run.scratch / "home"),
               "HOSTNAME": run.name, "LANG": "C.UTF-8", "TMPDIR": str(run.scratch / "tmp"),
               "KUBERNETES_SERVICE_HOST": self.api_host, "KUBERNETES_SERVICE_PORT": str(self.api_port),
               "KUBERNETES_PORT": f"tcp://{self.api_host}:{self.api_port}"}
        java = os.environ.get("JAVA_HOME") or _java_home()
        if java:
            env["JAVA_HOME"] = java
        return env

    def _field(self, pod: dict[str, Any], run: PodRun, path: str) -> str:
        meta = pod["metadata"]
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                  "spec.nodeName": self.node_name, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                  "status.hostIP": "127.0.0.1", "status.hostIPs": "127.0.0.1", "status.podIP": run.ip or "",
                  "status.podIPs": run.ip or ""}
        if path in simple:
            return simple[path]
        match = re.match(r"^metadata\.(labels|annotations)\['([^']+)'\]$", path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
        raise ContainerConfigError(f'unsupported fieldRef "{path}"')

    def _resource_field(self, c: dict[str, Any], ref: dict[str, Any]) -> str:
        res = c.get("resources") or {}
        kind, _, name = str(ref.get("resource", "")).partition(".")
        value = (res.get(kind) or {}).get(name)
        if value is None and kind == "requests":
            value = (res.get("limits") or {}).get(name)
        amount = quantity(value) if value is not None else self.capacity.get(name, Decimal(0))
        divisor = quantity(ref.get("divisor", "1"))
        return str(math.ceil(amount / divisor))

    def _lookup(self, plural: str, ns: str, ref: dict[str, Any]) -> dict[str, str] | None:
        obj = self.store.try_get(self.store.resource("", plural), ns, ref.get("name", ""))
        if obj is None:
            return None
        data = dict(obj.get("data") or {})
        if plural == "secrets":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        return data

    def _env(self, pod: dict[str, Any], run: PodRun, c: dict[str, Any]) -> dict[str, str]:
        env = self._image_env(run)
        ns = run.ns
        for src in c.get("envFrom") or []:
            for key, plural in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
                if key in src:
                    data = self._lookup(plural, ns, src[key])
                    if data is None:
                        if src[key].get("optional"):
                            continue
                        raise ContainerConfigError(f'{plural[:-1]} "{src[key].get("name")}" not found')
                    env.update({f"{src.get('prefix', '')}{k}": v for k, v in data.items()})
        for item in c.get("env") or []:
            name = item["name"]
            if "valueFrom" in item:
                vf = item["valueFrom"]
                if "fieldRef" in vf:
                    env[name] = self._field(pod, run, vf["fieldRef"]["fieldPath"])
                elif "resourceFieldRef" in vf:
                    env[name] = self._resource_field(c, vf["resourceFieldRef"])
                else:
                    for key, plural in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                        if key in vf:
                            ref = vf[key]
                            data = self._lookup(plural, ns, ref)
                            if data is None or ref.get("key") not in data:
                                if ref.get("optional"):
                                    break
                                what = "configmap" if plural == "configmaps" else "secret"
                                raise ContainerConfigError(f'couldn\'t find key {ref.get("key")} in {what} '
                                                           f'{ns}/{ref.get("name")}')
                            env[name] = data[ref["key"]]
                            break
            else:
                env[name] = expand(item.get("value", ""), env)
        return env

    def _argv(self, pod: dict[str, Any], c: dict[str, Any], env: dict[str, str]) -> list[str]:
        argv: list[str] | None = None
        if not c.get("command"):
            for hook in self.entrypoints:
                argv = hook(pod, c)
                if argv:
                    break
        if not argv:
            argv = list(c.get("command") or []) + list(c.get("args") or [])
        if not argv:
            raise ContainerCreateError("simulator: the container sets no command or args, and the entrypoint of "
                                       f'image "{c.get("image")}" is unknown here')
        return [expand(a, env) for a in argv]

    def _start(self, run: PodRun, pod: dict[str, Any], c: ContainerRun) -> None:
        try:
            env = self._env(pod, run, c.spec)
            argv = self._argv(pod, c.spec, env)
            cwd = c.spec.get("workingDir") or str(run.scratch)
            if not os.path.isdir(cwd):
                raise ContainerCreateError(f'simulator: workingDir "{cwd}" does not exist on this machine')
        except ContainerConfigError as exc:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self.record_event(pod, "Failed", f"Error: {exc}", "Warning")
            c.next_start = time.monotonic() + self.backoff_base
            return
        except ContainerCreateError as exc:
            c.state = {"waiting": {"reason": "CreateContainerError", "message": str(exc)}}
            self.record_event(pod, "Failed", f"Error: {exc}", "Warning")
            c.next_start = time.monotonic() + self.backoff_base
            return
        exe = argv[0]
        found = (os.access(exe, os.X_OK) and os.path.isfile(exe)) if "/" in exe else shutil.which(exe, path=env["PATH"])
        c.log = self.logs.start(run.ns, run.name, run.uid, c.name)
        c.container_id = f"sim://{os.urandom(16).hex()}"
        started = now()
        self.record_event(pod, "Created", f"Created container: {c.name}", "Normal")
        if not found:
            message = (f'failed to create containerd task: failed to create shim task: OCI runtime create failed: '
                       f'runc create failed: unable to start container process: exec: "{exe}": executable file not '
                       "found in $PATH: unknown")
            self.logs.close(c.log)
            self.record_event(pod, "Failed", f"Error: {message}", "Warning")
            self._exited(run, pod, c, 128, "StartError", started, message)
            return
        c.proc = subprocess.Popen(
            self.network.wrap(argv, cwd=cwd, hostname=run.name), executable=self._nsenter, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        c.started_once = True
        with contextlib.suppress(psutil.Error):
            self.started[c.proc.pid] = psutil.Process(c.proc.pid).create_time()
        c.state = {"running": {"startedAt": started}}
        self.record_event(pod, "Started", f"Started container {c.name}", "Normal")
        threading.Thread(target=self._pump, args=(c.proc, c.log), daemon=True,
                         name=f"log-{run.name}-{c.name}").start()

    def _pump(self, proc: subprocess.Popen[bytes], log: ContainerLog) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                self.logs.write(log, data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stdout.close()
            self.logs.close(log)

    def _reap(self, run: PodRun, pod: dict[str, Any], c: ContainerRun) -> None:
        if c.proc is None or c.proc.poll() is None:
            return
        # As a kubelet does, the container is terminated once its output is in its log: the pump thread may
        # still be draining the pipe. A process the container left behind may hold the pipe open, so the
        # wait is bounded.
        if c.log is not None and not c.log.closed:
            if c.exited_at is None:
                c.exited_at = time.monotonic()
            if time.monotonic() - c.exited_at < LOG_DRAIN_S:
                return
        c.exited_at = None
        rc = c.proc.returncode
        code = 128 - rc if rc < 0 else rc
        started = c.state.get("running", {}).get("startedAt", now())
        c.proc = None
        self._exited(run, pod, c, code, "Completed" if code == 0 else "Error", started)

    def _exited(self, run: PodRun, pod: dict[str, Any], c: ContainerRun, code: int, reason: str, started: str,
                message: str | None = None) -> None:
        terminated: dict[str, Any] = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now(),
                                      "containerID": c.container_id}
        if message:
            terminated["message"] = message
        c.exit_code = code
        policy = run.restart_policy
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        if c.init and code == 0:
            restart = False
        if not restart:
            c.state, c.done = {"terminated": terminated}, True
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** c.restarts)
        c.restarts += 1
        c.last_state = {"terminated": terminated}
        c.next_start = time.monotonic() + delay
        c.state = {"waiting": {"reason": "CrashLoopBackOff",
                               "message": f"back-off {delay:g}s restarting failed container={c.name} "
                               f"pod={run.name}_{run.ns}({run.uid})"}}
        self.record_event(pod, "BackOff", "Back-off restarting failed container "
                          f"{c.name} in pod {run.name}_{run.ns}({run.uid})", "Warning")

    def _terminal(self, run: PodRun) -> bool:
        return run.failed or (bool(run.containers) and all(c.done for c in run.containers))

    # ---------------------------------------------------------------- status
    def _phase(self, run: PodRun) -> str:
        if run.failed:
            return "Failed"
        if run.containers and all(c.done for c in run.containers):
            return "Succeeded" if all(c.exit_code == 0 for c in run.containers) else "Failed"
        if any(c.started_once for c in run.containers) and all(c.pulled for c in run.all_runs()):
            return "Running"
        return "Pending"

    def _cond(self, run: PodRun, kind: str, ok: bool, reason: str | None = None,
              message: str | None = None) -> dict[str, Any]:
        status = "True" if ok else "False"
        key = f"{kind}={status}"
        if run.transitions.get(kind, "").split("|")[0] != key:
            run.transitions[kind] = f"{key}|{now()}"
        cond: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None,
                                "lastTransitionTime": run.transitions[kind].split("|")[1]}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        return cond

    def _container_status(self, c: ContainerRun) -> dict[str, Any]:
        status: dict[str, Any] = {"name": c.name, "image": c.spec.get("image"), "imageID": "",
                                  "ready": c.running and not c.init, "started": c.running,
                                  "restartCount": c.restarts, "state": c.state, "lastState": c.last_state}
        if c.container_id:
            status["containerID"] = c.container_id
        if c.pulled:
            status["imageID"] = f"sim-image://{c.spec.get('image')}"
        return status

    def _write_status(self, run: PodRun, pod: dict[str, Any]) -> None:
        old = pod.get("status") or {}
        status: dict[str, Any] = {"phase": self._phase(run), "qosClass": old.get("qosClass", "BestEffort")}
        if not run.scheduled:
            status["conditions"] = [self._cond(run, "PodScheduled", False, "Unschedulable", run.unschedulable)]
        else:
            inits_done = all(c.done and c.exit_code == 0 for c in run.inits)
            ready = bool(run.containers) and all(c.running for c in run.containers)
            terminal = self._terminal(run)
            reason = "PodCompleted" if terminal else (None if ready else "ContainersNotReady")
            not_ready = [c.name for c in run.containers if not c.running]
            msg = None if ready or terminal else f"containers with unready status: [{' '.join(not_ready)}]"
            status["conditions"] = [
                self._cond(run, "PodReadyToStartContainers", True),
                self._cond(run, "Initialized", inits_done or terminal, None if inits_done else "ContainersNotInitialized"),
                self._cond(run, "Ready", ready, reason, msg),
                self._cond(run, "ContainersReady", ready, reason, msg),
                self._cond(run, "PodScheduled", True),
            ]
            status.update({"hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "podIP": run.ip,
                           "podIPs": [{"ip": run.ip}], "startTime": run.start_time})
            if run.inits:
                status["initContainerStatuses"] = [self._container_status(c) for c in run.inits]
            status["containerStatuses"] = [self._container_status(c) for c in run.containers]
        if status != old:
            self.store.mutate(self._pods, run.ns, run.name, lambda p: p.__setitem__("status", status),
                              subresource="status")

    # ---------------------------------------------------------------- stopping
    def _stop_async(self, run: PodRun, why: str, drop_logs: bool = False) -> None:
        if run.stopping:
            if drop_logs:
                self.logs.drop(run.ns, run.name, run.uid)
            return
        run.stopping = True
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": run.name, "namespace": run.ns, "uid": run.uid}}
        procs = [(c, c.proc) for c in run.all_runs() if c.proc is not None and c.proc.poll() is None]
        for c, _ in procs:
            self.record_event(pod, "Killing", f"Stopping container {c.name}", "Normal")

        def stop() -> None:
            for _, proc in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + run.grace
            for _, proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
            for _, proc in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            if drop_logs:
                self.logs.drop(run.ns, run.name, run.uid)
            shutil.rmtree(run.scratch, ignore_errors=True)
            run.stopped.set()
            # a terminating pod goes once its containers stopped (the kubelet's final delete)
            current = self.store.try_get(self._pods, run.ns, run.name)
            if current is not None and current["metadata"]["uid"] == run.uid \
                    and current["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(ApiError):
                    self.store.delete(self._pods, run.ns, run.name, grace_period=0)

        thread = threading.Thread(target=stop, daemon=True, name=f"stop-{run.name}")
        thread.start()
        self._stoppers.append(thread)


def _java_home() -> str | None:
    java = shutil.which("java")
    if not java:
        return None
    real = Path(java).resolve()
    return str(real.parent.parent) if real.parent.name == "bin" else None


def log_time(t: float) -> str:
    return rfc3339nano(t)
