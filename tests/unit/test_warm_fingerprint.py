"""Which settings choose the warm server (the fingerprint) and which are per task; no engine is started."""

from __future__ import annotations

from airflow_provider_flyte import ReusePolicy
from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.runtime.spec import TaskSpec
from airflow_provider_flyte.warm.fingerprint import fingerprint

SPEC = TaskSpec(reusable=ReusePolicy(replicas=1).to_dict())


def test_spark_server_settings_are_the_jvms_and_the_rest_is_per_session():
    from airflow_provider_flyte.clusters import ClusterTarget

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


def test_dask_fingerprint_is_worker_count_threads_and_memory_plus_env_and_scope():
    one = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=1)), SPEC).server_params()
    two = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=2)), SPEC).server_params()
    assert one != two
    base = fingerprint("Dask", one, env_vars={}, image=None, run_key=None)
    assert base == fingerprint("Dask", dict(one), env_vars={}, image=None, run_key=None)
    assert base != fingerprint("Dask", one, env_vars={"A": "1"}, image=None, run_key=None)
    assert base != fingerprint("Dask", one, env_vars={}, image="img:2", run_key=None)
    assert base != fingerprint("Dask", one, env_vars={}, image=None, run_key="dag/run_1")
