"""PyTorch Elastic's lifecycle: environment defaults in ``pre``, ``elastic_launch`` of the function in ``run``.

One module per placement (``local``: one node on this worker; ``in_cluster``: one node of a
PyTorchJob, rendezvous from the training operator's variables); this one holds what they share.

As in flyteplugins-pytorch, the task's function runs in ``nproc_per_node`` worker processes
started by torch's elastic agent (this process), and the task's result is rank 0's return
value. Locally, the rendezvous and the workers' store listen on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import gc
import os
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_flyte.bundle.calls import NOT_RANK_ZERO, dumps_call
from airflow_provider_flyte.context import TaskContext, ctx
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks import pytorch_worker
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hygiene.child_processes import spawn_safe
from airflow_provider_flyte.hygiene.processes import descendant_pids
from airflow_provider_flyte.hygiene.scratch import make_scratch_dir
from airflow_provider_flyte.hygiene.signals import SavedSignals
from airflow_provider_flyte.plugins.pytorch import Elastic

#: Rendezvous backend used for local runs: torch's c10d rendezvous on a store bound to 127.0.0.1.
LOCAL_RDZV_BACKEND = "flyte-c10d-loopback"
LOCAL_HOST = "127.0.0.1"
_HANDLED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
_listeners: dict[int, socket.socket] = {}
_listeners_lock = threading.Lock()

_SIGNAL_HINTS = {
    -int(signal.SIGABRT): (
        "Worker was killed by SIGABRT. This usually means an NCCL collective timed out - a common "
        "symptom of CUDA OOM causing ranks to desync. Check worker logs for 'CUDA out of memory' "
        "or 'collective operation timeout'."
    ),
    -int(signal.SIGKILL): (
        "Worker was killed by SIGKILL (OOM killer or resource limit). The process likely exceeded "
        "its memory limit. Try reducing batch size or requesting more memory."
    ),
}


class FlyteElasticHook(FlyteEngineHook[Elastic]):
    """Owns one task's elastic launch: env defaults, the agent, its workers and their cleanup."""

    config_type = Elastic

    @classmethod
    def worker_fix(cls, config: Any) -> str:
        """A multi-node job runs on the worker only as one node (its check at parse time says the same)."""
        if isinstance(config, Elastic) and config.max_nodes > 1:
            return "use nnodes=1 (with nproc_per_node=N processes) and no conn_id to run it on the Airflow worker"
        return super().worker_fix(config)

    # -- pre: environment defaults, then the placement's own checks ----------------------------
    def pre(self) -> dict[str, Any]:
        self.start()
        defaults = self.config.default_env()
        if "OMP_NUM_THREADS" in defaults and "OMP_NUM_THREADS" not in os.environ:
            # torchrun's own default, which it announces at WARNING in a banner; a default is not a problem.
            self.log.info(
                "OMP_NUM_THREADS=%s for each of the %s worker processes (torchrun's default with nproc_per_node > 1, "
                "so they do not overload this machine); set OMP_NUM_THREADS in env_vars to tune it",
                defaults["OMP_NUM_THREADS"], self.config.nproc_per_node,
            )
        for key, value in defaults.items():
            self.set_default_env(key, value)
        if self.task.project_root is not None:
            self.prepend_env("PYTHONPATH", str(self.task.project_root))
        return {}

    def start(self) -> None:
        """Placement checks and settings before the launch (the workers start in :meth:`run`)."""

    def launch_settings(self, port: int | None) -> dict[str, Any]:
        """``LaunchConfig`` fields that depend on the placement (rendezvous, node counts)."""
        raise NotImplementedError

    def rendezvous_port(self) -> int | None:
        """A port this process reserves for the rendezvous store, if the placement hosts one."""
        return None

    # -- run: the elastic launch ----------------------------------------------------------------
    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run ``fn`` in ``nproc_per_node`` workers with ``elastic_launch``; return rank 0's result.

        On a node that does not hold global rank 0 (a multi-node job), returns :data:`NOT_RANK_ZERO`.
        """
        import cloudpickle
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        payload = dumps_call(fn, args, kwargs, where="the PyTorch workers", context=self._worker_context())
        agent_pid = os.getpid()
        before = descendant_pids()
        self.add_cleanup(pytorch_worker.stop_new_workers, before)
        project_root = str(self.task.project_root) if self.task.project_root else None
        port = self.rendezvous_port()
        log_dir = make_scratch_dir("elastic")
        saved = SavedSignals(_HANDLED_SIGNALS, env=("TORCHELASTIC_SIGNALS_TO_HANDLE",))
        settings = self.launch_settings(port)
        watchdog = pytorch_worker.start_zombie_watchdog(settings["nproc_per_node"])
        # The agent's TCPStore servers sit in reference cycles and close only when collected. Freezing
        # what exists now (torch, Airflow: most of the heap) keeps the collection after the launch to
        # the launch's own objects: about 0.2 s less than a full gc.collect().
        gc.freeze()
        try:
            config = LaunchConfig(
                run_id=settings.pop("run_id", None) or f"{self.task.slug}-{uuid.uuid4().hex[:8]}",
                rdzv_configs=dict(self.config.rdzv_configs),
                monitor_interval=self.config.monitor_interval,
                start_method="spawn",
                logs_specs=DefaultLogsSpecs(log_dir=log_dir),
                **settings,
            )
            self.log.info(
                "Launching %d PyTorch worker(s) on this node (%s-%s nodes): rendezvous %s %s, max_restarts=%d, "
                "monitor_interval=%ss", config.nproc_per_node, config.min_nodes, config.max_nodes,
                config.rdzv_backend, config.rdzv_endpoint, config.max_restarts, config.monitor_interval,
            )
            with spawn_safe():
                out = elastic_launch(config, pytorch_worker.run_worker)(project_root, payload, agent_pid, log_dir)
        except ChildFailedError as exc:
            reports = pytorch_worker.read_failure_reports(log_dir)
            raise FlyteEngineError(format_worker_failure(exc, reports)) from exc
        except SignalException as exc:
            # torch's handler took the signal and stopped the workers; hand it to the previous
            # handler too (Airflow's calls on_kill), then fail the task.
            saved.restore()
            pytorch_worker.stop_new_workers(before)
            saved.forward(exc.sigval)
            raise FlyteEngineError(
                f"PyTorch Elastic launch stopped by {exc.sigval.name}; its workers were shut down"
            ) from exc
        finally:
            watchdog.set()
            saved.restore()
            if port is not None:
                _close_listener(port)
            pytorch_worker.stop_new_workers(before)
            pytorch_worker.remove_spawn_error_files(log_dir)
            shutil.rmtree(log_dir, ignore_errors=True)
            gc.collect()  # the agent's TCPStore servers close when collected
            gc.unfreeze()
        results = [value for value in out.values() if value is not None]
        if not results:
            if self.single_node:
                raise FlyteEngineError(f"PyTorch Elastic returned no result for rank 0 (ranks: {sorted(out)})")
            return NOT_RANK_ZERO
        return cloudpickle.loads(results[0])

    #: True when this node runs every rank (so rank 0's result must be here).
    single_node: bool = True

    def _worker_context(self) -> TaskContext:
        current = ctx()
        return TaskContext(
            data={}, dag_id=current.dag_id if current else self.task.dag_id,
            task_id=current.task_id if current else self.task.task_id,
            run_id=current.run_id if current else self.task.run_id,
            map_index=current.map_index if current else self.task.map_index,
        )


def format_worker_failure(err: Any, reports: Sequence[Mapping[str, Any]] = ()) -> str:
    """``PyTorch worker(s) failed:`` then ``rank R: exitcode=C (pid P)`` per failed rank, with hints.

    torch reports the first failed worker it notices; ``reports`` (left by workers that raised)
    add the other ranks that raised, so the rank at the root of the failure is always listed.
    """
    lines = ["PyTorch worker(s) failed:"]
    failures: dict[int, tuple[Any, Any, str]] = {}
    for rank, failure in err.failures.items():
        message = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        failures[int(rank)] = (failure.exitcode, failure.pid, str(message or ""))
    for report in reports:
        if int(report["rank"]) not in failures:
            failures[int(report["rank"])] = (1, report["pid"], str(report["message"]))
    for rank, (exitcode, pid, message) in sorted(failures.items()):
        lines.append(f"  rank {rank}: exitcode={exitcode} (pid {pid})")
        hint = _SIGNAL_HINTS.get(exitcode)
        if hint:
            lines.append(f"    -> {hint}")
        if message and "Signal" not in message:
            lines.append(f"    -> {message}")
    return "\n".join(lines)


# -- helpers --------------------------------------------------------------------------------------
def network_interfaces() -> list[tuple[int, str]]:
    try:
        return socket.if_nameindex()
    except OSError:
        return []


# -- a c10d rendezvous whose stores listen on 127.0.0.1 only --------------------------------------
def open_listener() -> int:
    """Bind a socket to a free 127.0.0.1 port for the rendezvous store; return the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOCAL_HOST, 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    with _listeners_lock:
        _listeners[port] = sock
    return port


