"""Spark embedded on the worker: a ``local[*]`` session in the task process."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.core.addresses import parse_address
from airflow_provider_flyte.core.bounds import machine_memory
from airflow_provider_flyte.core.error_text import INSTALL_JAVA
from airflow_provider_flyte.core.spec import LOCAL
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.clusters import DEFAULT_PROBE_TIMEOUT_S, ClusterTarget, probe
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.hygiene.engine_logs import StartupNotices, quiet_engine_loggers
from airflow_provider_flyte.plugins.spark_conf import check_local_driver_memory

#: What the local driver JVM prints at every start, whatever the task: JDK 21's notice of Spark's vector module,
#: Hadoop's missing native library (it uses its Java code), log4j's default-profile banner.
JVM_STARTUP_NOTICES = (
    r"Using incubator modules: jdk\.incubator\.vector",
    r"NativeCodeLoader: Unable to load native-hadoop library",
    r"Using Spark's default log4j profile",
    r"Setting default log level to \"WARN\"",
    r"To adjust logging level use sc\.setLogLevel",
)


class LocalSparkHook(FlyteSparkHook):
    """``local[*]`` (or the config's ``spark.master``) in this process; executors' Python workers
    get the project root on ``PYTHONPATH``."""

    placement = LOCAL

    def start(self) -> dict[str, Any]:
        from pyspark import cloudpickle
        from pyspark.sql import SparkSession

        require_java()
        # py4j's INFO line per closed gateway connection, and the JVM's start-up notices (forwarded by the
        # "spark" logger, jvm.py), out of the task log; restored after the session and the JVM stopped.
        self.add_cleanup(quiet_engine_loggers(("py4j",)))
        notices = StartupNotices(JVM_STARTUP_NOTICES)
        logging.getLogger("spark").addFilter(notices)
        self.add_cleanup(logging.getLogger("spark").removeFilter, notices)
        conf = self.session_conf()
        probe_master(conf["spark.master"])
        if conf["spark.master"].startswith("local"):
            check_local_driver_memory(conf, machine_memory())
        # PYSPARK_PYTHON is read when the context starts; keep it for this task only.
        self.set_default_env("PYSPARK_PYTHON", conf["spark.pyspark.python"])
        if conf["spark.master"].startswith("local"):
            self.set_default_env("SPARK_LOCAL_IP", "127.0.0.1")
        session = self._owned_session(
            SparkSession.builder.appName(self.app_name()), conf,
            reused="Reusing the SparkContext already running in this process; it is not stopped by this task",
            master=_standalone_master(conf["spark.master"]),
        )
        self.pickle_by_value(cloudpickle)
        self._record_ui(session)
        context = session.sparkContext
        self.log.info("Spark session on %s: %d core(s), driver memory %s, UI %s", context.master,
                      context.defaultParallelism, conf.get("spark.driver.memory", "1g (Spark's default)"),
                      self.links.get("spark_ui") or "off")
        return {"spark_session": session}


def require_java(environ: Mapping[str, str] | None = None) -> None:
    """Fail before the JVM start when there is no Java at all (pyspark's own error is ``JAVA_GATEWAY_EXITED``)."""
    environ = os.environ if environ is None else environ
    home = environ.get("JAVA_HOME")
    if home:
        if os.access(os.path.join(home, "bin", "java"), os.X_OK):
            return
        found = f"JAVA_HOME={home} has no bin/java"
    elif shutil.which("java", path=environ.get("PATH")):
        return
    else:
        found = "JAVA_HOME is not set and no java is on PATH"
    raise FlyteEngineError(
        f"Spark: Spark needs Java, and none was found on this machine ({found}). Fix: {INSTALL_JAVA}"
    )


def probe_master(master: str, timeout: float = DEFAULT_PROBE_TIMEOUT_S) -> None:
    """A ``spark://`` master set in ``spark_conf`` must answer within ``timeout``; Spark itself retries
    for about a minute and then fails with a ``Py4JJavaError`` whose message cannot be read."""
    if not master.startswith("spark://"):
        return
    field = "Spark.spark_conf['spark.master']"
    for url in master[len("spark://"):].split(","):  # a standalone HA master list: spark://h1:7077,h2:7077
        parsed = parse_address(field, f"spark://{url}", default_scheme="spark",
                               fix='use spark://host:7077, or leave it unset to run Spark on this worker')
        address = f"spark://{parsed._replace(port=parsed.port or 7077).netloc}"
        probe(_MasterTarget(conn_id="", conn_type="", address=address), timeout=timeout, engine="Spark master")


def _standalone_master(master: str) -> tuple[ClusterTarget, float] | None:
    """A ``spark://`` master in ``spark_conf`` and how long it may take to answer (the probe's timeout)."""
    if not master.startswith("spark://"):
        return None
    return _MasterTarget(conn_id="", conn_type="", address=master), DEFAULT_PROBE_TIMEOUT_S


@dataclass(frozen=True)
class _MasterTarget(ClusterTarget):
    def describe(self) -> str:
        return f"Spark.spark_conf['spark.master'] ({self.address})"
