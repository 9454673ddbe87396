"""Dask's lifecycle: a ``LocalCluster`` (or an existing scheduler) and the task's ``Client``.

One module per placement (``local``, ``attach``, ``in_cluster``); this one holds what they share.

**On an existing scheduler** (a ``flyte_dask`` connection, ``tcp://host:8786``) ``pre`` probes
the address within the connection's ``connect_timeout``, connects a client and installs the
code bundle on the scheduler and on every current and future worker (plugins from
:mod:`~airflow_provider_flyte.hooks.dask_plugins`, which import no Airflow). ``post`` removes
the plugins and closes the task's clients; the cluster keeps running.

Inside the task a bare ``distributed.Client()`` connects to the task's cluster:
``Client`` reads dask's ``scheduler-address`` setting when it is given no address,
and ``pre`` sets that setting for the task's duration. Workers get the task's code
folder on ``sys.path`` from a worker plugin, and the DAG file's own module (Airflow's
generated name) is importable there too.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hooks.dask_worker import (  # noqa: F401 (re-exported)
    DagModuleFinder,
    install_dag_module_finder,
    prepend_sys_path,
)
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.resources import Resources, cpu_count, memory_bytes

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

LOCAL_HOST = "127.0.0.1"
#: Connection extra: the dashboard URL to show when the scheduler's own is not reachable from the UI.
DASHBOARD_LINK_EXTRA = "dashboard_link"
#: Seconds a client or a local cluster gets to close.
CLOSE_TIMEOUT_S = 30


class FlyteDaskHook(FlyteEngineHook[Dask]):
    """Owns one task's Dask cluster and client.

    Locally (no connection) it starts a ``LocalCluster`` on 127.0.0.1 with
    ``WorkerGroup.number_of_workers`` worker processes, each with threads from
    ``workers.resources.cpu`` and a memory limit from ``workers.resources.memory``.
    ``ctx().data["dask_client"]`` is the task's client.
    """

    config_type = Dask

    # -- sizing --------------------------------------------------------------------------------
    def cluster_kwargs(self) -> dict[str, Any]:
        """``LocalCluster`` arguments derived from the config (loopback only, no dashboard)."""
        workers = self.config.workers
        n_workers = 1 if workers.number_of_workers is None else workers.number_of_workers
        kwargs: dict[str, Any] = {
            "n_workers": n_workers,
            "processes": True,
            "host": LOCAL_HOST,
            "scheduler_port": 0,
            "dashboard_address": None,
            # No dashboard; the scheduler's HTTP server (health, metrics) still starts and would take
            # port 8787 ("dashboard_address": None means its default port): a free loopback port instead.
            "scheduler_kwargs": {"dashboard": False, "dashboard_address": f"{LOCAL_HOST}:0"},
        }
        threads = worker_threads(workers.resources)
        if threads is not None:
            kwargs["threads_per_worker"] = threads
        memory = worker_memory_limit(workers.resources)
        if memory is not None:
            kwargs["memory_limit"] = memory
        return kwargs

    # -- the contract: placements implement start() ---------------------------------------------
    def pre(self) -> dict[str, Any]:
        data = self.start()
        address = getattr(getattr(data.get("dask_client"), "scheduler", None), "address", None)
        if address:  # for the OpenLineage facet (docs/lineage.md)
            self.job_identity["daskSchedulerAddress"] = str(address)
        return data

    def start(self) -> dict[str, Any]:
        """Start or connect the task's cluster; return ``{"dask_client": ...}``."""
        raise NotImplementedError

    def _connect_client(self, address: str, *, timeout: float, where: str) -> Any:
        """A client on an existing scheduler, set as the default a bare ``Client()`` reaches."""
        import dask.config
        from distributed import Client

        # A bare Client() reads "scheduler-address"; restored (with "scheduler") after the task.
        config = dask.config.set({"scheduler-address": address, "scheduler": "dask.distributed"})
        self.add_cleanup(config.__exit__, None, None, None)
        try:
            client = Client(address, timeout=timeout, set_as_default=True)
        except Exception as exc:
            raise FlyteEngineError(f"Cannot connect to the Dask scheduler at {where}: {exc}") from exc
        self.add_cleanup(client.close, CLOSE_TIMEOUT_S)
        # Clients the task opened on the scheduler and left open are closed too; the cluster stays up.
        self.add_cleanup(close_clients_of, client.scheduler.address, client)
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        self.log.info("Connected %s to the Dask scheduler at %s (%d worker(s))", self.task.display_name,
                      where, len(workers))
        self._ship_bundle(client)
        self._ship_lineage_env(client)
        self._register_dag_functions()
        return client

    # -- an existing scheduler ------------------------------------------------------------------
    def cluster_target(self) -> ClusterTarget:
        """The scheduler named by the connection; only ``tcp://`` / ``tls://`` addresses."""
        target = self.cluster()
        if target.scheme not in ("tcp", "tls") or not target.host:
            raise FlyteConfigError(
                f"connection {self.conn_id!r}.host", target.address, "not a Dask scheduler address",
                "set host to the scheduler address, e.g. tcp://host:8786",
            )
        return target

    def _ship_bundle(self, client: Any) -> None:
        """Install the code bundle on the scheduler and on every current and future worker."""
        bundle = self.code_bundle("zip")
        if bundle is None:
            return
        import cloudpickle

        from airflow_provider_flyte.hooks import dask_plugins

        data = bundle.path.read_bytes()
        name = f"flyte-code-{bundle.digest[:16]}-{uuid.uuid4().hex[:8]}"  # one per task: removed in post
        worker_plugin, scheduler_plugin = dask_plugins.bundle_plugins(
            data, hashlib.sha256(data).hexdigest(), bundle.digest, name)
        # By value: the cluster needs neither this package nor Airflow to load the plugins.
        registered = dask_plugins.__name__ in cloudpickle.list_registry_pickle_by_value()
        if not registered:
            cloudpickle.register_pickle_by_value(dask_plugins)
        try:
            client.register_plugin(scheduler_plugin, name=name)
            self.add_cleanup(_remove_scheduler_plugin, client, name)
            client.register_plugin(worker_plugin, name=name)
            self.add_cleanup(_remove_worker_plugin, client, name)
        finally:
            if not registered:
                cloudpickle.unregister_pickle_by_value(dask_plugins)
        self.log.info("Code bundle %s installed on the Dask scheduler and workers (plugin %s)",
                      bundle.digest[:12], name)

    def _ship_lineage_env(self, client: Any) -> None:
        """The task run's OpenLineage parent in the workers' environment (docs/lineage.md): they are not
        this task's processes, so a worker plugin sets it and its removal in ``post`` puts back what was there."""
        from airflow_provider_flyte.lineage.parent import ENV_NAMES

        values = {key: self.spec.env_vars[key] for key in ENV_NAMES if key in self.spec.env_vars}
        if not values:
            return
        import cloudpickle

        from airflow_provider_flyte.hooks import dask_plugins

        name = f"flyte-openlineage-{uuid.uuid4().hex[:8]}"
        registered = dask_plugins.__name__ in cloudpickle.list_registry_pickle_by_value()
        if not registered:
            cloudpickle.register_pickle_by_value(dask_plugins)
        try:
            client.register_plugin(dask_plugins.environ_plugin(values, name), name=name)
            self.add_cleanup(_remove_worker_plugin, client, name)
        finally:
            if not registered:
                cloudpickle.unregister_pickle_by_value(dask_plugins)

    def _register_dag_functions(self) -> None:
        import cloudpickle  # distributed pickles with upstream cloudpickle

        self.pickle_by_value(cloudpickle)


