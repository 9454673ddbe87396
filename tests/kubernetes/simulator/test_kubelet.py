"""The simulated kubelet: real processes behind pods, as a kubelet would report them."""

from __future__ import annotations

import sys
import time
from decimal import Decimal

import psutil
import pytest
from kubernetes import client

from tests.support.k8s.fixtures import K8s


def _pod(name: str, script: str, *, restart: str = "Never", image: str = "img:1", **container: object) -> dict:
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": [
                {"name": "main", "image": image, "command": ["python", "-c", script], **container}]}}


def _phase(k8s: K8s, name: str) -> str:
    return k8s.core.read_namespaced_pod(name, "default").status.phase


def _log(k8s: K8s, name: str, **kw: object) -> str:
    return k8s.core.read_namespaced_pod_log(name, "default", _preload_content=False, **kw).data.decode()


def test_pod_runs_its_own_command_with_downward_api_env(k8s: K8s) -> None:
    script = ("import os, socket, sys; print('ip', os.environ['MY_IP'], 'name', os.environ['MY_NAME'], 'ns', "
              "os.environ['MY_NS'], 'greeting', os.environ['GREETING']); print('host', socket.gethostname(), "
              "socket.gethostbyname(socket.gethostname())); print('cwd', os.getcwd()); "
              "print('exe', sys.executable); print('leak', os.environ.get('AIRFLOW_HOME')); print('err', file=sys.stderr)")
    k8s.core.create_namespaced_pod("default", _pod("env", script, workingDir="/tmp", env=[
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "WHO", "value": "pod $(MY_NAME)"}, {"name": "GREETING", "value": "hello $(WHO)"}]))
    k8s.sim.wait_for(lambda: _phase(k8s, "env") == "Succeeded", 30)
    pod = k8s.core.read_namespaced_pod("env", "default")
    ip = pod.status.pod_ip
    assert ip.startswith("127.") and ip != "127.0.0.1" and pod.spec.node_name == "k8s-sim-node"
    log = _log(k8s, "env")
    assert f"ip {ip} name env ns default greeting hello pod env" in log
    assert f"host env {ip}" in log and "cwd /tmp" in log and "leak None" in log and "err" in log
    assert f"exe {sys.prefix}" in log  # the venv stands for the image
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    reasons = [e.reason for e in k8s.core.list_namespaced_event("default", field_selector="involvedObject.name=env").items]
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(reasons)
    k8s.core.delete_namespaced_pod("env", "default")


def test_log_follow_tail_and_failure_phase(k8s: K8s) -> None:
    script = "import time\nfor i in range(6):\n    print('line', i, flush=True); time.sleep(0.3)\nraise SystemExit(3)"
    k8s.core.create_namespaced_pod("default", _pod("talk", script))
    k8s.sim.wait_for(lambda: _phase(k8s, "talk") == "Running", 30)
    stream = k8s.core.read_namespaced_pod_log("talk", "default", follow=True, _preload_content=False)
    followed = b"".join(stream.stream()).decode()  # ends when the container exits
    assert [ln for ln in followed.splitlines() if ln.startswith("line")] == [f"line {i}" for i in range(6)]
    k8s.sim.wait_for(lambda: _phase(k8s, "talk") == "Failed", 10)
    assert _log(k8s, "talk", tail_lines=2).splitlines() == ["line 4", "line 5"]
    stamped = _log(k8s, "talk", tail_lines=1, timestamps=True)
    assert stamped.endswith(" line 5\n") and stamped[4] == "-" and stamped.split(" ")[0].endswith("Z")
    state = k8s.core.read_namespaced_pod("talk", "default").status.container_statuses[0].state.terminated
    assert state.exit_code == 3 and state.reason == "Error"
    k8s.core.delete_namespaced_pod("talk", "default")


def test_deleting_a_pod_stops_its_processes(k8s: K8s) -> None:
    # the container forks a daemon in a new session: it must die with the container anyway
    script = ("import subprocess, time; subprocess.Popen(['sleep', '300'], start_new_session=True); "
              "print('up', flush=True); time.sleep(300)")
    k8s.core.create_namespaced_pod("default", _pod("sleepy", script))
    k8s.sim.wait_for(lambda: "up" in _log(k8s, "sleepy") if _phase(k8s, "sleepy") == "Running" else False, 30)
    k8s.sim.wait_for(lambda: any("sleep 300" in " ".join(_cmdline(p)) for p in k8s.sim.pids("default", "sleepy")), 10)
    pids = k8s.sim.pids("default", "sleepy")
    start = time.monotonic()
    deleted = k8s.core.delete_namespaced_pod("sleepy", "default")
    # graceful deletion: the API answers with the pod Terminating (deletionTimestamp); the kubelet removes it
    # once its containers stopped, which can be at once (a read right after the delete may already 404)
    assert deleted.metadata.deletion_timestamp is not None
    k8s.sim.wait_for(lambda: not k8s.core.list_namespaced_pod("default", field_selector="metadata.name=sleepy").items,
                     10)
    k8s.sim.wait_for(lambda: not [p for p in pids if psutil.pid_exists(p)
                                  and psutil.Process(p).status() != psutil.STATUS_ZOMBIE], 10)
    assert time.monotonic() - start < 10
    assert k8s.sim.live_processes() == []


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def test_image_pull_back_off(k8s: K8s) -> None:
    k8s.core.create_namespaced_pod("default", _pod("nopull", "print(1)", image="repo/img:pull-fails"))

    def reason() -> str | None:
        statuses = k8s.core.read_namespaced_pod("nopull", "default").status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting else None
    k8s.sim.wait_for(lambda: reason() == "ErrImagePull", 15)
    k8s.sim.wait_for(lambda: reason() == "ImagePullBackOff", 15)
    assert _phase(k8s, "nopull") == "Pending" and k8s.sim.pids("default", "nopull") == []
    with pytest.raises(client.ApiException) as waiting:
        k8s.core.read_namespaced_pod_log("nopull", "default")
    assert waiting.value.status == 400 and "trying and failing to pull image" in waiting.value.body
    events = k8s.core.list_namespaced_event("default", field_selector="involvedObject.name=nopull").items
    assert any(e.reason == "Failed" and "Failed to pull image" in e.message for e in events)
    assert any(e.reason == "BackOff" for e in events)
    k8s.core.delete_namespaced_pod("nopull", "default")


