"""``Spark``: flyteplugins' Spark config (``flyteplugins.spark.task.Spark``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.plugins.spark_conf import check_spark_conf

DEFAULT_APP_NAME = "FlyteSpark"
#: Spark properties a warm Spark server sets itself: it listens on loopback, on a port it picks, in its own folder.
WARM_SPARK_OWNED = ("spark.connect.grpc.binding.", "spark.local.dir")


@dataclass
class Spark(PluginConfig):
    """Run the task with a ``SparkSession`` in ``ctx().data["spark_session"]``.

    :param spark_conf: Spark properties applied to the session (``spark.executor.instances`` ...).
    :param hadoop_conf: Hadoop properties, applied as ``spark.hadoop.<key>``.
    :param executor_path: Python interpreter for executors (``PYSPARK_PYTHON`` / ``spark.pyspark.python``).
    :param applications_path: main application file, for SparkApplication on Kubernetes.
    :param driver_pod: pod template for the driver on Kubernetes.
    :param executor_pod: pod template for executors on Kubernetes.
    """

    spark_conf: dict[str, str] | None = None
    hadoop_conf: dict[str, str] | None = None
    executor_path: str | None = None
    applications_path: str | None = None
    driver_pod: Any | None = None
    executor_pod: Any | None = None

    def __post_init__(self) -> None:
        if self.spark_conf is None:
            self.spark_conf = {}
        if self.hadoop_conf is None:
            self.hadoop_conf = {}
        super().__post_init__()

    def check(self) -> None:
        check_spark_conf("Spark.spark_conf", self.spark_conf or {})

    def check_reuse(self, policy: Any) -> None:
        """A warm server sets its own address and folder: ``spark_conf`` may not (:data:`WARM_SPARK_OWNED`)."""
        spark_conf = self.spark_conf
        if not isinstance(spark_conf, dict):  # a template: its keys are known after rendering
            return
        owned = sorted(k for k in spark_conf if isinstance(k, str) and k.startswith(WARM_SPARK_OWNED))
        if owned:
            raise FlyteConfigError(
                f"Spark.spark_conf[{owned[0]!r}]", spark_conf[owned[0]],
                "a warm Spark server sets this itself (it listens on loopback only, on a port it picks, in a folder "
                "of its own)", f"remove {owned[0]!r} from spark_conf, or drop reusable=... to start Spark per task")

    def effective_conf(self) -> dict[str, str]:
        """``spark_conf`` plus ``hadoop_conf`` as ``spark.hadoop.*`` (explicit spark_conf wins)."""
        conf = {f"spark.hadoop.{k}": v for k, v in (self.hadoop_conf or {}).items()}
        conf.update(self.spark_conf or {})
        if self.executor_path and "spark.pyspark.python" not in conf:
            conf["spark.pyspark.python"] = self.executor_path
        return conf