def worker_threads(resources: Resources | None) -> int | None:
    """Threads per worker from ``resources.cpu`` (rounded up, at least 1); ``None`` when unset."""
    if resources is None or resources.cpu is None:
        return None
    return max(1, math.ceil(cpu_count(resources.cpu, field="WorkerGroup.resources.cpu")))


def worker_memory_limit(resources: Resources | None) -> int | None:
    """Bytes per worker from ``resources.memory`` (the limit of a ``(request, limit)`` pair)."""
    if resources is None or resources.memory is None:
        return None
    memory = resources.memory
    value = memory[1] if isinstance(memory, tuple) else memory
    return memory_bytes(value, field="WorkerGroup.resources.memory")


def dashboard_link(client: Any) -> str | None:
    try:
        link = client.dashboard_link
    except Exception:
        return None
    return str(link) if link else None


def _scheduler_lost(client: Any) -> bool:
    """Whether the client lost its scheduler (it died): nothing is left to unregister there, and each
    call would wait out the connect timeout."""
    return str(getattr(client, "status", "running")) in ("connecting", "closing", "closed")


def _remove_scheduler_plugin(client: Any, name: str) -> None:
    import cloudpickle

    from airflow_provider_flyte.hooks import dask_plugins

    if _scheduler_lost(client):
        return
    client.unregister_scheduler_plugin(name)
    registered = dask_plugins.__name__ in cloudpickle.list_registry_pickle_by_value()
    if not registered:
        cloudpickle.register_pickle_by_value(dask_plugins)
    try:
        client.run_on_scheduler(dask_plugins.forget_on_scheduler, name)
    finally:
        if not registered:
            cloudpickle.unregister_pickle_by_value(dask_plugins)


def _remove_worker_plugin(client: Any, name: str) -> None:
    if _scheduler_lost(client):
        return
    client.unregister_worker_plugin(name)


def close_clients_of(address: str, keep: Any) -> None:
    from distributed import Client

    for other in list(Client._instances):
        if other is keep or other.asynchronous or other.status in ("closed", "closing"):
            continue  # asynchronous clients close with the task's event loop
        if getattr(other.scheduler, "address", None) == address:
            other.close(timeout=CLOSE_TIMEOUT_S)


def scheduler_is_silent(address: str, timeout: float) -> bool:
    """Whether the server at ``address`` accepts a connection but sends no Dask handshake within ``timeout`` s.

    ``Client(address, timeout=...)`` bounds the TCP connect and the registration, but not the
    handshake read in between (``distributed.comm.connect``): a server that accepts and never
    answers holds it forever. This speaks the same handshake on a private event loop, bounded,
    and closes its comm either way. A refused or unreachable address is not silent: ``Client``
    reports it in its own words.
    """
    import asyncio

    return asyncio.run(_handshake_times_out(address, timeout))


async def _handshake_times_out(address: str, timeout: float) -> bool:
    import asyncio

    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend
    from distributed.security import Security

    scheme, loc = parse_address(address)
    connector = get_backend(scheme).get_connector()
    args = Security().get_connection_args("client")
    try:
        comm = await asyncio.wait_for(connector.connect(loc, deserialize=False, **args), timeout)
    except (asyncio.TimeoutError, OSError):
        return False
    try:
        await comm.write(comm.handshake_info())
        await asyncio.wait_for(comm.read(), timeout)
        return False
    except asyncio.TimeoutError:
        return True
    except OSError:  # closed by the peer: Client reports that
        return False
    finally:
        comm.abort()
