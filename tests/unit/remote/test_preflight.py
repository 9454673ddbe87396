"""The connection check's pieces that need no API server (the rest: tests/kubernetes/real/test_check.py)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_flyte.remote import preflight
from airflow_provider_flyte.remote.preflight import FAILED, INFO, OK, ConnectionCheck, Line


def test_only_a_fatal_failure_makes_the_exit_status() -> None:
    assert preflight.exit_status([Line(OK, "a"), Line(INFO, "b")]) == 0
    assert preflight.exit_status([Line(OK, "a"), Line(FAILED, "no pods/log: tasks still run")]) == 0
    assert preflight.exit_status([Line(OK, "a"), Line(FAILED, "no create", fatal=True)]) == 1
    assert str(Line(FAILED, "x")) == "✗ x"


def test_bounded_returns_raises_and_gives_up_in_time() -> None:
    assert preflight.bounded(1, lambda: 3) == 3
    with pytest.raises(KeyError):
        preflight.bounded(1, lambda: {}["x"])
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
        preflight.bounded(0.2, lambda: time.sleep(5))
    assert time.monotonic() - started < 1


def test_the_staging_store_is_probed_and_left_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path}")
    line = ConnectionCheck("unused").staging()
    assert line.mark == OK and line.text.startswith(f"staging store file://{tmp_path} is writable from here"), line
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_no_staging_store_is_a_failure_naming_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__FLYTE__STAGING_URI", raising=False)
    line = ConnectionCheck("unused").staging()
    assert line.fatal and line.mark == FAILED and "AIRFLOW__FLYTE__STAGING_URI" in line.text, line


def test_a_missing_connection_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_K8S", raising=False)
    check = ConnectionCheck("no_such_k8s")
    line = check.connect()
    assert line.fatal and "connection 'no_such_k8s' cannot be loaded" in line.text and "Fix: create it" in line.text
    assert check.api is None


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_a_silent_api_server_fails_within_the_timeout(silent_server: int, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{silent_server}', "
        "insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n")
    monkeypatch.setenv("AIRFLOW_CONN_SILENT_K8S", '{"conn_type": "kubernetes", "extra": {"kube_config_path": "'
                       + str(kubeconfig) + '", "namespace": "jobs"}}')
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    started = time.monotonic()
    lines = preflight.check_connection("silent_k8s", timeout=0.5)
    took = time.monotonic() - started
    assert [line.mark for line in lines] == [OK, FAILED, INFO, OK], [str(line) for line in lines]
    assert lines[1].text.startswith(f"API server https://127.0.0.1:{silent_server} did not answer within 0.5 s")
    assert preflight.exit_status(lines) == 1
    assert took < 5, f"{took:.1f} s"


def test_no_queue_named_means_no_queue_line() -> None:
    assert ConnectionCheck("unused").queue_line() is None


def _kubeconfig_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conn_id: str, **extra: str) -> None:
    """A kubernetes connection (namespace ``conn-ns``) to an address never asked: loading it sends nothing."""
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), "namespace": "conn-ns", **extra}}))


@pytest.mark.parametrize("setting", ["", "flyte-ns"])
def test_the_namespace_is_the_one_a_task_uses(setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_flyte.authoring.spec_builder import placement_options
    from airflow_provider_flyte.remote.jobs import KubernetesJobs

    _kubeconfig_connection(tmp_path, monkeypatch, "ns_k8s")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_NAMESPACE", setting)
    task = KubernetesJobs("ns_k8s", "airflow_provider_flyte.manifests.spark", placement_options(
        deferrable=None, startup_timeout=None, keep_failed_s=None, execution_timeout=None)["namespace"])
    check = ConnectionCheck("ns_k8s")
    line = check.connect()
    assert check.namespace == task.namespace == (setting or "conn-ns")
    source = "[flyte] kubernetes_namespace" if setting else "connection 'ns_k8s'"
    assert line.text.endswith(f"namespace {task.namespace!r} (from {source})"), line
    assert ConnectionCheck("ns_k8s", namespace="given").connect().text.endswith("namespace 'given' (from --namespace)")


def test_the_kueue_queue_falls_back_as_the_placements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_KUEUE_QUEUE", "from-setting")
    _kubeconfig_connection(tmp_path, monkeypatch, "q_k8s")
    check = ConnectionCheck("q_k8s")
    check.connect()
    assert (check.queue, check.queue_source) == ("from-setting", "[flyte] kubernetes_kueue_queue")
    _kubeconfig_connection(tmp_path, monkeypatch, "q_k8s", kueue_queue="from-extra")
    check = ConnectionCheck("q_k8s")
    check.connect()
    assert (check.queue, check.queue_source) == ("from-extra", "connection 'q_k8s' extra kueue_queue")
    check = ConnectionCheck("q_k8s", queue="given")
    check.connect()
    assert (check.queue, check.queue_source) == ("given", "--queue")


def test_engines_not_asked_about_are_known_and_named() -> None:
    assert sorted(preflight.engine_kinds()) == ["dask", "pytorch", "ray", "spark"]
    assert ConnectionCheck("unused", engines=["spark", "ray"]).other_objects == {
        ("kubernetes.dask.org", "daskjobs"), ("kubeflow.org", "pytorchjobs")}
    assert ConnectionCheck("unused").other_objects == set()
    with pytest.raises(ValueError, match=r"\['flink'\] are not Kubernetes engines"):
        ConnectionCheck("unused", engines=["spark", "flink"])
