"""The operator simulator: the four engine operators, two built-in controllers and a kubelet, in threads.

::

    with KubeApiServer() as server, OperatorSimulator(server) as sim:
        ... create a SparkApplication / RayJob / DaskJob / PyTorchJob through the server ...
        sim.wait_for(lambda: ..., timeout=60)
        sim.pids(namespace="default", pod="x-driver")   # the pod's live processes
        sim.freeze("SparkApplication")                  # that operator stops reconciling
    # stop(): every process is stopped, the pod network namespace is gone

One loop thread reconciles every controller (:mod:`tests.support.k8s.operators`) and the kubelet
(:mod:`tests.support.k8s.kubelet`) every ``tick`` seconds, or at once after a change in the store; it
keeps the pod network's ``/etc/hosts`` (:mod:`tests.support.k8s.sandbox`) in step with pods and Services.
An exception in a controller is kept in :attr:`OperatorSimulator.errors` (the fixtures fail the
test on it) and the loop goes on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from tests.support.k8s.kubelet import Kubelet, pull_fails_default
from tests.support.k8s.operators import ALL_CONTROLLERS, Controller, pod_ready
from tests.support.k8s.sandbox import HttpProber, PodNetwork
from tests.support.k8s.store import ApiError, label_matcher, now

if TYPE_CHECKING:
    from tests.support.k8s.real.server import RealApiServer
    from tests.support.k8s.server import KubeApiServer

#: Kinds whose operator can be frozen (:meth:`OperatorSimulator.freeze`).
OPERATOR_KINDS = ("SparkApplication", "RayJob", "DaskJob", "PyTorchJob")
_FAMILY = {"RayJob": ("RayJob", "RayCluster"), "DaskJob": ("DaskJob", "DaskCluster", "DaskWorkerGroup")}


def default_venv_bin() -> str:
    """The directory of the running interpreter (``/work/main/.venv/bin``): the pods' "image"."""
    return str(Path(sys.executable).parent)