def _close_listener(port: int) -> None:
    with _listeners_lock:
        sock = _listeners.pop(port, None)
    if sock is not None:
        sock.close()


def _bound_store(host: str, port: int | None) -> Any:
    """A multi-tenant ``TCPStore`` server listening on ``host`` only (torch's own binds every interface).

    ``port`` may name a socket :func:`open_listener` reserved; otherwise it is bound here
    (``None``: any free port). ``OSError`` when the port is taken.
    """
    from datetime import timedelta

    from torch.distributed import TCPStore

    sock = None
    if port is not None:
        with _listeners_lock:
            sock = _listeners.pop(port, None)
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, port or 0))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    port = int(sock.getsockname()[1])
    fd = sock.detach()  # the store owns the listening socket from here on and closes it
    try:
        return TCPStore(host, port, is_master=True, multi_tenant=True, master_listen_fd=fd,
                        timeout=timedelta(seconds=60))
    except Exception:
        os.close(fd)
        raise


def _client_store(host: str, port: int) -> Any:
    from datetime import timedelta

    from torch.distributed import TCPStore

    return TCPStore(host, port, is_master=False, multi_tenant=True, timeout=timedelta(seconds=300))


@functools.lru_cache(maxsize=4)
def _backend_class(name: str) -> type:
    from torch.distributed.elastic.rendezvous.c10d_rendezvous_backend import C10dRendezvousBackend

    class BoundC10dRendezvousBackend(C10dRendezvousBackend):
        """torch's c10d rendezvous backend, registered under our own name."""

        @property
        def name(self) -> str:
            return name

    return BoundC10dRendezvousBackend


