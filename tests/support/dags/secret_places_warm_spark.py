"""A warm Spark server started with secrets in its start-time properties (tests/engines/spark/test_warm_secrets.py).

``SECRET_PLACES_ENV`` reaches the server as ``spark.executorEnv.AWS_SECRET_ACCESS_KEY`` (from
``env_vars``), ``SECRET_PLACES_URL`` as a JDBC URL's password in ``spark.executorEnv.WAREHOUSE_URL`` (a name
that does not look sensitive). The task reports, as digests, what a UDF on the server sees, and which
processes of the machine hold either value on their command line while the server runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

ENV_SECRET = os.environ.get("SECRET_PLACES_ENV", "unset-env-secret")
URL_SECRET = os.environ.get("SECRET_PLACES_URL", "unset-url-secret")

warm_env = TaskEnvironment(
    name="secret_places_warm",
    env_vars={"AWS_SECRET_ACCESS_KEY": ENV_SECRET, "WAREHOUSE_URL": f"jdbc:postgresql://etl:{URL_SECRET}@db/wh"},
    plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "512m"}),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)


def _digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def _seen_by_a_udf(_: int) -> str:
    import os

    return json.dumps({"env": _digest(os.environ.get("AWS_SECRET_ACCESS_KEY")),
                       "url": _digest(os.environ.get("WAREHOUSE_URL"))})


def _server_pids() -> list[int]:
    """The warm server's processes and all their descendants."""
    import psutil

    pids = []
    for record in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json"):
        for ident in json.loads(record.read_text())["pids"]:
            proc = psutil.Process(int(ident["pid"]))
            pids += [proc.pid, *(child.pid for child in proc.children(recursive=True))]
    return pids


def _command_lines_holding(*values: str) -> list[int]:
    """Every process of the machine whose /proc/<pid>/cmdline (what ps shows any user) holds one of ``values``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(value in cmdline for value in values):
                found.append(int(entry.name))
    return found


@dag(dag_id="secret_places_warm_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["test", "warm"])
def secret_places_warm_spark():
    @warm_env.task
    def look() -> dict:
        from pyspark.sql.functions import udf

        spark = ctx().data["spark_session"]
        seen = json.loads(spark.range(1).select(udf(_seen_by_a_udf, "string")("id").alias("v")).collect()[0]["v"])
        server = _server_pids()
        return {"seen": seen, "server_processes": len(server),
                "server_folders": [str(p.parent) for p in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json")],
                "holding": _command_lines_holding(ENV_SECRET, URL_SECRET),
                "expected": {"env": _digest(ENV_SECRET), "url": _digest(f"jdbc:postgresql://etl:{URL_SECRET}@db/wh")}}

    look()


secret_places_warm_spark()
