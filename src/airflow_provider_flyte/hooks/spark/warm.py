"""Spark on a warm server of this machine (``ReusePolicy``): a Spark Connect session on a leased server.

Each task gets its own Spark Connect session (its own artifacts: the code bundle is added to that
session only), released in ``post``; the server stays up for the next task until ``idle_ttl``.
Properties fixed at server start (``spark.master``, ``spark.executor.*``, ``spark.driver.*``,
``spark.jars*``, ``spark.pyspark.*``) choose the server (the fingerprint); the others (Spark SQL conf)
are set on the task's session only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.hooks.spark import LOCAL_MASTER
from airflow_provider_flyte.hooks.spark.attach import AttachSparkHook
from airflow_provider_flyte.hooks.warm import WarmRun, lease_server
from airflow_provider_flyte.runtime.spec import WARM

if TYPE_CHECKING:
    from airflow_provider_flyte.clusters import ClusterTarget

SERVER_MODULE = "airflow_provider_flyte.warm.servers.spark"
_SERVER_PREFIXES = ("spark.master", "spark.executor.", "spark.driver.", "spark.jars", "spark.pyspark.")


def is_server_setting(key: str) -> bool:
    return key == "spark.master" or key.startswith(_SERVER_PREFIXES)


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
