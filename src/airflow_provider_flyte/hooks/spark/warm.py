"""Spark on a warm server of this machine (``ReusePolicy``): a Spark Connect session on a leased server.

Each task gets its own Spark Connect session (its own artifacts: the code bundle is added to that
session only), released in ``post``; the server stays up for the next task until ``idle_ttl``.
Spark SQL conf (``spark.sql.*``, except the static ones Spark reads only at start) and Hadoop conf
(``spark.hadoop.*``: it may hold credentials) are set on the task's session only. Every other property
(``spark.master``, ``spark.executor.*``, ``spark.driver.*``, ``spark.ui.*``, the environment's
``env_vars`` as ``spark.executorEnv.*`` ...) is one Spark reads at start, which a Connect session cannot
set: it is set on the server and chooses it (the fingerprint). The server reads them from a file only
its user can read, never from its command line (``warm/servers/spark.py``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.masking import is_sensitive
from airflow_provider_flyte.core.spec import WARM
from airflow_provider_flyte.hooks.placements.warm import WarmRun, lease_server
from airflow_provider_flyte.hooks.spark import LOCAL_MASTER
from airflow_provider_flyte.hooks.spark.attach import AttachSparkHook

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

SERVER_MODULE = "airflow_provider_flyte.warm.servers.spark"
#: ``spark.openlineage.*``: a task run's OpenLineage parent is its session's, not the server's (docs/lineage.md).
_SESSION_PREFIXES = ("spark.sql.", "spark.hadoop.", "spark.openlineage.")
#: Spark SQL's static conf (StaticSQLConf): read when the server starts, refused by a session.
_STATIC_SQL = ("spark.sql.warehouse.dir", "spark.sql.catalogImplementation", "spark.sql.extensions",
               "spark.sql.globalTempDatabase", "spark.sql.queryExecutionListeners",
               "spark.sql.streaming.streamingQueryListeners", "spark.sql.hive.metastore.", "spark.sql.connect.",
               "spark.sql.ui.", "spark.sql.event.truncate.length", "spark.sql.sources.schemaStringLengthThreshold")


def is_server_setting(key: str) -> bool:
    """Whether only the server can take ``key`` (Spark reads it at start); then it is in the fingerprint.

    A key that looks sensitive (Airflow's rules: secret, password, token, key, ...) goes to the task's
    session, as on an existing Connect server; a server setting never goes on a command line either.
    """
    if key.startswith(_SESSION_PREFIXES) and not key.startswith(_STATIC_SQL):
        return False
    return not is_sensitive(key)


class WarmSparkHook(WarmRun, AttachSparkHook):
    placement = WARM
    _warm_target: ClusterTarget | None = None

    def server_params(self) -> dict[str, Any]:
        """The settings fixed at server start: the JVM's and executors' properties."""
        conf = {k: str(v) for k, v in self.config.effective_conf().items() if is_server_setting(k)}
        conf.setdefault("spark.master", LOCAL_MASTER)
        conf.setdefault("spark.pyspark.python", sys.executable)
        if self.task.project_root is not None:  # executors import the DAG folder's helpers, as locally
            conf.setdefault("spark.executorEnv.PYTHONPATH", str(self.task.project_root))
        for key, value in self.spec.env_vars.items():
            conf.setdefault(f"spark.executorEnv.{key}", value)
        return {"conf": conf}

    def _cluster_target(self) -> ClusterTarget:
        if self._warm_target is None:
            self.lease, self._warm_target = lease_server(self, server_module=SERVER_MODULE,
                                                         params=self.server_params(), conn_type="spark_connect")
        return self._warm_target

    def cluster_conf(self, target: ClusterTarget) -> dict[str, str]:
        """Only the per-session properties: the server's were set when it started."""
        return {k: v for k, v in super().cluster_conf(target).items() if not is_server_setting(k)}

    def _login(self) -> str | None:
        return None