def test_crash_loop_back_off(k8s: K8s) -> None:
    k8s.core.create_namespaced_pod("default", _pod("crash", "print('boom', flush=True); raise SystemExit(2)",
                                                   restart="OnFailure"))

    def status() -> client.V1ContainerStatus | None:
        statuses = k8s.core.read_namespaced_pod("crash", "default").status.container_statuses
        return statuses[0] if statuses else None
    k8s.sim.wait_for(lambda: (s := status()) and s.restart_count >= 2 and s.state.waiting is not None, 30)
    s = status()
    assert s.state.waiting.reason == "CrashLoopBackOff" and "back-off" in s.state.waiting.message
    assert s.last_state.terminated.exit_code == 2 and s.last_state.terminated.reason == "Error"
    assert _phase(k8s, "crash") == "Running"  # a crash-looping pod never reaches Failed
    assert "boom" in _log(k8s, "crash", previous=True)
    events = k8s.core.list_namespaced_event("default", field_selector="involvedObject.name=crash").items
    assert any(e.reason == "BackOff" and e.type == "Warning" for e in events)
    k8s.core.delete_namespaced_pod("crash", "default")


def test_unschedulable_when_requests_exceed_capacity(k8s: K8s) -> None:
    k8s.sim.kubelet.capacity = {**k8s.sim.kubelet.capacity, "cpu": Decimal(2)}
    k8s.core.create_namespaced_pod("default", _pod("big", "print(1)", resources={"requests": {"cpu": "3"}}))
    k8s.core.create_namespaced_pod("default", _pod("gpu", "print(1)", resources={"limits": {"nvidia.com/gpu": "1"}}))

    def scheduled(name: str) -> client.V1PodCondition | None:
        conds = k8s.core.read_namespaced_pod(name, "default").status.conditions or []
        return next((c for c in conds if c.type == "PodScheduled"), None)
    for name, what in (("big", "Insufficient cpu"), ("gpu", "Insufficient nvidia.com/gpu")):
        cond = k8s.sim.wait_for(lambda n=name: scheduled(n), 15)
        assert (cond.status, cond.reason) == ("False", "Unschedulable") and what in cond.message
        assert _phase(k8s, name) == "Pending"
        events = k8s.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
        assert [e.reason for e in events] == ["FailedScheduling"]
    k8s.core.delete_namespaced_pod("big", "default")
    k8s.core.delete_namespaced_pod("gpu", "default")


def test_missing_executable_is_a_start_error(k8s: K8s) -> None:
    body = _pod("noexe", "")
    body["spec"]["containers"][0]["command"] = ["dask-scheduler"]  # not in this "image" (distributed 2026.x)
    k8s.core.create_namespaced_pod("default", body)
    k8s.sim.wait_for(lambda: _phase(k8s, "noexe") == "Failed", 15)
    term = k8s.core.read_namespaced_pod("noexe", "default").status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (128, "StartError") and "executable file not found" in term.message
    k8s.core.delete_namespaced_pod("noexe", "default")


def test_async_hook_reads_logs_and_pod_events(k8s: K8s) -> None:
    import asyncio

    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

    k8s.core.create_namespaced_pod("default", _pod("alog", "print('one'); print('two')"))
    k8s.sim.wait_for(lambda: _phase(k8s, "alog") == "Succeeded", 30)

    async def run() -> tuple[list[str], list[str]]:
        hook = AsyncKubernetesHook(conn_id=k8s.conn_id)
        lines = await hook.read_logs("alog", "default", container_name="main")
        events = await hook.get_pod_events("alog", "default")
        return lines, [e.reason for e in events.items]

    lines, reasons = asyncio.run(run())
    assert [ln.split(" ", 1)[1] for ln in lines if ln.strip()] == ["one", "two"]  # timestamps=True
    assert "Started" in reasons
    k8s.core.delete_namespaced_pod("alog", "default")
