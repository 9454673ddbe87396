"""A Kueue stand-in: admits suspended jobs that carry the queue-name label, by a quota per queue.

::

    with KueueStandIn(k8s.server.store, {"one-at-a-time": 1}):
        ... create SparkApplications labelled kueue.x-k8s.io/queue-name=one-at-a-time, suspended ...

Not Kueue: no Workload, ClusterQueue, ResourceFlavor or LocalQueue objects, no resource quotas, no
preemption. What it keeps of Kueue's job integrations is the contract a job's creator sees: an object
created with ``kueue.x-k8s.io/queue-name=<queue>`` and its suspend field true (``spec.suspend``;
``spec.runPolicy.suspend`` on a PyTorchJob) stays suspended until its queue has room, then Kueue sets
the field false ("admits" it); an admitted job holds its place until it finishes (its status says so)
or is deleted. The quota is a number of admitted jobs per queue (a queue not named has none: it never
admits); jobs are admitted oldest first (``StrictFIFO``). It reads and writes only the objects, through
the store the operator simulators use, so it runs on the HTTP stand-in and on a real API server alike.
:attr:`admissions` records ``(queue, kind, name, seconds waited)`` for the tests.
"""

from __future__ import annotations

import calendar
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.manifests import pytorch, ray, spark
from airflow_provider_flyte.manifests.kueue import QUEUE_LABEL, SUSPEND_PATHS, suspended
from tests.support.k8s.store import ApiError

#: The kinds it admits: (group, plural, the module that reads whether the job ended).
KINDS = {"SparkApplication": ("sparkoperator.k8s.io", "sparkapplications", spark),
         "RayJob": ("ray.io", "rayjobs", ray), "PyTorchJob": ("kubeflow.org", "pytorchjobs", pytorch)}


class KueueStandIn:
    def __init__(self, store: Any, quotas: Mapping[str, int], *, interval: float = 0.1) -> None:
        self.store = store
        self.quotas = dict(quotas)
        self.interval = interval
        self.admissions: list[tuple[str, str, str, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> KueueStandIn:
        self._thread = threading.Thread(target=self._loop, name="kueue-stand-in", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        assert not self.errors, "Kueue stand-in errors:\n" + "\n".join(self.errors)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - kept for the test to see
                self.errors.append(traceback.format_exc())

    def _queued_objects(self) -> list[tuple[Any, dict[str, Any]]]:
        found = []
        for kind, (group, plural, _) in KINDS.items():
            try:
                res = self.store.resource(group, plural)
            except Exception:  # noqa: BLE001 - the kind is not served here
                continue
            for obj in self.store.list(res, label_selector=QUEUE_LABEL)[0]:
                if obj.get("kind", kind) == kind and not (obj.get("metadata") or {}).get("deletionTimestamp"):
                    found.append((res, obj))
        return found

    def sync(self) -> None:
        """One pass: count each queue's admitted unfinished jobs, admit the oldest waiting ones up to the quota."""
        admitted: dict[str, int] = {}
        waiting: list[tuple[Any, dict[str, Any]]] = []
        for res, obj in self._queued_objects():
            queue = obj["metadata"]["labels"][QUEUE_LABEL]
            if suspended(obj):
                waiting.append((res, obj))
            elif not KINDS[obj["kind"]][2].job_state(obj).done:
                admitted[queue] = admitted.get(queue, 0) + 1
        waiting.sort(key=lambda item: (item[1]["metadata"].get("creationTimestamp") or "", item[1]["metadata"]["name"]))
        for res, obj in waiting:
            meta = obj["metadata"]
            queue = meta["labels"][QUEUE_LABEL]
            if admitted.get(queue, 0) >= self.quotas.get(queue, 0):
                continue
            if self._admit(res, obj):
                admitted[queue] = admitted.get(queue, 0) + 1
                self.admissions.append((queue, obj["kind"], meta["name"], _age(meta.get("creationTimestamp"))))

    def _admit(self, res: Any, obj: dict[str, Any]) -> bool:
        path = SUSPEND_PATHS[obj["kind"]]

        def unsuspend(current: dict[str, Any]) -> None:
            node = current
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = False

        try:
            return self.store.mutate(res, obj["metadata"]["namespace"], obj["metadata"]["name"], unsuspend) is not None
        except ApiError as err:
            if err.code in (404, 409):
                return False
            raise


def _age(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    created = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    return max(0.0, time.time() - created)


__all__ = ["KINDS", "KueueStandIn"]
