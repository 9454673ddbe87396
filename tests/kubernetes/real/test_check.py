"""``python -m airflow_provider_flyte check`` against a real kube-apiserver (v1.20.2).

- the Roles docs/kubernetes.md documents, bound to a token user: every check ✓, exit 0 (run as a subprocess);
- one verb of the worker's or the triggerer's Role taken out: exactly that line ✗, naming the verb, the resources
  and the rule to add;
- a second API server serving every engine's kind but RayJob (the session's shared one keeps its CRDs): Ray
  reported unavailable, exit 1 (a subprocess); a Kueue LocalQueue found, one that does not exist named;
- a silent API server (a socket that accepts and never answers): one ✗ within the timeout, exit 1 (a subprocess).
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_flyte.remote import preflight, rbac
from tests.kubernetes.real import access
from tests.support.k8s.real.cluster import RealCluster

ROLES = access.documented_roles()
WORKER_ROLE = ROLES["airflow-flyte-worker"]
TRIGGERER_ROLE = ROLES["airflow-flyte-triggerer"]
CONN_ID = "k8s_check"


def minimal_crd(kind: str, group: str, version: str, plural: str) -> dict[str, Any]:
    """A CRD that serves ``kind`` with a schema that keeps anything: discovery is all the check reads."""
    protected = group.endswith((".k8s.io", ".kubernetes.io"))  # such groups must say they are not Kubernetes' own
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", **({"annotations": {
            "api-approved.kubernetes.io": "unapproved, a test's stand-in"}} if protected else {})},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


#: Every engine's job kind but RayJob, KubeRay's RayCluster, and Kueue's LocalQueue.
NO_RAYJOB_KINDS = (
    ("SparkApplication", "sparkoperator.k8s.io", "v1beta2", "sparkapplications"),
    ("DaskJob", "kubernetes.dask.org", "v1", "daskjobs"),
    ("PyTorchJob", "kubeflow.org", "v1", "pytorchjobs"),
    ("RayCluster", "ray.io", "v1", "rayclusters"),
    ("LocalQueue", "kueue.x-k8s.io", "v1beta1", "localqueues"),
)


@pytest.fixture
def staging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    return tmp_path / "store"


@pytest.fixture
def namespace(real_cluster: Any) -> Iterator[str]:
    name = access.new_namespace(real_cluster, "check")
    yield name
    access.delete_namespace(real_cluster, name)


def run_command(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "airflow_provider_flyte", "check", "--conn-id", CONN_ID, *args],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)


def failed(lines: list[preflight.Line]) -> list[str]:
    return [str(line) for line in lines if line.mark == preflight.FAILED]


def test_the_documented_roles_pass_every_check(real_cluster: Any, namespace: str, staging: Path) -> None:
    access.bind(real_cluster, namespace, "worker", WORKER_ROLE)
    access.bind(real_cluster, namespace, "worker", TRIGGERER_ROLE)
    out = run_command(real_cluster.connection_env(CONN_ID, "worker", namespace))
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert not [line for line in lines if line.startswith(preflight.FAILED)], out.stdout
    assert any(line.startswith(f"✓ API server {real_cluster.url} answers: Kubernetes ") for line in lines), out.stdout
    for kind in ("SparkApplication", "RayJob", "DaskJob", "PyTorchJob"):
        assert any(line.startswith("✓") and f"{kind} (" in line and "is served" in line for line in lines), kind
    verbs = [line for line in lines if line.startswith("✓ worker (") or line.startswith("✓ triggerer (")]
    assert len(verbs) == len(list(rbac.checks())), out.stdout
    assert any(line.startswith("✓ staging store file://") for line in lines), out.stdout
    assert not list(staging.rglob("probe-*")), "the probe object was left behind"
    assert lines[-1] == f"tasks can run through {CONN_ID!r}"


@pytest.mark.parametrize(("needed_by", "verb", "resource", "fatal"), [
    pytest.param("worker", "create", "sparkapplications", True, id="worker-create-jobs"),
    pytest.param("worker", "update", "sparkapplications/finalizers", True, id="worker-update-finalizers"),
    pytest.param("worker", "delete", "secrets", True, id="worker-delete-secrets"),
    pytest.param("worker", "get", "pods/log", False, id="worker-get-pods-log"),
    pytest.param("triggerer", "list", "pods", True, id="triggerer-list-pods"),
    pytest.param("triggerer", "watch", "rayjobs", False, id="triggerer-watch-jobs"),
])
def test_a_verb_taken_out_is_exactly_the_line_that_fails(needed_by: str, verb: str, resource: str, fatal: bool,
                                                         real_cluster: Any, namespace: str, staging: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    role = WORKER_ROLE if needed_by == "worker" else TRIGGERER_ROLE
    access.bind(real_cluster, namespace, "worker", access.without(role, verb, resource))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", real_cluster.connection_json("worker", namespace))
    lines = preflight.check_connection(CONN_ID, role=needed_by)
    (line,) = failed(lines)
    rule = next(r for r in rbac.role(needed_by).rules if resource in r.resources)
    assert line.startswith(f"✗ {needed_by} ({role['metadata']['name']}): may not {verb} "), line
    for each in rule.resources:  # the whole rule lost the verb: every resource of it is named
        assert each in line, line
    assert f"in namespace {namespace!r}" in line, line
    assert f"Fix: add to the Role {role['metadata']['name']} the rule {{apiGroups: [" in line, line
    assert f"verbs: [{verb}]}}" in line, line
    assert ("Tasks still run, but" in line) is (not fatal), line
    assert preflight.exit_status(lines) == (1 if fatal else 0)


# -- a control plane of its own: the RayJob CRD deleted, a Kueue LocalQueue ---------------------------------------
@pytest.fixture(scope="module")
def no_rayjob() -> Iterator[RealCluster]:
    """etcd + kube-apiserver of its own (the session's cluster keeps its CRDs) serving every engine's job kind but
    RayJob, as minimal CRDs (the vendored ones take a minute to apply on a busy machine), and a Kueue LocalQueue."""
    cluster = RealCluster(controller_manager=False).start()
    try:
        for kind in NO_RAYJOB_KINDS:
            cluster.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                            json.dumps(minimal_crd(*kind)).encode())
        deadline = time.monotonic() + 60
        while not all(_serves(cluster, group, version, plural) for _, group, version, plural in NO_RAYJOB_KINDS):
            assert time.monotonic() < deadline, "the CRDs are not served"
            time.sleep(0.2)
        cluster.create_namespace("jobs")
        cluster.request("POST", "/apis/kueue.x-k8s.io/v1beta1/namespaces/jobs/localqueues", json.dumps(
            {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
             "metadata": {"name": "team-a", "namespace": "jobs"}, "spec": {"clusterQueue": "cluster-a"}}).encode())
        yield cluster
    finally:
        cluster.stop()


def _serves(cluster: RealCluster, group: str, version: str, plural: str) -> bool:
    try:
        found = json.loads(cluster.get(f"/apis/{group}/{version}"))
    except urllib.error.HTTPError:
        return False
    return plural in {r["name"] for r in found["resources"]}


def test_without_the_rayjob_crd_ray_is_unavailable(no_rayjob: RealCluster, staging: Path) -> None:
    out = run_command(no_rayjob.connection_env(CONN_ID, "admin", "jobs"))
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    (ray,) = [line for line in lines if line.startswith("✗")]
    assert ray.startswith("✗ Ray: unavailable, RayJob CRD not installed"), out.stdout
    assert "Fix: install KubeRay" in ray, ray
    assert any(line.startswith("✓ Spark: SparkApplication") for line in lines), out.stdout
    assert "· RayCluster (ray.io/v1, KubeRay's cluster, which a RayJob creates): served" in lines, out.stdout
    assert lines[-1] == f"1 check(s) failed: some tasks cannot run through {CONN_ID!r}"


def test_an_engine_not_asked_about_is_information(no_rayjob: RealCluster, staging: Path) -> None:
    out = run_command(no_rayjob.connection_env(CONN_ID, "admin", "jobs"), "--engine", "spark,dask,pytorch")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert not [line for line in lines if line.startswith("✗")], out.stdout
    (ray,) = [line for line in lines if line.startswith("· Ray: unavailable, RayJob CRD not installed")]
    assert ray.endswith("(for information: --engine does not name ray)"), ray


def test_a_verb_refused_only_on_engines_not_asked_about_does_not_fail(real_cluster: Any, namespace: str,
                                                                      staging: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    role = copy.deepcopy(WORKER_ROLE)
    jobs = next(rule for rule in role["rules"] if "rayjobs" in rule["resources"])
    jobs["resources"] = [resource for resource in jobs["resources"] if resource != "rayjobs"]
    role["rules"].append({"apiGroups": ["ray.io"], "resources": ["rayjobs"],
                          "verbs": [verb for verb in jobs["verbs"] if verb != "create"]})
    access.bind(real_cluster, namespace, "worker", role)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", real_cluster.connection_json("worker", namespace))
    lines = preflight.check_connection(CONN_ID, role="worker", engines=["spark", "dask", "pytorch"])
    (line,) = [each for each in lines if each.mark == preflight.FAILED]
    assert str(line).startswith("✗ worker (airflow-flyte-worker): may not create rayjobs (ray.io) in namespace"), line
    assert "Only engines --engine does not name need it." in line.text and not line.fatal, line
    assert preflight.exit_status(lines) == 0
    (line,) = [each for each in preflight.check_connection(CONN_ID, role="worker") if each.mark == preflight.FAILED]
    assert line.fatal, line  # all engines asked about: Ray's create is needed


def test_a_kueue_queue_is_looked_for(no_rayjob: RealCluster, staging: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {**json.loads(no_rayjob.connection_json("admin", "jobs"))["extra"], preflight.KUEUE_EXTRA: "team-a"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "kubernetes", "extra": extra}))
    found = [str(line) for line in preflight.check_connection(CONN_ID) if "LocalQueue" in line.text]
    assert found == [f"✓ Kueue LocalQueue 'team-a' (from connection {CONN_ID!r} extra kueue_queue) in namespace 'jobs' "
                     "exists (ClusterQueue 'cluster-a')"]
    lines = preflight.check_connection(CONN_ID, queue="team-b")  # --queue wins over the extra
    (missing,) = [str(line) for line in lines if "LocalQueue" in line.text]
    assert missing.startswith("✗ Kueue LocalQueue 'team-b' (from --queue) in namespace 'jobs' does not exist. "
                              "Fix: create it"), missing
    assert next(line for line in lines if "LocalQueue" in line.text).fatal
    # an identity that may not read LocalQueues (the Roles do not grant it: tasks do not need it) cannot tell
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", no_rayjob.connection_json("nobody", "jobs"))
    (unknown,) = [line for line in preflight.check_connection(CONN_ID, queue="team-a") if "LocalQueue" in line.text]
    assert str(unknown).startswith("✗ Kueue LocalQueue 'team-a' (from --queue) in namespace 'jobs': this identity may not get "
                                   "localqueues (kueue.x-k8s.io), so cannot tell whether it exists"), unknown
    assert not unknown.fatal


# -- a silent API server --------------------------------------------------------------------------------------------
def test_a_silent_api_server_fails_in_bounded_time(staging: Path, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel's backlog; nothing ever reads or answers
    port = silent.getsockname()[1]
    try:
        config = {"apiVersion": "v1", "kind": "Config",
                  "clusters": [{"name": "silent", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                              "insecure-skip-tls-verify": True}}],
                  "users": [{"name": "worker", "user": {"token": "not-a-secret"}}],
                  "contexts": [{"name": "c", "context": {"cluster": "silent", "user": "worker"}}],
                  "current-context": "c"}
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(path), "namespace": "jobs"}})}
        started = time.monotonic()
        out = run_command(env, "--timeout", "1", timeout=60)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("✗")]
    assert line.startswith(f"✗ API server https://127.0.0.1:{port} did not answer within 1 s"), line
    assert "Fix: check the server address" in line, line
    gave_up = float(re.search(r"gave up after ([0-9.]+) s", line).group(1))  # type: ignore[union-attr]
    assert 1 <= gave_up < 3, line  # the request's 1 s, or the call's hard bound of 2 s
    assert "· engine kinds, permissions and the Kueue queue not checked" in out.stdout, out.stdout
    assert took < 60, f"{took:.1f} s (the process's start included)"


def test_a_failing_access_review_stops_the_rbac_checks(no_rayjob: RealCluster, staging: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that answers /version but not access reviews (503 from the test proxy) is asked once, not 48 times."""
    from tests.support.k8s.real.proxy import KubeApiProxy

    proxy = KubeApiProxy(no_rayjob.url, no_rayjob.ca_file, tmp_path).start()
    try:
        proxy.inject_fault(status=503, verb="create", resource="selfsubjectaccessreviews", times=1000)
        config = no_rayjob.kubeconfig("admin", "jobs")
        config["clusters"][0]["cluster"].update(server=proxy.url, **{"certificate-authority": str(proxy.cert)})
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(path), "namespace": "jobs"}}))
        lines = preflight.check_connection(CONN_ID)
        reviews = proxy.count(verb="create", resource="selfsubjectaccessreviews")
    finally:
        proxy.stop()
    ray, refused = failed(lines)  # this server serves no RayJob
    assert ray.startswith("✗ Ray: unavailable"), ray
    assert refused.startswith("✗ worker (airflow-flyte-worker): cannot ask whether this identity may create "
                              "sparkapplications"), refused
    assert "503" in refused, refused
    assert "· the Roles' other verbs not checked" in [str(line) for line in lines]
    assert reviews == 1 and preflight.exit_status(lines) == 1