class OperatorSimulator:
    """Operators + kubelet over a :class:`KubeApiServer`'s store.

    :param capacity: the node's allocatable resources (``{"cpu": "16", "memory": "64Gi", "pods": "110"}``
        by default; a resource not listed, e.g. ``nvidia.com/gpu``, has capacity 0).
    :param node_labels: extra labels of the node (for ``nodeSelector``).
    :param frozen: operator kinds that never reconcile (see :meth:`freeze`).
    :param pull_fails: which images cannot be pulled (default: a tag ending in ``pull-fails``).
    :param grace_period: cap on ``terminationGracePeriodSeconds`` (SIGTERM, then SIGKILL).
    :param backoff_base / backoff_max: restart and image-pull back-off (the kubelet's 10 s / 300 s scaled down).
    :param controllers: the controllers to run (default :data:`ALL_CONTROLLERS`; on a real API server whose
        controller-manager runs the Deployment and Job controllers, the four operators' only).
    """

    def __init__(self, server: KubeApiServer | RealApiServer, *, directory: str | Path | None = None,
                 capacity: dict[str, str] | None = None, node_labels: dict[str, str] | None = None,
                 venv_bin: str | None = None, frozen: Iterable[str] = (),
                 pull_fails: Callable[[str], bool] = pull_fails_default, grace_period: float = 3.0,
                 backoff_base: float = 1.0, backoff_max: float = 8.0, tick: float = 0.2,
                 controllers: Iterable[type[Controller]] = ALL_CONTROLLERS) -> None:
        self.server = server
        self.store = server.store
        self._owned_dir = directory is None
        # short: Ray's unix socket paths under a pod's --temp-dir must stay under 107 characters
        self.directory = Path(directory or tempfile.mkdtemp(prefix="k8s-sim-", dir="/tmp"))
        self.node_name = "k8s-sim-node"
        self.network = PodNetwork(self.directory)
        self.venv_bin = venv_bin or default_venv_bin()
        self.prober = HttpProber(self.network, str(Path(self.venv_bin) / "python"))
        self.backoff_base = backoff_base
        self.kubelet = Kubelet(
            self.store, server.logs, self.network, directory=self.directory / "pods", record_event=self._pod_event,
            node_name=self.node_name, capacity=capacity, node_labels=node_labels, venv_bin=self.venv_bin,
            pull_fails=pull_fails, grace_period=grace_period, backoff_base=backoff_base, backoff_max=backoff_max,
            api_host=server.host, api_port=server.port)
        self.kubelet.on_scheduled = self._sync_hosts
        self.controllers: list[Controller] = [cls(self) for cls in controllers]
        self.frozen: set[str] = set()
        for kind in frozen:
            self.freeze(kind)
        self.tick = tick
        self.errors: list[str] = []
        self._events: dict[tuple[str, str, str], str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hosts: dict[str, str] = {}
        self.started = False

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> OperatorSimulator:
        (self.directory / "pods").mkdir(parents=True, exist_ok=True)
        self.network.start()
        self.store.add_listener(lambda event: self._wake.set())
        self._thread = threading.Thread(target=self._loop, name="k8s-sim-operators", daemon=True)
        self._thread.start()
        self.started = True
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.kubelet.shutdown()
        self.prober.stop()
        self.network.stop()
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.started = False

    def __enter__(self) -> OperatorSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- test controls
    def freeze(self, kind: str) -> None:
        """The operator of ``kind`` stops reconciling (an operator that never moves the status):
        objects stay as they are, no pods are created; the kubelet still runs existing pods."""
        if kind not in OPERATOR_KINDS:
            raise ValueError(f"not an operator kind: {kind} (one of {OPERATOR_KINDS})")
        self.frozen.update(_FAMILY.get(kind, (kind,)))

    def unfreeze(self, kind: str) -> None:
        self.frozen.difference_update(_FAMILY.get(kind, (kind,)))
        self._wake.set()

    def pids(self, namespace: str | None = None, pod: str | None = None) -> list[int]:
        """Live processes of the simulated containers (all pods, or one pod)."""
        return self.kubelet.pids(namespace, pod)

    def live_processes(self) -> list[psutil.Process]:
        """Every live process in the pod network namespace (the helper processes excepted): what the
        simulated pods started, whatever became of its parent."""
        target = self.network.netns_id
        holder = self.network._holder
        skip = {os.getpid()} | ({holder.pid} if holder is not None else set())
        prober = self.prober._proc
        if prober is not None:
            skip.add(prober.pid)
        out = []
        for proc in psutil.process_iter():
            if proc.pid in skip:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE or (holder is not None and proc.ppid() == holder.pid):
                    continue  # the holder's own `sleep 1`
                started = self.kubelet.started.get(proc.pid)
                mine = started is not None and abs(proc.create_time() - started) < 1
                if mine or (target and os.readlink(f"/proc/{proc.pid}/ns/net") == target):
                    out.append(proc)
            except (OSError, psutil.Error):
                continue
        return out

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.2,
                 what: str = "condition") -> Any:
        """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` (with
        :attr:`errors` and the objects' states) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.errors:
                raise AssertionError("simulator error:\n" + "\n".join(self.errors))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}; objects: {self.describe()}")
            time.sleep(interval)

    def describe(self) -> list[str]:
        """One line per object: kind, name and its state (for failure messages)."""
        out = []
        for res, obj in self.store.all_objects():
            if res.plural in ("events", "namespaces"):
                continue
            status = obj.get("status") or {}
            state: Any = status.get("phase") or status.get("applicationState") or status.get("jobDeploymentStatus") \
                or status.get("jobStatus") or [c.get("type") for c in status.get("conditions") or []
                                               if c.get("status") == "True"]
            if res.plural == "pods":
                state = (status.get("phase"), [cs.get("state") for cs in status.get("containerStatuses") or []])
            out.append(f"{res.kind} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}: {state}")
        return out

    # ---------------------------------------------------------------- events
    def record_event(self, obj: dict[str, Any], reason: str, message: str, kind: str = "Normal",
                     component: str = "controller") -> None:
        """A core/v1 Event about ``obj`` (repeated ones are counted, as the event recorder does)."""
        meta = obj["metadata"]
        key = (meta.get("uid", ""), reason, message)
        events = self.store.resource("", "events")
        stamp = now()
        name = self._events.get(key)
        if name is not None:
            def bump(e: dict[str, Any]) -> None:
                e["count"] = int(e.get("count", 1)) + 1
                e["lastTimestamp"] = stamp
            if self.store.mutate(events, meta.get("namespace") or "default", name, bump) is not None:
                return
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        self._events[key] = name
        with contextlib.suppress(ApiError):
            self.store.create(events, meta.get("namespace") or "default", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": meta.get("namespace") or "default"},
                "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", ""),
                                   "name": meta["name"], "namespace": meta.get("namespace", ""),
                                   "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")},
                "reason": reason, "message": message, "type": kind,
                "source": {"component": component, "host": self.node_name},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "eventTime": None,
                "reportingComponent": component, "reportingInstance": self.node_name})

    def _pod_event(self, pod: dict[str, Any], reason: str, message: str, kind: str) -> None:
        component = "default-scheduler" if reason in ("Scheduled", "FailedScheduling") else "kubelet"
        self.record_event(pod, reason, message, kind, component)

    # ---------------------------------------------------------------- the loop
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            for ctrl in self.controllers:
                if ctrl.kind in self.frozen:
                    continue
                self._guard(ctrl.kind, ctrl.sync)
            self._guard("kubelet", self.kubelet.sync)
            self._guard("dns", self._sync_hosts)

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - kept for the test to see
            self.errors.append(f"{what}: {traceback.format_exc()}")
            time.sleep(self.tick)

    def _sync_hosts(self) -> None:
        """Pod names and Service names → pod IPs in the pod network's ``/etc/hosts``."""
        entries: dict[str, str] = {}
        by_ns: dict[str, list[dict[str, Any]]] = {}
        for run in list(self.kubelet.runs.values()):
            if run.ip and not run.stopping:
                entries[run.name] = run.ip
        pods, _ = self.store.list(self.store.resource("", "pods"))
        for pod in pods:
            by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
            ip = (pod.get("status") or {}).get("podIP")
            if ip and pod["spec"].get("hostname") and pod["spec"].get("subdomain"):
                sub = f"{pod['spec']['hostname']}.{pod['spec']['subdomain']}.{pod['metadata']['namespace']}"
                entries[f"{sub}.svc.cluster.local"] = ip
        services, _ = self.store.list(self.store.resource("", "services"))
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector")
            if not selector:
                continue
            match = label_matcher(",".join(f"{k}={v}" for k, v in selector.items()))
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            targets = sorted((p for p in by_ns.get(ns, []) if match(p["metadata"].get("labels") or {})
                              and (p.get("status") or {}).get("podIP")),
                             key=lambda p: (not pod_ready(p), p["metadata"]["name"]))
            if not targets:
                continue
            ip = targets[0]["status"]["podIP"]
            for alias in (name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"):
                entries[alias] = ip
        if entries != self._hosts:
            self.network.set_hosts(entries)
            self._hosts = entries
