"""A warm Spark server: a Spark Connect server (``spark-submit --class SparkConnectServer``) on 127.0.0.1.

Its settings (``params["conf"]``, the fingerprint) are the properties a Connect session cannot set:
``spark.master``, ``spark.executor.*``, ``spark.driver.*`` (``spark.driver.memory`` sizes the server JVM),
``spark.ui.*``, static SQL conf, ... (``hooks/spark/warm.py`` chooses them). The gRPC binding and
``spark.local.dir`` are the server's own and no setting overrides them. The server requires a per-server token (``SPARK_CONNECT_AUTHENTICATE_TOKEN``);
Python workers are not reused between UDF runs (``spark.python.worker.reuse=false``), so no module or
env var of one task's UDFs reaches the next one's.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.warm.servers import Started, answers, free_port, launch, server_env, wait_for

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180


def start(params: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> Started:
    import pyspark

    spark_home = Path(pyspark.__file__).resolve().parent
    token = secrets.token_hex(32)
    port = free_port()
    conf = dict(params.get("conf") or {})
    master = conf.pop("spark.master", "local[*]")
    memory = conf.get("spark.driver.memory", "1g")
    for sub in ("logs", "pids", "work", "conf"):
        (folder / sub).mkdir(exist_ok=True)
    penv = {k: v for k, v in env.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_CONNECT", "SPARK_REMOTE"))}
    penv = server_env(folder, penv, SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(spark_home),
                      PYSPARK_PYTHON=conf.get("spark.pyspark.python", sys.executable),
                      SPARK_DAEMON_MEMORY=str(memory), SPARK_LOG_DIR=str(folder / "logs"),
                      SPARK_PID_DIR=str(folder / "pids"), SPARK_CONF_DIR=str(folder / "conf"),
                      SPARK_CONNECT_AUTHENTICATE_TOKEN=token)
    argv = [str(spark_home / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS, "--name", folder.name,
            "--master", str(master),
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.python.worker.reuse=false"]
    for key, value in sorted(conf.items()):
        argv += ["--conf", f"{key}={value}"]
    # Last, so no property in params can override them (spark-submit: the last --conf wins): the server
    # listens on loopback only, on the port picked here, and works in its own folder.
    argv += ["--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", f"spark.local.dir={folder / 'work'}"]
    procs = [launch(folder, "connect", argv, penv)]
    wait_for(lambda: answers(port), "Spark Connect server", procs, folder, START_TIMEOUT_S)
    return Started(address=f"sc://localhost:{port}", token=token, procs=procs, extra={"master": master})
