"""Which settings choose the warm server (the fingerprint) and which are per task; no engine is started."""

from __future__ import annotations

from airflow_provider_flyte import ReusePolicy
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.warm.fingerprint import fingerprint

SPEC = TaskSpec(reusable=ReusePolicy(replicas=1).to_dict())


def test_spark_server_settings_are_the_jvms_and_the_rest_is_per_session():
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

    conf = {"spark.executor.memory": "1g", "spark.driver.memory": "2g", "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "4"}
    hook = FlyteSparkHook(Spark(spark_conf=conf), SPEC)
    assert hook.placement == "warm"
    server = hook.server_params()["conf"]
    assert server["spark.executor.memory"] == "1g" and server["spark.driver.memory"] == "2g"
    assert "spark.sql.shuffle.partitions" not in server
    session = hook.cluster_conf(ClusterTarget(conn_id="warm:x", conn_type="spark_connect", address="sc://localhost:1"))
    assert session == {"spark.sql.shuffle.partitions": "4"}
    other = FlyteSparkHook(Spark(spark_conf={**conf, "spark.sql.shuffle.partitions": "9"}), SPEC)
    assert other.server_params() == hook.server_params()  # SQL conf does not pick another server
    bigger = FlyteSparkHook(Spark(spark_conf={**conf, "spark.executor.memory": "2g"}), SPEC)
    assert bigger.server_params() != hook.server_params()


def test_spark_properties_a_connect_session_cannot_set_go_to_the_server_and_credentials_never_do():
    """``spark.ui.enabled`` and static SQL conf are read at start (a Connect session refuses them); Hadoop
    conf may carry a secret key, so it stays on the task's session and out of the server's command line."""
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

    conf = {"spark.ui.enabled": "false", "spark.executorEnv.MODE": "batch", "spark.serializer": "kryo",
            "spark.sql.warehouse.dir": "/tmp/wh", "spark.sql.shuffle.partitions": "4",
            "spark.ssl.keyPassword": "pw"}
    hook = FlyteSparkHook(Spark(spark_conf=conf, hadoop_conf={"fs.s3a.secret.key": "s3cr3t"}), SPEC)
    server = hook.server_params()["conf"]
    assert {k: server[k] for k in ("spark.ui.enabled", "spark.executorEnv.MODE", "spark.serializer",
                                   "spark.sql.warehouse.dir")} == {
        "spark.ui.enabled": "false", "spark.executorEnv.MODE": "batch", "spark.serializer": "kryo",
        "spark.sql.warehouse.dir": "/tmp/wh"}
    assert not [k for k in server if k.startswith("spark.hadoop.")] and "s3cr3t" not in repr(server)
    assert "spark.ssl.keyPassword" not in server  # a sensitive-looking key stays off the server's command line
    session = hook.cluster_conf(ClusterTarget(conn_id="warm:x", conn_type="spark_connect", address="sc://localhost:1"))
    assert session == {"spark.sql.shuffle.partitions": "4", "spark.hadoop.fs.s3a.secret.key": "s3cr3t",
                       "spark.ssl.keyPassword": "pw"}
    with_ui = FlyteSparkHook(Spark(spark_conf={**conf, "spark.ui.enabled": "true"}), SPEC)
    assert with_ui.server_params() != hook.server_params()  # another server, not a refused session setting


def test_dask_fingerprint_is_worker_count_threads_and_memory_plus_env_and_scope():
    one = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=1)), SPEC).server_params()
    two = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=2)), SPEC).server_params()
    assert one != two
    base = fingerprint("Dask", one, env_vars={}, image=None, run_key=None)
    assert base == fingerprint("Dask", dict(one), env_vars={}, image=None, run_key=None)
    assert base != fingerprint("Dask", one, env_vars={"A": "1"}, image=None, run_key=None)
    assert base != fingerprint("Dask", one, env_vars={}, image="img:2", run_key=None)
    assert base != fingerprint("Dask", one, env_vars={}, image=None, run_key="dag/run_1")
