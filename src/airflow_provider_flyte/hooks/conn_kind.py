"""What a task's ``conn_id`` names, and the error for an engine that runs only on the worker or on Kubernetes.

An engine with no existing-cluster placement (PyTorch Elastic) reads ``conn_id`` as "run on Kubernetes": a
missing connection, or one of another type, is reported with the connection's id, what was found and the fix
(issue 27: it was told to "remove conn_id", the opposite of what the multi-node check had just asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_flyte.exceptions import FlyteConfigError

KUBERNETES_CONN_TYPE = "kubernetes"


@dataclass(frozen=True)
class ConnKind:
    """A connection as looked up: its type, or why there is none (``missing`` / ``unreadable``)."""

    conn_type: str | None
    problem: str | None = None  # "missing" or the lookup error, when conn_type is None

    @property
    def is_kubernetes(self) -> bool:
        return self.conn_type == KUBERNETES_CONN_TYPE


def connection_kind(conn_id: str) -> ConnKind:
    """Look ``conn_id`` up once: its type (lower case), or that it is missing or could not be read."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return ConnKind(None, "missing")
    except Exception as exc:  # a secrets backend or database error: shown, the run does not guess
        return ConnKind(None, f"{type(exc).__name__}: {exc}")
    return ConnKind((conn.conn_type or "").lower())


def not_kubernetes_error(engine: str, conn_id: str, found: ConnKind, worker_fix: str, *,
                         kubernetes: bool = True) -> FlyteConfigError:
    """``conn_id`` of an engine with no existing-cluster placement names no Kubernetes connection it could use."""
    if found.conn_type is not None:
        what = f"connection {conn_id!r} is of type {found.conn_type!r}, not {KUBERNETES_CONN_TYPE!r}"
    elif found.problem == "missing":
        what = f"no connection {conn_id!r} was found"
    else:
        what = f"connection {conn_id!r} could not be read ({found.problem})"
    if not kubernetes:
        return FlyteConfigError("conn_id", conn_id, f"{engine} does not run on an existing cluster: it runs only on "
                                f"the Airflow worker ({what})", worker_fix)
    return FlyteConfigError(
        "conn_id", conn_id,
        f"{engine} does not run on an existing cluster: it runs on the Airflow worker or as a Kubernetes job, so "
        f"conn_id must name a Kubernetes connection; {what}",
        f"create a connection {conn_id!r} of type kubernetes (Admin > Connections, or "
        f"AIRFLOW_CONN_{conn_id.upper()}='{{\"conn_type\": \"kubernetes\", ...}}'; docs/kubernetes.md) to run it on "
        f"Kubernetes, or {worker_fix}",
    )
