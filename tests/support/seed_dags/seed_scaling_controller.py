# ruff: noqa  (the seed page's code as printed: only its import lines are changed)
from airflow_provider_flyte.plugins.spark import Spark
import airflow_provider_flyte as flyte

# Not on the seed page, which uses them without defining them:
spark_env = flyte.TaskEnvironment(name="spark_env", plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}))
task_env = flyte.TaskEnvironment(name="task_env")


@spark_env.task
async def spark_task():
    # The seed page's body is "..."; this one reports what the inner run saw.
    spark = flyte.ctx().data["spark_session"]
    return {
        "count": spark.range(1, 1000).count(),
        "executor_instances": spark.sparkContext.getConf().get("spark.executor.instances"),
        "action": flyte.ctx().action.name,
    }

@task_env.task
async def scaling_controller(num_executors: int):
    # Create a new config with the desired number of instances
    new_conf = Spark(
        spark_conf={
            "spark.executor.instances": str(num_executors),
            "spark.driver.memory": "3000M",
        }
    )
    # Override the task's plugin_config for this specific call
    return await spark_task.override(plugin_config=new_conf)()


# -- not on the seed page: the DAG that runs it --------------------------------------------------
from datetime import datetime  # noqa: E402

from airflow.sdk import DAG  # noqa: E402

with DAG("seed_scaling_controller", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    scaling_controller(num_executors=3)
