"""Spark through every spelling: env.task, flyte_task(env), flyte_task(plugin_config=), task.flyte,
override, expand, and the classic operator mapped over configs."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_flyte import TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.operators.spark import FlyteSparkOperator
from airflow_provider_flyte.plugins.spark import Spark

BASE = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
env = TaskEnvironment(name="spark_env", plugin_config=Spark(spark_conf={**BASE, "spark.executor.instances": "2"}))


def live_conf(key: str) -> str | None:
    return ctx().data["spark_session"].sparkContext.getConf().get(key)


def udf_with_helper() -> list[str]:
    """A Python UDF and an RDD function that import a DAG-folder module on Spark's workers."""
    from pyspark.sql.functions import udf

    spark = ctx().data["spark_session"]

    @udf("string")
    def tagged(x: int) -> str:
        from helpers.spark_util import tag

        return tag(x)

    rows = spark.range(3).select(tagged("id").alias("t")).collect()

    def via_rdd(x: int) -> str:
        import helpers.spark_util

        return helpers.spark_util.tag(x * 10)

    return sorted([r.t for r in rows] + spark.sparkContext.parallelize([1, 2], 2).map(via_rdd).collect())


def conf_of_config(key: str = "spark.executor.instances") -> str | None:
    return live_conf(key)


@dag(dag_id="spark_features", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_features():
    @env.task
    def count_rows() -> int:
        return ctx().data["spark_session"].range(1, 1000).count()

    @flyte_task(env)
    async def async_conf() -> str | None:
        return live_conf("spark.executor.instances")

    @flyte_task(plugin_config=Spark(spark_conf={**BASE, "spark.executor.instances": "5"},
                                    hadoop_conf={"fs.flyte.test": "yes"}), retries=2)
    def bare_config() -> dict:
        spark = ctx().data["spark_session"]
        return {
            "instances": live_conf("spark.executor.instances"),
            "hadoop": spark.sparkContext._jsc.hadoopConfiguration().get("fs.flyte.test"),
            "app": spark.sparkContext.appName,
            "master": spark.sparkContext.master,
        }

    @task.flyte(env=env)
    def via_task_flyte(x: int) -> int:
        return ctx().data["spark_session"].range(x).count()

    @flyte_task(env=env, retries=1)
    def square(x: int) -> list:
        return [ctx().data["spark_session"].range(x * x).count(), live_conf("spark.executor.instances")]

    count_rows()
    async_conf()
    bare_config()
    via_task_flyte(7)
    square.override(task_id="overridden", plugin_config=Spark(spark_conf={**BASE, "spark.executor.instances": "9"}))(2)
    square.expand(x=[1, 2, 3])
    square.override(task_id="square_kwargs").expand_kwargs([{"x": 4}, {"x": 5}])
    async_conf.override(
        task_id="env_override",
        env=TaskEnvironment(name="bigger", plugin_config=Spark(spark_conf={**BASE, "spark.executor.instances": "7"})),
    )()
    flyte_task(env=env, task_id="udf_helper")(udf_with_helper)()

    FlyteSparkOperator.partial(task_id="classic_mapped", python_callable=conf_of_config).expand(
        plugin_config=[Spark(spark_conf={**BASE, "spark.executor.instances": "3"}),
                       Spark(spark_conf={**BASE, "spark.executor.instances": "4"})]
    )


spark_features()