def _same_host(endpoint_host: str, bind_host: str) -> bool:
    if endpoint_host == bind_host:
        return True
    try:
        return socket.gethostbyname(endpoint_host) == bind_host
    except OSError:
        return False


def _create_bound_handler(name: str, bind_host: str, params: Any) -> Any:
    """A c10d rendezvous handler whose stores (the rendezvous's and the workers') listen on ``bind_host`` only.

    The node whose address is the endpoint's host serves the rendezvous store (or joins as a client if
    another process on that address already does); every other node is a client.
    """
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import create_handler
    from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

    host, port = parse_rendezvous_endpoint(params.endpoint, default_port=-1)
    store = None
    if port <= 0 or _same_host(host, bind_host):
        try:
            store = _bound_store(bind_host, port if port > 0 else None)
        except OSError:
            store = None  # another node on this address serves it
    if store is None:
        store = _client_store(host, port)
    handler: Any = create_handler(store, _backend_class(name)(store, params.run_id), params)
    # The workers' store (MASTER_ADDR/MASTER_PORT) is created by the handler too: bind it to
    # the same address, and make a fresh one for every round. torch keeps one for all rounds, so after a
    # restart the new workers read the dead workers' gloo/NCCL addresses from it and hang
    # (pytorch/pytorch#135712).
    next_round = handler.next_rendezvous

    def next_rendezvous() -> Any:
        handler._shared_tcp_store_server = None
        handler._bootstrap_store_info = None
        return next_round()

    handler._create_tcp_store_server = lambda addr, port: _bound_store(bind_host, None)
    handler.next_rendezvous = next_rendezvous
    return handler


@functools.cache
def register_bound_rendezvous(name: str, bind_host: str) -> None:
    """Register a rendezvous backend ``name`` whose stores listen on ``bind_host`` only (once per process).

    torch refuses a second, different creator under one name, so a name is bound to one address.
    """
    from torch.distributed.elastic.rendezvous import rendezvous_handler_registry

    rendezvous_handler_registry.register(name, functools.partial(_create_bound_handler, name, bind_host))


def register_local_rendezvous() -> None:
    register_bound_rendezvous(LOCAL_RDZV_BACKEND, LOCAL_HOST)
