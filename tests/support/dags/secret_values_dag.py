"""Secrets that are secret for where they come from or what they are, not for their key's name (issue 21).

Planted: an Azure account key, an Azure SAS, a GCS private key, database URLs with passwords, a Hive
``ConnectionURL`` with a password, a Variable and a Connection read by plugin-config and ``env_vars``
templates, Ray userinfo in ``RayJobConfig.address``, a Spark Connect ``;token=`` in a connection's host.
The test (tests/engines/test_secret_values.py) sets the Variables and Connections and looks for every value in
the task log, the rendered fields, XCom and the errors. Each task logs its secrets on purpose into the
task's logger: only Airflow's masker stands between them and the log.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark

#: The literal secrets (the test imports them); Variables/Connections hold the others.
AZURE_KEY = "AzKey-sv-4f1c9e"
AZURE_SAS = "sv=2024&sig=SasSv7b2d"
GCS_PRIVATE_KEY = "GcsPk-sv-8a3e51"
DB_PASSWORD = "DbPw-sv-51c0aa"
HIVE_PASSWORD = "HivePw-sv-93d2"
RAY_PASSWORD = "RayPw-sv-6e77f0"
RAY_ENV_DB_PASSWORD = "RayDbPw-sv-0b94"
LITERALS = (AZURE_KEY, AZURE_SAS, GCS_PRIVATE_KEY, DB_PASSWORD, HIVE_PASSWORD, RAY_PASSWORD, RAY_ENV_DB_PASSWORD)

ACCOUNT_KEY = "spark.hadoop.fs.azure.account.key.svacct.blob.core.windows.net"
SPARK = Spark(
    spark_conf={
        "spark.ui.enabled": "false",
        ACCOUNT_KEY: AZURE_KEY,
        "spark.hadoop.fs.azure.sas.data.svacct.blob.core.windows.net": AZURE_SAS,
        "spark.hadoop.fs.gs.auth.service.account.private.key": GCS_PRIVATE_KEY,
        "spark.executorEnv.DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@127.0.0.1:5432/app",
        "spark.flyte.sv.from_variable": "{{ var.value.sv_spark_setting }}",
        "spark.flyte.sv.from_connection": "{{ conn.sv_db.password }}",
        "spark.flyte.sv.executors": "{{ params.n }}",
    },
    hadoop_conf={"javax.jdo.option.ConnectionURL": f"jdbc:mysql://127.0.0.1/metastore?user=hive&password={HIVE_PASSWORD}"},
)
RAY = RayJobConfig(
    worker_node_config=[],
    address=f"ray://sv_user:{RAY_PASSWORD}@127.0.0.1:1",  # nothing listens on port 1: fails when probed
    runtime_env={"env_vars": {"DATABASE_URL": f"postgresql://app:{RAY_ENV_DB_PASSWORD}@127.0.0.1/app"}},
)
env = TaskEnvironment(
    name="secret_values",
    env_vars={
        "SV_N": "{{ params.n }}",
        "SV_DB_URL": "postgresql://app:{{ conn.sv_db.password }}@127.0.0.1/app",
        "SV_FROM_VARIABLE": "{{ var.value.sv_env_setting }}",
    },
)


def digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


@dag(dag_id="secret_values", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params={"n": 2})
def secret_values():
    @flyte_task(plugin_config=SPARK)
    def spark_conf_secrets() -> dict:
        conf = ctx().data["spark_session"].sparkContext.getConf()
        for key, value in conf.getAll():
            ctx().logger.info("spark conf %s = %s", key, value)  # the masker must hide every secret here
        return {"from_variable": digest(conf.get("spark.flyte.sv.from_variable")),
                "from_connection": digest(conf.get("spark.flyte.sv.from_connection")),
                "executors": conf.get("spark.flyte.sv.executors"),
                "account_key": digest(conf.get(ACCOUNT_KEY))}

    @env.task
    def templated_env_vars() -> dict:
        for name in ("SV_N", "SV_DB_URL", "SV_FROM_VARIABLE"):
            ctx().logger.info("env %s = %s", name, os.environ.get(name))
        return {"n": os.environ.get("SV_N"), "db_url": digest(os.environ.get("SV_DB_URL")),
                "from_variable": digest(os.environ.get("SV_FROM_VARIABLE"))}

    @flyte_task(plugin_config=RAY)
    def ray_userinfo() -> None:
        raise AssertionError("the address does not answer: the task fails before it runs")

    @flyte_task(plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}), conn_id="sv_connect")
    def connect_token() -> None:
        raise AssertionError("the server does not answer: the task fails before it runs")

    spark_conf_secrets()
    templated_env_vars()
    ray_userinfo()
    connect_token()


secret_values()
