"""Connection hooks: what Airflow's connection form and its **Test** button use.

One small class per connection type (``flyte_spark``, ``flyte_ray``, ``flyte_dask``), which
only knows its connection, like the apache-spark provider's ``SparkConnectHook``. The engine
hooks (:class:`~airflow_provider_flyte.hooks.spark.FlyteSparkHook`...) need a plugin config
and a task, so Airflow cannot build them from a connection id alone; these can.

``test_connection()`` resolves the connection exactly as a task would
(:func:`~airflow_provider_flyte.hooks.clusters.resolve_cluster`, with the engine hook's accepted
connection types and default ports) and checks that the address answers within the
connection's ``connect_timeout`` (:func:`~airflow_provider_flyte.hooks.clusters.probe`, a TCP
connect). It never imports an engine, so it works on an API server without pyspark, ray
or distributed installed. It proves the address is reachable, not that the engine's
protocol or token is accepted there.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook

from airflow_provider_flyte.core import engines
from airflow_provider_flyte.hooks.clusters import ClusterTarget, probe, resolve_cluster

#: Upper bound of a Test click, whatever the connection's ``connect_timeout`` says.
MAX_TEST_TIMEOUT_S = 30.0


class FlyteClusterConnectionHook(BaseHook):
    """Base: an existing cluster named by one Airflow connection (no engine, no task).

    A subclass names its ``conn_type``; everything else (hook name, default connection, accepted
    types, default ports, the form) is read from the engine table entry that declares that type.
    """

    conn_name_attr = "conn_id"
    conn_type: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]
    engine_name: ClassVar[str]
    #: Connection types this engine accepts -> the URL scheme used when ``host`` has none.
    accepted_conn_types: ClassVar[dict[str, str]]
    #: URL scheme -> port used when neither ``host`` nor ``port`` gives one.
    default_ports: ClassVar[dict[str, int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        conn_type = cls.__dict__.get("conn_type")
        if conn_type is None:
            return
        entry = next((e for e in engines.entries() if e.connection is not None and e.connection.conn_type == conn_type),
                     None)
        if entry is None or entry.connection is None:
            return  # a connection type without an engine-table entry sets its facts itself
        connection = entry.connection
        facts = {"default_conn_name": connection.default_conn_name, "hook_name": entry.title or conn_type,
                 "engine_name": entry.label or entry.config_name,
                 "accepted_conn_types": dict(connection.accepted_conn_types),
                 "default_ports": dict(connection.default_ports)}
        for name, fact in facts.items():
            if name not in cls.__dict__:  # what the class sets itself wins, as in FlyteEngineHook.read_entry
                setattr(cls, name, fact)

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders of the form (the provider info's, in the hook-method shape)."""
        behaviour = engines.connection(cls.conn_type).field_behaviour()
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    def target(self) -> ClusterTarget:
        """The connection as a task would use it: full address, token, extras."""
        return resolve_cluster(self.conn_id, accepted_types=self.accepted_conn_types, default_ports=self.default_ports)

    def test_connection(self) -> tuple[bool, str]:
        """``(True, "reachable: <address>")`` or ``(False, "<why, with the address>")``."""
        try:
            target = self.target()
        except Exception as exc:
            return False, f"{self.hook_name} connection {self.conn_id!r}: {exc}"
        if not target.host or target.port is None:
            return False, f"{self.hook_name} connection {self.conn_id!r}: no host and port to test in {target.address!r}"
        try:
            timeout = min(target.connect_timeout, MAX_TEST_TIMEOUT_S)
            probe(target, timeout=timeout, engine=f"{self.engine_name} cluster")
        except Exception as exc:
            return False, str(exc)
        return True, f"reachable: {target.address}"


class FlyteSparkConnectionHook(FlyteClusterConnectionHook):
    """``flyte_spark``: a Spark standalone master (``spark://h:7077``) or Spark Connect (``sc://h:15002``).

    Also accepts the apache-spark provider's ``spark`` and ``spark_connect`` connections.
    """

    conn_type = "flyte_spark"


class FlyteRayConnectionHook(FlyteClusterConnectionHook):
    """``flyte_ray``: a Ray Client address (``ray://h:10001``) or a GCS address (``h:6379``)."""

    conn_type = "flyte_ray"


class FlyteDaskConnectionHook(FlyteClusterConnectionHook):
    """``flyte_dask``: a Dask scheduler (``tcp://h:8786``)."""

    conn_type = "flyte_dask"
