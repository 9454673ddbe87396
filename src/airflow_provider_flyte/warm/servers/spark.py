"""A warm Spark server: a Spark Connect server (``spark-submit --class SparkConnectServer``) on 127.0.0.1.

Its settings (``params["conf"]``, the fingerprint) are the properties a Connect session cannot set:
``spark.master``, ``spark.executor.*``, ``spark.driver.*`` (``spark.driver.memory`` sizes the server JVM),
``spark.ui.*``, static SQL conf, ... (``hooks/spark/warm.py`` chooses them). They reach the server in a
properties file (``conf/server.properties``, mode 0600 in the server's 0700 folder), never on its
command line, which every user of the machine can read (``ps``): a property may hold a secret
(``spark.executorEnv.AWS_SECRET_ACCESS_KEY`` from the environment's ``env_vars``). The gRPC binding and
``spark.local.dir`` are the server's own, given last on the command line, and no setting overrides them. The server requires a per-server token (``SPARK_CONNECT_AUTHENTICATE_TOKEN``);
Python workers are not reused between UDF runs (``spark.python.worker.reuse=false``), so no module or
env var of one task's UDFs reaches the next one's.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.warm.servers import Started, answers, free_port, launch, server_env, wait_for

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 180
#: The server's properties (the user's over these defaults), in its conf folder.
PROPERTIES_FILE = "server.properties"
DEFAULT_PROPERTIES = {"spark.ui.enabled": "false", "spark.python.worker.reuse": "false"}


def start(params: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> Started:
    import pyspark

    spark_home = Path(pyspark.__file__).resolve().parent
    token = secrets.token_hex(32)
    port = free_port()
    conf = dict(params.get("conf") or {})
    master = conf.setdefault("spark.master", "local[*]")
    memory = conf.get("spark.driver.memory", "1g")
    for sub in ("logs", "pids", "work", "conf"):
        (folder / sub).mkdir(mode=0o700, exist_ok=True)  # private, as the server folder itself
    penv = {k: v for k, v in env.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_CONNECT", "SPARK_REMOTE"))}
    penv = server_env(folder, penv, SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(spark_home),
                      PYSPARK_PYTHON=conf.get("spark.pyspark.python", sys.executable),
                      SPARK_DAEMON_MEMORY=str(memory), SPARK_LOG_DIR=str(folder / "logs"),
                      SPARK_PID_DIR=str(folder / "pids"), SPARK_CONF_DIR=str(folder / "conf"),
                      SPARK_CONNECT_AUTHENTICATE_TOKEN=token)
    properties = write_properties(folder / "conf" / PROPERTIES_FILE, {**DEFAULT_PROPERTIES, **conf})
    argv = [str(spark_home / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS, "--name", folder.name,
            "--properties-file", str(properties)]
    # Last, so no property in params can override them (spark-submit: --conf wins over the properties
    # file): the server listens on loopback only, on the port picked here, and works in its own folder.
    argv += ["--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", f"spark.local.dir={folder / 'work'}"]
    procs = [launch(folder, "connect", argv, penv)]
    wait_for(lambda: answers(port), "Spark Connect server", procs, folder, START_TIMEOUT_S)
    return Started(address=f"sc://localhost:{port}", token=token, procs=procs, extra={"master": master})


def write_properties(path: Path, properties: Mapping[str, str]) -> Path:
    """``properties`` as a Java properties file only this user can read (created 0600, never wider)."""
    text = "".join(f"{_escape(key, key=True)}={_escape(str(value))}\n" for key, value in sorted(properties.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _escape(text: str, *, key: bool = False) -> str:
    """``text`` as ``java.util.Properties.load`` reads it back unchanged."""
    out = []
    for i, char in enumerate(text):
        if char in "\\\n\r\t\f" or (key and char in "=: #!") or (char in " #!" and i == 0):
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}.get(char, "\\" + char))
        else:
            out.append(char)
    return "".join(out)
