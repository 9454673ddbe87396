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

One module per placement (``local``, ``attach``, ``in_cluster``, ``warm``, ``kubernetes``); this one
holds the engine hook they share. Helpers the placements share: :mod:`.auth` (Ray's token
authentication), :mod:`.driver` (what every driver does around ``ray.init``), :mod:`.gcs` (a
driver's connection to a cluster's GCS).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_flyte.bundle.user_code import prepend_path
from airflow_provider_flyte.core.spec import ATTACH, TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hooks.clusters import ClusterTarget
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.rebuild import resources_of
from airflow_provider_flyte.resources import Resources

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle import CodeBundle

#: Values of a Ray switch (``include-dashboard``, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``) that mean on.
TRUE_WORDS = ("1", "true", "yes", "on")
#: Connection extras read by the hook.
NAMESPACE_EXTRA = "namespace"
DASHBOARD_URL_EXTRA = "dashboard_url"
#: Pseudo-scheme of a GCS address (``host:6379``): ``ray.init`` takes it without a scheme.
GCS_SCHEME = "gcs"
CLIENT_SCHEME = "ray"


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

    config_type = RayJobConfig
    # SIGTERM's handler runs inside ``ray.get``'s C++ wait: ``ray.shutdown()`` there frees the core
    # worker that call still uses (a crash, seen once in CI). Unwind with KeyboardInterrupt first.
    kill_unwinds_first = True

    # -- sizing -------------------------------------------------------------------------------
    def node_cpus(self) -> tuple[float, list[tuple[int, float]]]:
        """CPUs of the head, and ``(replicas, CPUs per worker)`` of each worker group.

        A node's CPUs come from ``ray_start_params["num-cpus"]``, else its requests, else its
        limits, else the environment's ``resources``, else 1.
        """
        default = _cpus(None, resources_of(self.spec), None) or 1.0
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
            "include_dashboard": dashboard in TRUE_WORDS,
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
        with contextlib.suppress(Exception):  # the job's identity, for the OpenLineage facet (docs/lineage.md)
            self.job_identity["rayJobId"] = str(ray.get_runtime_context().get_job_id())
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


