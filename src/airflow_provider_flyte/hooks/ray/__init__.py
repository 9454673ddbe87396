"""Ray's lifecycle: a private local Ray instance, or a connection to an existing Ray cluster.

**Locally** (no connection, no ``RayJobConfig.address``) every task gets its own Ray
instance: its own temp dir (a short path, as Ray's socket paths are length-limited),
random ports on 127.0.0.1 only, no dashboard, and as many CPUs as the config's head and
worker groups ask for (capped to this machine). Ray workers inherit ``PYTHONPATH`` from
the raylet, which is started with the DAG folder on it, so remote functions can import
the user's helper modules. ``post`` shuts the instance down and reaps its processes.

**On a cluster** (a ``flyte_ray`` connection, or ``RayJobConfig.address``) the task is a
Ray driver: ``ray.init(address=...)`` with the config's ``runtime_env`` plus the code
bundle as ``working_dir``, so workers on every node import the user's modules from it.
``post`` only disconnects (``ray.shutdown()``); the cluster keeps running.

Either way functions from the DAG file are pickled by value with ``ray.cloudpickle`` and
worker output reaches the task log (``log_to_driver``).
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import math
import os
import secrets
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_flyte.bundle.user_code import prepend_path
from airflow_provider_flyte.core.spec import ATTACH, TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hooks.clusters import ClusterTarget
from airflow_provider_flyte.hygiene.environ import restore as restore_environ
from airflow_provider_flyte.hygiene.environ import snapshot as _snapshot_environ
from airflow_provider_flyte.hygiene.processes import descendant_pids, mentioning, stop
from airflow_provider_flyte.hygiene.scratch import SCRATCH_ENV
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.resources import Resources
from airflow_provider_flyte.hygiene.signals import keep_signal_handlers

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle import CodeBundle

_EXIT_TIMEOUT_S = 15
_TRUE = ("1", "true", "yes", "on")
#: Connection extras read by the hook.
NAMESPACE_EXTRA = "namespace"
DASHBOARD_URL_EXTRA = "dashboard_url"
#: Pseudo-scheme of a GCS address (``host:6379``): ``ray.init`` takes it without a scheme.
GCS_SCHEME = "gcs"
CLIENT_SCHEME = "ray"
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class FlyteRayHook(FlyteEngineHook[RayJobConfig]):
    """Owns one task's Ray instance or cluster connection (or uses Ray already initialized here).

    ``ray.init`` runs only when Ray is not initialized yet; Ray that this task did not
    start is left running. ``ctx().data`` is empty, as in flyteplugins: the task calls
    ``ray.remote`` / ``ray.get`` directly.

    Connection ``flyte_ray``: ``host`` is a Ray Client address (``ray://h:10001``) or a GCS
    address (``h:6379``, or ``gcs://h:6379``; the task must then run on a node of the cluster);
    ``port`` is optional (defaults 10001 / 6379). ``password`` is the cluster's auth token
    (``ray start`` turns token auth on): the task connects with ``RAY_AUTH_MODE=token`` and
    ``RAY_AUTH_TOKEN`` set to it. Extras: ``namespace`` (Ray namespace of the job),
    ``connect_timeout`` (seconds the address may take to answer, default 10) and
    ``dashboard_url`` (the dashboard link to show when the head reports an unreachable one).
    Without a connection, ``RayJobConfig.address`` selects the cluster the same way (the token
    then comes from Ray's usual sources: ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
    ``~/.ray/auth_token``); with both, the connection wins.

    On a cluster the job's ``runtime_env`` is the config's, with ``TaskEnvironment.env_vars``
    added to ``env_vars`` (the config's win) and the code bundle as ``working_dir`` (the zip
    itself: its ignore rules already leave out ``*.tar.gz``, ``.python_history``, secrets...).
    A ``working_dir`` of the user's wins; the bundle's top-level modules and packages then go
    to ``py_modules``. ``[flyte] code_bundle = false`` ships no code.
    """

    conn_type = "flyte_ray"
    default_conn_name = "flyte_ray_default"
    hook_name = "Flyte Ray"
    config_type = RayJobConfig
    engine_name = "Ray"
    # SIGTERM's handler runs inside ``ray.get``'s C++ wait: ``ray.shutdown()`` there frees the core
    # worker that call still uses (a crash, seen once in CI). Unwind with KeyboardInterrupt first.
    kill_unwinds_first = True
    accepted_conn_types = {"flyte_ray": GCS_SCHEME}
    default_ports = {CLIENT_SCHEME: 10001, GCS_SCHEME: 6379}

    # -- sizing -------------------------------------------------------------------------------
    def node_cpus(self) -> tuple[float, list[tuple[int, float]]]:
        """CPUs of the head, and ``(replicas, CPUs per worker)`` of each worker group.

        A node's CPUs come from ``ray_start_params["num-cpus"]``, else its requests, else its
        limits, else the environment's ``resources``, else 1.
        """
        default = _cpus(None, self.spec.resources_obj, None) or 1.0
        head = self.config.head_node_config
        head_cpus = (_cpus(head.ray_start_params, head.requests, head.limits) if head else None) or default
        groups = [
            (group.replicas, _cpus(group.ray_start_params, group.requests, group.limits) or default)
            for group in self.config.worker_node_config
        ]
        return head_cpus, groups

    def requested_cpus(self) -> float:
        """CPUs of the head plus ``replicas`` x CPUs per worker, as the cluster would have."""
        head, groups = self.node_cpus()
        return head + sum(replicas * cpus for replicas, cpus in groups)

    def local_num_cpus(self) -> int:
        """``num_cpus`` of the local instance: the requested CPUs, capped to this machine.

        The cap never goes below the largest single node, so a Ray task that fits one
        node of the configured cluster stays schedulable.
        """
        head, groups = self.node_cpus()
        largest = max([head] + [cpus for _, cpus in groups])
        cap = max(_machine_cpus(), math.ceil(largest))
        return max(1, min(math.ceil(self.requested_cpus()), cap))

    # -- what ray.init gets -------------------------------------------------------------------
    def runtime_env(self) -> dict[str, Any] | None:
        """The job's runtime_env: the config's, with the DAG folder kept on ``PYTHONPATH``."""
        runtime_env = dict(self.config.runtime_env or {})
        env_vars = dict(runtime_env.get("env_vars") or {})
        root = self.task.project_root
        if root is not None and "PYTHONPATH" in env_vars:
            # A PYTHONPATH of the user's replaces the inherited one: keep the DAG folder on it.
            env_vars["PYTHONPATH"] = prepend_path(str(env_vars["PYTHONPATH"]), str(root))
            runtime_env["env_vars"] = env_vars
        return runtime_env or None

    def local_init_kwargs(self, temp_dir: str) -> dict[str, Any]:
        """Arguments of ``ray.init`` for a private local instance."""
        head_params = (self.config.head_node_config.ray_start_params or {}) if self.config.head_node_config else {}
        dashboard = str(head_params.get("include-dashboard", head_params.get("include_dashboard", ""))).lower()
        return {
            "address": "local",  # never attach to RAY_ADDRESS or another task's instance
            "num_cpus": self.local_num_cpus(),
            "runtime_env": self.runtime_env(),
            "include_dashboard": dashboard in _TRUE,
            "dashboard_host": "127.0.0.1",
            "log_to_driver": True,
            "configure_logging": False,  # keep Ray from giving its logger a stderr handler again
            "_temp_dir": temp_dir,
        }

    # -- an existing cluster ------------------------------------------------------------------
    def cluster_target(self) -> ClusterTarget | None:
        """The cluster to connect to: the connection's, else ``RayJobConfig.address``.

        ``None`` for ``address="auto"`` (Ray finds the cluster running on this machine).
        """
        if self.conn_id is not None:
            if self.config.address:
                self.log.warning("RayJobConfig.address=%s is ignored: connection %r selects the cluster",
                                 self.config.address, self.conn_id)
            target = self.cluster()
            field = f"connection {self.conn_id!r}.host"
        else:
            address = (self.config.address or "").strip()
            if address == "auto":
                return None
            target = _AddressTarget(conn_id="", conn_type="", address=_with_scheme_and_port(address))
            field = "RayJobConfig.address"
        if target.scheme not in (CLIENT_SCHEME, GCS_SCHEME) or not target.host:
            raise FlyteConfigError(
                field, target.address, "not a Ray address",
                "use a Ray Client address (ray://host:10001) or the cluster's GCS address (host:6379)",
            )
        return target

    def init_address(self, target: ClusterTarget | None) -> str:
        """What ``ray.init(address=...)`` gets: ``ray://h:p``, ``h:p`` (GCS) or ``auto``."""
        if target is None:
            return "auto"
        if target.scheme == GCS_SCHEME:
            return urlsplit(target.address).netloc
        return target.address

    # -- the contract: placements implement start() ---------------------------------------------
    @classmethod
    def choose_placement(cls, config: Any, spec: TaskSpec) -> str:
        """As the base rule, and ``RayJobConfig.address`` (other than ``local``) also selects a cluster."""
        if not spec.placement and not spec.conn_id and (getattr(config, "address", None) or "local").strip() != "local":
            return ATTACH
        return super().choose_placement(config, spec)

    def pre(self) -> dict[str, Any]:
        self.set_default_env("RAY_USAGE_STATS_ENABLED", "0")
        import ray
        from ray import cloudpickle

        if ray.is_initialized():
            self.log.info("Ray is already initialized in this process: %s uses it and leaves it running",
                          self.task.display_name)
        else:
            self.start(ray)
        # Functions from the DAG file go by value: other processes cannot import that module.
        self.pickle_by_value(cloudpickle)
        return {}

    def start(self, ray: Any) -> None:
        """Start or connect Ray for this task."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """``ray.get`` ignores exceptions raised by signal handlers except ``KeyboardInterrupt``: send one.

        Called only while the task's function is still inside ``hook.run`` (see the runner's
        timeout guard), so the interrupt unwinds the function and ``post`` runs as for any failure.
        """
        import _thread

        _thread.interrupt_main()

    def cluster_runtime_env(self, bundle: CodeBundle | None, extracted: Path | None = None) -> dict[str, Any] | None:
        """The job's runtime_env on a cluster: the config's, the task's env vars and the code bundle.

        ``extracted`` is the bundle unpacked, needed only when the user set ``working_dir``.
        """
        runtime_env = copy.deepcopy(dict(self.config.runtime_env or {}))
        env_vars = {**self.spec.env_vars, **(runtime_env.get("env_vars") or {})}
        if env_vars:
            runtime_env["env_vars"] = {str(k): str(v) for k, v in env_vars.items()}
        if bundle is not None:
            if runtime_env.get("working_dir") is None:
                runtime_env["working_dir"] = str(bundle.path)
            elif extracted is not None:
                modules = _top_level_modules(extracted)
                runtime_env["py_modules"] = [*(runtime_env.get("py_modules") or []), *modules]
        return runtime_env or None

    def _describe(self, target: ClusterTarget | None) -> str:
        return target.describe() if target is not None else "RayJobConfig.address 'auto'"

    def _record_dashboard(self, context: Any, target: ClusterTarget | None) -> None:
        url = target.extra.get(DASHBOARD_URL_EXTRA) if target is not None else None
        if not url:
            url = getattr(context, "dashboard_url", None) or (getattr(context, "address_info", None) or {}).get(
                "webui_url")
        if not url:
            return
        url = str(url) if "://" in str(url) else f"http://{url}"
        parts = urlsplit(url)
        if target is not None and parts.hostname in ("0.0.0.0", "::"):
            # Bound to every interface: the cluster's own host name reaches it.
            url = parts._replace(netloc=f"{target.host}:{parts.port}" if parts.port else target.host).geturl()
        self.links["ray_dashboard"] = url


@dataclass(frozen=True)
class _AddressTarget(ClusterTarget):
    """A cluster named by ``RayJobConfig.address`` rather than by a connection."""

    def describe(self) -> str:
        from airflow_provider_flyte.core.addresses import shown

        return f"RayJobConfig.address ({shown(self.address)})"


def _with_scheme_and_port(address: str) -> str:
    """``h:6379`` -> ``gcs://h:6379``; ``ray://h`` -> ``ray://h:10001``."""
    from airflow_provider_flyte.core.addresses import parse_address

    # A bad port is an error (never silently the default); RayJobConfig checked this when built.
    parsed = parse_address("RayJobConfig.address", address, default_scheme=GCS_SCHEME,
                           fix="use a Ray Client address (ray://host:10001) or the cluster's GCS address (host:6379)")
    if parsed.port is None:
        parsed = parsed._replace(port=FlyteRayHook.default_ports.get(parsed.scheme))
    return f"{parsed.scheme}://{parsed.netloc}{parsed.rest}"


def _top_level_modules(root: Path) -> list[str]:
    """The importable top-level entries of an unpacked bundle: packages, folders and ``*.py`` files."""
    def importable(entry: Path) -> bool:
        if entry.is_dir():
            return entry.name.isidentifier()
        return entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier()

    return [str(entry) for entry in sorted(root.iterdir()) if importable(entry)]


def _loggable(runtime_env: Mapping[str, Any] | None) -> Any:
    """The runtime_env for the log, with env var values hidden (they may hold credentials)."""
    from airflow_provider_flyte.core.masking import redacted

    if not runtime_env or "env_vars" not in runtime_env:
        return redacted(runtime_env)
    return redacted({**runtime_env, "env_vars": {key: "***" for key in runtime_env["env_vars"]}})


TOKEN_AUTH_SINCE = "2.52.0"  # the first Ray release with RAY_AUTH_MODE=token


def token_auth_supported() -> bool:
    """Whether the installed Ray has token authentication (Ray >= 2.52); reads metadata, imports no Ray."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        return Version(version("ray")) >= Version(TOKEN_AUTH_SINCE)
    except PackageNotFoundError:
        return False


def _reload_auth() -> None:
    """Make Ray re-read ``RAY_AUTH_MODE`` and the token (both are cached per process).

    A no-op on Ray releases without token authentication (before 2.52): nothing is cached.
    """
    if not token_auth_supported():
        return
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")  # the mode first: a draining gRPC thread must not reload a token it no longer needs
    AuthenticationTokenLoader.instance().reset_cache()


def _restore_auth(previous: Mapping[str, str | None]) -> None:
    restore_environ(previous)
    _reload_auth()


def _shutdown(ray: Any) -> None:
    """Disconnect this driver; the cluster keeps running."""
    ray.shutdown()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _keep_loopback_gcs(ray: Any, target: ClusterTarget | None) -> Iterator[None]:
    """Let a driver reach a head that listens on 127.0.0.1 only.

    Ray replaces a loopback GCS address with this machine's outward IP (so that other nodes
    could use it). A head started with ``--node-ip-address 127.0.0.1`` and
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` listens on loopback only and is not found there;
    then Ray's single-machine mode is used while connecting (the driver's node is 127.0.0.1).
    A head that also answers on the outward IP is left to Ray's usual rule.
    """
    if target is None or target.scheme != GCS_SCHEME or not _is_loopback(target.host) or target.port is None:
        yield
        return
    services = ray._private.services
    outward = services.resolve_ip_for_localhost(target.host)
    if _is_loopback(outward) or _answers(outward, target.port):
        yield
        return
    constants = ray._private.ray_constants
    cluster_mode = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = cluster_mode


def _cpus(params: Mapping[str, str] | None, requests: Resources | None, limits: Resources | None) -> float | None:
    """A node's CPUs: ``num-cpus`` from ray_start_params, else its requests, else its limits."""
    for key in ("num-cpus", "num_cpus"):
        if params and key in params:
            try:
                return float(params[key])
            except ValueError:
                from airflow_provider_flyte.exceptions import FlyteConfigError

                raise FlyteConfigError(
                    f"ray_start_params[{key!r}]", params[key], "not a number", 'use a count such as "2"'
                ) from None
    for resources in (requests, limits):
        if resources is not None and resources.cpu_request is not None:
            return resources.cpu_request
    return None


def _machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _short_tmp() -> str:
    """``/tmp`` when usable: Ray's socket paths under the temp dir must stay short."""
    return "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else tempfile.gettempdir()


def _ensure_auth_token() -> None:
    """Create ``~/.ray/auth_token`` atomically if token auth is on and no token exists.

    Ray writes the token itself when it is missing, but two tasks starting at once could
    each write a different one, and a raylet could read the other's.
    """
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token" or not token_auth_supported():
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth_token.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: the first writer wins, later ones keep its token
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def _raylet_environ(ray: Any, project_root: str | None, temp_dir: str) -> Iterator[None]:
    """The environment the Ray processes are started with (inherited by every Ray worker).

    Ray binds to 127.0.0.1 only when it takes this machine for a single-node setup
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); the metrics ports become random. The processes
    are tagged with the task's temp dir, so that the next task can stop those a SIGKILL left.
    """
    changes = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "AUTOSCALER_METRIC_PORT": "0", "DASHBOARD_METRIC_PORT": "0"}
    changes = {key: value for key, value in changes.items() if key not in os.environ}
    changes[SCRATCH_ENV] = temp_dir
    if project_root:
        changes["PYTHONPATH"] = prepend_path(os.environ.get("PYTHONPATH"), project_root)
    previous = _snapshot_environ(*changes)
    constants = ray._private.ray_constants
    cluster_mode = constants.ENABLE_RAY_CLUSTER
    os.environ.update(changes)
    constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"].lower() in _TRUE
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = cluster_mode
        restore_environ(previous)


@contextlib.contextmanager
def _random_local_ports() -> Iterator[None]:
    """Let the OS pick the dashboard agent's and the workers' ports (Ray's defaults are fixed)."""
    from ray._private import parameter

    original = parameter.RayParams

    class RayParams(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dashboard_agent_listen_port", 0)
            kwargs.setdefault("min_worker_port", 0)
            kwargs.setdefault("max_worker_port", 0)
            super().__init__(*args, **kwargs)

    parameter.RayParams = RayParams  # type: ignore[misc]
    try:
        yield
    finally:
        parameter.RayParams = original  # type: ignore[misc]


#: Ray's own knobs for how long a driver waits for the GCS: its gRPC channel, the cluster-id call
#: (both in seconds, read from ``RAY_<name>`` when Ray's config is initialized) and the Python retry
#: loop around them (attempts, about one per second plus the waits).
_GCS_WAIT_KNOBS = ("RAY_gcs_rpc_server_connect_timeout_s", "RAY_py_gcs_connect_timeout_s")
_GCS_RETRIES_ENV = "RAY_gcs_server_port_wait_time_s"


@contextlib.contextmanager
def bounded_gcs_wait(timeout: float) -> Iterator[None]:
    """Make ``ray.init`` give up on a GCS that does not answer within about ``timeout`` seconds.

    By default a driver waits 5 s for the GCS channel, 5 s for its pubsub, 30 s for the cluster id,
    and retries that 20 times: a GCS address that accepts and never answers holds ``ray.init`` (and
    SIGTERM's handler, which runs only between those C++ waits) for over ten minutes. Here each of
    the three waits gets a third of ``timeout`` (whole seconds, at least 1) and the loop one
    attempt. Ray reads these when its config is initialized, so it is initialized again on entry;
    the variables are put back on exit and the config is initialized from them again after the task.
    """
    from ray._raylet import Config  # type: ignore[attr-defined]

    step = str(max(1, math.ceil(timeout / 3)))
    previous = _snapshot_environ(*_GCS_WAIT_KNOBS, _GCS_RETRIES_ENV)
    os.environ.update({key: step for key in _GCS_WAIT_KNOBS})
    os.environ[_GCS_RETRIES_ENV] = "1"
    Config.initialize("")
    try:
        yield
    finally:
        restore_environ(previous)


def gcs_is_silent(address: str, timeout: float) -> bool:
    """Whether the GCS at ``host:port`` accepts TCP but completes no gRPC handshake within ``timeout`` s.

    Checked before ``ray.init``, whose GCS waits are C++ calls no signal handler interrupts. The
    channel is Ray's own (its TLS settings, ``RAY_USE_TLS``).
    """
    try:
        from ray._private.grpc_utils import init_grpc_channel
    except ImportError:  # Ray before 2.52 kept it in ray._private.utils
        from ray._private.utils import init_grpc_channel  # type: ignore[attr-defined,no-redef]

    from airflow_provider_flyte.hooks.clusters import channel_is_silent

    return channel_is_silent(init_grpc_channel(address), timeout)


def reinitialize_config() -> None:
    """Ray's config from the current environment again (after :func:`bounded_gcs_wait`, once disconnected)."""
    from ray._raylet import Config  # type: ignore[attr-defined]

    Config.initialize("")


def _keep_sigterm_handler() -> contextlib.AbstractContextManager[None]:
    """``ray.init`` replaces the SIGTERM handler; keep Airflow's, which runs ``on_kill``."""
    return keep_signal_handlers("SIGTERM")


_descendant_pids = descendant_pids


def _ray_processes(temp_dir: str, before: frozenset[int] = frozenset()) -> list[Any]:
    """This process's descendants that belong to the instance in ``temp_dir``, with their children."""
    import psutil

    found: dict[int, Any] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
            # Ray workers retitle themselves ("ray::IDLE"), losing the temp dir from argv; any
            # descendant that appeared after this task started Ray belongs to its instance.
            if proc.pid not in before or any(temp_dir in arg or arg.startswith("ray::") for arg in cmdline):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(found.values())


def _shutdown_and_reap(ray: Any, temp_dir: str, before: frozenset[int] = frozenset()) -> None:
    """``ray.shutdown()``, then make sure every process of the instance has exited.

    Processes are found again after the shutdown, machine-wide by the instance's unique temp
    dir: a worker can be spawned while Ray shuts down, and an orphan is no longer our child.
    """
    import psutil

    procs = _ray_processes(temp_dir, before)
    ray.shutdown()
    for _ in range(3):
        _, alive = psutil.wait_procs(procs, timeout=_EXIT_TIMEOUT_S)
        alive = stop(alive, grace_s=5, what="Ray process", children=False)
        if alive:
            raise FlyteEngineError(f"Ray processes did not exit: {[p.pid for p in alive]}")
        procs = _ray_processes(temp_dir, before) + mentioning(temp_dir)
        if not procs:
            return
    raise FlyteEngineError(f"Ray processes of {temp_dir} keep appearing: {[p.pid for p in procs]}")


