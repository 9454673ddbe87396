"""A real Kubernetes control plane on loopback: etcd + kube-apiserver (+ kube-controller-manager).

The binaries come from ``scripts/k8s/build_apiserver.sh`` (kube-apiserver and kube-controller-manager
v1.20.2 built from Debian's source package, etcd from Debian's ``etcd-server``); see
``../shared/reference/real-apiserver.md`` for what this server can and cannot do (no scheduler, no kubelet,
no operators, no CEL rules).

::

    with RealCluster() as cluster:
        cluster.apply_crds()
        core = kubernetes.client.CoreV1Api(cluster.api_client("worker"))

Everything listens on 127.0.0.1 with TLS; clients authenticate with bearer tokens (``tokens.csv``):

- ``admin``: in ``system:masters`` (the simulated operators and kubelet use it);
- ``worker``, ``triggerer``, ``nobody``: no groups and no bindings: bind them a Role to grant anything.

``stop()`` stops every process it started, by pid, and removes its folder.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

#: Where ``scripts/k8s/build_apiserver.sh`` puts the binaries (``FLYTE_K8S_CACHE`` overrides the folder).
DEFAULT_CACHE = Path.home() / ".cache" / "airflow-provider-flyte" / "k8s-v1.20.2"
BUILD_SCRIPT = Path(__file__).resolve().parents[4] / "scripts" / "k8s" / "build_apiserver.sh"
CRD_DIR = Path(__file__).resolve().parents[2] / "k8s_crds"
USERS = ("admin", "worker", "triggerer", "nobody")
#: Controllers the controller-manager runs: everything that needs no cloud, no nodes' IPAM and no volumes
#: (the garbage collector, namespaces, service accounts and their tokens, Deployments/ReplicaSets, Jobs...).
CONTROLLERS = ("*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service,-persistentvolume-binder,"
               "-attachdetach,-persistentvolume-expander,-csrsigning,-csrapproving,-csrcleaner,-bootstrapsigner,"
               "-tokencleaner,-ttl,-pv-protection,-pvc-protection,-ephemeral-volume")


def _crd_documents(path: Path) -> list[bytes]:
    """The CustomResourceDefinitions of a vendored ``.yaml.gz`` file as JSON, through a cache keyed by its hash."""
    data = path.read_bytes()
    cache = Path(os.environ.get("FLYTE_K8S_CACHE") or DEFAULT_CACHE) / "crds" / f"{hashlib.sha256(data).hexdigest()}.json"
    if not cache.exists():
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = [d for d in yaml.load_all(gzip.decompress(data), Loader=loader)  # noqa: S506 - a safe loader
                if d and d.get("kind") == "CustomResourceDefinition"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(docs))
        tmp.replace(cache)
    return [json.dumps(doc).encode() for doc in json.loads(cache.read_text())]


class ControlPlaneUnavailable(RuntimeError):
    """The binaries are missing or a process did not start: the message says which and how to fix it."""


def binaries() -> dict[str, Path]:
    """The three binaries, or :class:`ControlPlaneUnavailable` naming the build script."""
    bin_dir = Path(os.environ.get("FLYTE_K8S_CACHE") or DEFAULT_CACHE) / "bin"
    found = {"kube-apiserver": bin_dir / "kube-apiserver", "kube-controller-manager": bin_dir / "kube-controller-manager"}
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    found["etcd"] = Path(etcd)
    missing = [str(path) for path in found.values() if not os.access(path, os.X_OK)]
    if missing:
        raise ControlPlaneUnavailable(
            f"the real API server's binaries are missing: {', '.join(missing)}. Fix: run `bash {BUILD_SCRIPT}` "
            "(about 14 minutes the first time; scripts/test.sh runs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_certs(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem_key(k: rsa.RSAPrivateKey) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, srv_key, sa_key = key(), key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flyte-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
           .issuer_name(ca_name).public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
           .add_extension(x509.SubjectAlternativeName([
               x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
               x509.DNSName("kubernetes.default.svc")]), critical=False)
           .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                 x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
           .sign(ca_key, hashes.SHA256()))
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.key").write_bytes(pem_key(srv_key))
    (directory / "sa.key").write_bytes(pem_key(sa_key))
    (directory / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for name in ("apiserver.key", "sa.key"):
        (directory / name).chmod(0o600)


class RealCluster:
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback. ``start()``/``stop()`` or ``with``.

    :param controller_manager: also run kube-controller-manager (garbage collection, namespace deletion,
        service accounts and their token Secrets: pods need the latter to pass admission).
    :param extra_apiserver_args: more ``--flag=value`` arguments for kube-apiserver.
    """

    def __init__(self, directory: str | Path | None = None, *, controller_manager: bool = True,
                 extra_apiserver_args: tuple[str, ...] = ()) -> None:
        self._owned_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="flyte-k8s-real-", dir="/tmp"))
        self.controller_manager = controller_manager
        self.extra_apiserver_args = extra_apiserver_args
        self.tokens = {user: secrets.token_hex(16) for user in USERS}
        self.port = 0
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60.0) -> RealCluster:
        bins = binaries()
        try:
            self._start(bins, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, bins: dict[str, Path], timeout: float) -> None:
        d = self.directory
        _write_certs(d)
        # token,user,uid[,"group,..."]: only the admin has a group
        (d / "tokens.csv").write_text("".join(
            f"{token},{user},uid-{user}" + (',"system:masters"' if user == "admin" else "") + "\n"
            for user, token in self.tokens.items()))
        (d / "tokens.csv").chmod(0o600)
        client_port, peer_port, self.port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        self._spawn("etcd", [
            str(bins["etcd"]), "--data-dir", str(d / "etcd"), "--name", "default",
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}", "--listen-metrics-urls", "",
            "--log-level", "warn"])
        self._spawn("kube-apiserver", [
            str(bins["kube-apiserver"]), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={self.port}", "--insecure-port=0",
            f"--tls-cert-file={d / 'apiserver.crt'}", f"--tls-private-key-file={d / 'apiserver.key'}",
            f"--client-ca-file={d / 'ca.crt'}", f"--token-auth-file={d / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={d / 'sa.pub'}", f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none", "--profiling=false",
            "--kubelet-preferred-address-types=InternalIP", "--v=0", *self.extra_apiserver_args])
        self._wait_ready(timeout)
        if self.controller_manager:
            self.kubeconfig_path("admin")  # written for the controller-manager
            self._spawn("kube-controller-manager", [
                str(bins["kube-controller-manager"]), f"--kubeconfig={self.kubeconfig_path('admin')}",
                "--port=0", "--secure-port=0", "--leader-elect=false",
                f"--service-account-private-key-file={d / 'sa.key'}", f"--root-ca-file={d / 'ca.crt'}",
                f"--controllers={CONTROLLERS}", "--v=0"])
            self._wait_for_default_service_account(timeout)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.directory, start_new_session=True)
        finally:
            log.close()

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.directory / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ControlPlaneUnavailable(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if self.get("/readyz").strip() == "ok":
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneUnavailable(f"kube-apiserver not ready in {timeout} s ({last}):\n"
                                      f"{self.log_tail('kube-apiserver')}")

    def _wait_for_default_service_account(self, timeout: float) -> None:
        """Pods pass admission only once the namespace's ``default`` ServiceAccount has its token."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(Exception):
                sa = json.loads(self.get("/api/v1/namespaces/default/serviceaccounts/default"))
                if sa.get("secrets"):
                    return
            time.sleep(0.2)
        raise ControlPlaneUnavailable("the default ServiceAccount got no token Secret in time:\n"
                                      f"{self.log_tail('kube-controller-manager')}")

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RealCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs.values()]

    # ------------------------------------------------------------------ clients
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def token(self, user: str = "admin") -> str:
        return self.tokens[user]

    def request(self, method: str, path: str, body: bytes | None = None, user: str = "admin",
                timeout: float = 60.0) -> str:
        """A raw request (JSON body): the response body as text; ``urllib.error.HTTPError`` on an error status."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        headers = {"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"}
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:  # noqa: S310 - https on loopback
            return resp.read().decode()

    def get(self, path: str, user: str = "admin") -> str:
        """A raw GET (for probes): the body as text."""
        return self.request("GET", path, user=user, timeout=5)

    def kubeconfig(self, user: str = "admin", namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "real", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": self.token(user)}}],
            "contexts": [{"name": f"{user}@real", "context": {"cluster": "real", "user": user, "namespace": namespace}}],
            "current-context": f"{user}@real",
        }

    def kubeconfig_path(self, user: str = "admin", namespace: str = "default") -> Path:
        path = self.directory / f"kubeconfig-{user}-{namespace}.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump(self.kubeconfig(user, namespace)))
            path.chmod(0o600)
        return path

    def connection_json(self, user: str = "admin", namespace: str = "default") -> str:
        """An Airflow ``kubernetes`` connection (JSON) that loads ``user``'s kubeconfig."""
        return json.dumps({"conn_type": "kubernetes",
                           "extra": {"kube_config_path": str(self.kubeconfig_path(user, namespace)),
                                     "namespace": namespace}})

    def connection_env(self, conn_id: str, user: str = "admin", namespace: str = "default") -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(user, namespace)}

    def api_client(self, user: str = "admin") -> Any:
        """A ``kubernetes.client.ApiClient`` for ``user`` (not the global default configuration)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.api_key = {"authorization": f"Bearer {self.token(user)}"}
        return client.ApiClient(cfg)

    # ------------------------------------------------------------------ setup helpers
    def apply_crds(self, timeout: float = 120.0) -> list[str]:
        """Create every CRD in ``tests/support/k8s_crds`` (unmodified) and wait until each is Established.

        Parsing the 4 MB of YAML takes seconds, so each file's JSON form is cached beside the binaries
        (keyed by the file's hash); the JSON is posted as it is.
        """
        names = []
        for path in sorted(CRD_DIR.glob("*.yaml.gz")):
            for doc in _crd_documents(path):
                names.append(json.loads(doc)["metadata"]["name"])
                try:
                    self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc)
                except urllib.error.HTTPError as exc:
                    if exc.code != 409:
                        raise ControlPlaneUnavailable(f"{path.name}: {exc.code} {exc.read()[:500]!r}") from exc
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                crd = json.loads(self.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"))
                if any(c["type"] == "Established" and c["status"] == "True"
                       for c in (crd.get("status") or {}).get("conditions") or []):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise ControlPlaneUnavailable(f"CRDs not Established in {timeout} s: {sorted(pending)}")
        return names

    def create_namespace(self, name: str) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client())
        with contextlib.suppress(client.ApiException):
            core.create_namespace({"metadata": {"name": name}})
