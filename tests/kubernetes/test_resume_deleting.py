"""A retry whose stored job is still being deleted (an earlier try's foreground deletion, a finalizer) waits
for it to go and then creates a new job: it neither reattaches to the dying object nor adopts it through a
409 on its create."""

from __future__ import annotations

import threading
import time
from typing import Any

from airflow_provider_flyte.remote.jobs import KubernetesJobs
from airflow_provider_flyte.remote.resume import identity, resume

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


def test_a_job_being_deleted_is_waited_for_not_reattached(k8s: Any) -> None:
    k8s.sim.freeze("RayJob")  # no operator: the object's status stays as written
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RayJob",
            "metadata": {"name": "resume-deleting", "finalizers": ["test.flyte/hold"]},
            "spec": {"entrypoint": "python -c pass"}}
    obj = k8s.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    stored = identity(obj, "RayJob")
    jobs = KubernetesJobs(k8s.conn_id, "airflow_provider_flyte.manifests.ray", "default")
    assert jobs.get("resume-deleting") is not None  # the client is loaded: resume() reads at once below
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "resume-deleting")
    dying = k8s.custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "resume-deleting")
    assert dying["metadata"].get("deletionTimestamp")

    def release_the_finalizer() -> None:
        time.sleep(3)
        k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "resume-deleting",
                                                  {"metadata": {"finalizers": None}})

    releaser = threading.Thread(target=release_the_finalizer)
    releaser.start()
    started = time.monotonic()
    try:
        decided = resume(jobs, stored)
    finally:
        releaser.join()
    assert decided.obj is None, decided
    assert "being deleted" in decided.why and "creating a new job" in decided.why
    assert time.monotonic() - started >= 2.5  # it waited for the deletion instead of deciding at once
