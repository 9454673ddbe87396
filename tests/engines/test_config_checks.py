"""Config values that were accepted silently (or refused with a raw message) are refused when the config is built,
naming the field, the value and the fix; through Airflow they are DAG import errors. Issue 21's list: unknown
``ray start`` options, ``runtime_env`` and ``rdzv_configs`` keys (with a "did you mean"), ``spark_conf`` keys without
``spark.`` and sizes Spark cannot read, a bool for a count, absurd CPU / replica / concurrency numbers, non-finite
TTLs, and a Param whose default its own bounds refuse. Valid neighbours of each stay accepted.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_flyte import Resources, ReusePolicy
from airflow_provider_flyte.params import dask_workers, knob, spark_executor_memory, spark_executors
from airflow_provider_flyte.plugins.dask import WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic, RunPolicy
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark
from tests.support.config_errors import raises_config_error
from tests.support.errors_catalogue import render

BAD_DAGS = Path(__file__).parents[1] / "support" / "bad_dags"


# -- Ray ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "key", "fix"), [
    ({"numcpus": "2"}, "numcpus", "did you mean 'num-cpus'?"),
    ({"num_cpus": "2"}, "num_cpus", "did you mean 'num-cpus'?"),
    ({"dashbord-host": "0.0.0.0"}, "dashbord-host", "did you mean 'dashboard-host'?"),
])
def test_an_unknown_ray_start_option_is_refused_with_the_closest_one(params, key, fix):
    with raises_config_error(f"HeadNodeConfig.ray_start_params[{key!r}]", key, fix, problem="not a `ray start` option"):
        HeadNodeConfig(ray_start_params=params)
    with raises_config_error(f"WorkerNodeConfig.ray_start_params[{key!r}]", key, fix):
        WorkerNodeConfig(group_name="g", replicas=1, ray_start_params=params)


@pytest.mark.parametrize(("key", "value", "problem", "fix"), [
    ("num-gpus", "x", "not a number of GPUs", '{"num-gpus": "2"}'),
    ("num-cpus", "1.5", "not a number of CPUs", '{"num-cpus": "2"}'),  # ray start's --num-cpus is an int
    ("num-cpus", "100000", "more than 1024 CPUs for one worker", "ask for at most 1024 CPUs per worker"),
    ("port", "http", "takes a whole number", '{"port": "2"}'),
    ("block", "yes", 'takes "true" (adds the flag) or "false"', '{"block": "true"}'),
    ("log-color", "maybe", "takes one of auto, false, true", '{"log-color": "auto"}'),
    ("system-config", "{not json", "takes a JSON object", '{"system-config": "{}"}'),
])
def test_a_ray_start_value_the_option_cannot_take_is_refused(key, value, problem, fix):
    with raises_config_error(f"HeadNodeConfig.ray_start_params[{key!r}]", value, fix, problem=problem):
        HeadNodeConfig(ray_start_params={key: value})


def test_ray_start_options_ray_accepts_stay_accepted_and_one_typo_among_them_is_not():
    params = {"num-cpus": "2", "num-gpus": "0", "log-color": "True", "block": "true", "disable-usage-stats": "false",
              "include-dashboard": "false", "system-reserved-cpu": "0.5", "system-config": '{"a": 1}',
              "resources": '{"x": 1}', "dashboard-host": "127.0.0.1"}
    assert HeadNodeConfig(ray_start_params=params).ray_start_params == params
    with raises_config_error("HeadNodeConfig.ray_start_params['object-store-memry']", "object-store-memry",
                             "did you mean 'object-store-memory'?"):
        HeadNodeConfig(ray_start_params={**params, "object-store-memry": "10000000"})


def test_a_rendered_ray_start_value_is_checked_when_the_task_starts():
    config = HeadNodeConfig(ray_start_params={"num-gpus": "{{ params.gpus }}"})  # a template: checked after rendering
    with raises_config_error("HeadNodeConfig.ray_start_params['num-gpus']", "x", '{"num-gpus": "2"}'):
        render(config, gpus="x")
    assert render(config, gpus=1).ray_start_params == {"num-gpus": "1"}


@pytest.mark.parametrize(("runtime_env", "field", "key", "fix"), [
    ({"pipp": ["requests"]}, "RayJobConfig.runtime_env['pipp']", "pipp", "did you mean 'pip'?"),
    ({"envvars": {"A": "1"}}, "RayJobConfig.runtime_env['envvars']", "envvars", "did you mean 'env_vars'?"),
    ({"my_plugin": {}}, "RayJobConfig.runtime_env['my_plugin']", "my_plugin", "use one of conda, config,"),
    ({"config": {"setup_timeout": 60}}, "RayJobConfig.runtime_env['config']['setup_timeout']", "setup_timeout",
     "did you mean 'setup_timeout_seconds'?"),
])
def test_an_unknown_runtime_env_key_is_refused(runtime_env, field, key, fix):
    with raises_config_error(field, key, fix, problem="Ray knows"):
        RayJobConfig(worker_node_config=[], runtime_env=runtime_env)


def test_runtime_env_fields_ray_reads_stay_accepted_and_one_typo_among_them_is_not():
    runtime_env = {"pip": ["requests"], "env_vars": {"A": "1"}, "working_dir": ".", "py_modules": ["./pkg"],
                   "excludes": ["*.csv"], "config": {"setup_timeout_seconds": 60, "eager_install": True}}
    assert RayJobConfig(worker_node_config=[], runtime_env=runtime_env).runtime_env == runtime_env
    with raises_config_error("RayJobConfig.runtime_env['exclude']", "exclude", "did you mean 'excludes'?"):
        RayJobConfig(worker_node_config=[], runtime_env={**runtime_env, "exclude": ["*.csv"]})


# -- PyTorch Elastic ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("backend", "key", "fix"), [
    ("c10d", "join_timout", "did you mean 'join_timeout'?"),
    ("c10d", "heartbeat", "did you mean 'heartbeat_timeout'?"),
    ("c10d", "local_addr", "use one of close_timeout,"),  # a LaunchConfig field: torch would get it twice
    ("etcd", "join_timeout", "use one of cacert, cert, etcd_prefix,"),  # the etcd backend has no join timeout
    ("etcd-v2", "is_host", "use one of ca_cert,"),  # only the c10d store reads is_host
])
def test_an_rdzv_configs_key_the_backend_does_not_read_is_refused(backend, key, fix):
    with raises_config_error(f"Elastic.rdzv_configs[{key!r}]", key, fix, problem=f"the {backend} rendezvous reads"):
        Elastic(nnodes=1, nproc_per_node=1, rdzv_backend=backend, rdzv_configs={key: 60})


def test_rdzv_configs_keys_torch_reads_stay_accepted_and_one_typo_among_them_is_not():
    Elastic(nnodes=1, nproc_per_node=1)  # the default {"timeout": 900, "join_timeout": 900}
    conf = {"timeout": 60, "join_timeout": 60, "last_call_timeout": 5, "close_timeout": 5, "heartbeat_timeout": 5,
            "read_timeout": 30, "keep_alive_interval": 5, "keep_alive_max_attempt": 3, "is_host": True}
    assert Elastic(nnodes=1, nproc_per_node=1, rdzv_configs=conf).rdzv_configs == conf
    Elastic(nnodes="1:2", nproc_per_node=1, rdzv_backend="etcd-v2", rdzv_configs={"protocol": "https", "ssl_cert": "c"})
    with raises_config_error("Elastic.rdzv_configs['keep_alive_max_attempts']", "keep_alive_max_attempts",
                             "did you mean 'keep_alive_max_attempt'?"):
        Elastic(nnodes=1, nproc_per_node=1, rdzv_configs={**conf, "keep_alive_max_attempts": 3})


# -- Spark --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "fix"), [
    ("fs.s3a.endpoint", "a Hadoop property goes in hadoop_conf: Spark(hadoop_conf={'fs.s3a.endpoint': ...})"),
    ("hadoop.security.authentication", "goes in hadoop_conf"),
    ("executor.memory", "did you mean 'spark.executor.memory'?"),
    ("sql.shuffle.partitions", "did you mean 'spark.sql.shuffle.partitions'?"),
])
def test_a_spark_conf_key_without_the_spark_prefix_is_refused(key, fix):
    with raises_config_error(f"Spark.spark_conf[{key!r}]", key, fix, problem="start with 'spark.'"):
        Spark(spark_conf={key: "1"})


@pytest.mark.parametrize(("key", "value"), [
    ("spark.executor.memory", "2 GB"), ("spark.driver.memory", "1 g"), ("spark.executor.pyspark.memory", "2gig"),
    ("spark.executor.memoryOverhead", "512 m"), ("spark.driver.maxResultSize", "1.5g"),
])
def test_a_memory_size_spark_cannot_read_is_refused(key, value):
    with raises_config_error(f"Spark.spark_conf[{key!r}]", value, 'use a size such as "4g"', problem="not a JVM"):
        Spark(spark_conf={key: value})


def test_sizes_and_keys_spark_reads_stay_accepted_and_a_hadoop_key_among_them_is_not():
    conf = {"spark.executor.memory": "2GB", "spark.driver.memory": " 1024M ", "spark.executor.memoryOverhead": "384",
            "spark.driver.maxResultSize": "0", "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000"}
    spark = Spark(spark_conf=conf, hadoop_conf={"fs.s3a.path.style.access": "true"})
    assert spark.effective_conf()["spark.hadoop.fs.s3a.path.style.access"] == "true"
    with raises_config_error("Spark.spark_conf['fs.s3a.path.style.access']", "fs.s3a.path.style.access",
                             "goes in hadoop_conf"):
        Spark(spark_conf={**conf, "fs.s3a.path.style.access": "true"})


# -- a bool where a number is expected ----------------------------------------------------------------
@pytest.mark.parametrize(("build", "field", "value"), [
    (lambda: WorkerGroup(number_of_workers=True), "WorkerGroup.number_of_workers", True),
    (lambda: WorkerNodeConfig(group_name="g", replicas=True), "WorkerNodeConfig.replicas", True),
    (lambda: WorkerNodeConfig(group_name="g", replicas=1, max_replicas=True), "WorkerNodeConfig.max_replicas", True),
    (lambda: Elastic(nnodes=1, nproc_per_node=True), "Elastic.nproc_per_node", True),
    (lambda: Elastic(nnodes=True, nproc_per_node=1), "Elastic.nnodes", True),
    (lambda: Elastic(nnodes=1, nproc_per_node=1, max_restarts=False), "Elastic.max_restarts", False),
    (lambda: RunPolicy(backoff_limit=True), "RunPolicy.backoff_limit", True),
    (lambda: RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=True),
     "RayJobConfig.ttl_seconds_after_finished", True),
    (lambda: Resources(cpu=True), "Resources.cpu", True),
    (lambda: Resources(gpu=True), "Resources.gpu", True),
])
def test_a_bool_for_a_number_is_refused(build, field, value):
    with raises_config_error(field, value, "not True or False", problem="a bool where a number is expected"):
        build()


def test_bool_fields_still_take_bools_and_counts_still_do_not():
    assert Elastic(nnodes=1, nproc_per_node=1, nccl_async_error_handling=True).nccl_async_error_handling is True
    assert RayJobConfig(worker_node_config=[], enable_autoscaling=True).enable_autoscaling is True
    with raises_config_error("Elastic.nproc_per_node", True, "not True or False"):
        Elastic(nnodes=1, nproc_per_node=True, nccl_async_error_handling=True)


# -- bounds -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("build", "field", "value"), [
    (lambda: WorkerGroup(resources=Resources(cpu=10**9)), "WorkerGroup.resources.cpu", 10**9),
    (lambda: WorkerGroup(resources=Resources(cpu=("2000", "4000"))), "WorkerGroup.resources.cpu", ("2000", "4000")),
    (lambda: HeadNodeConfig(requests=Resources(cpu="5000")), "HeadNodeConfig.requests.cpu", "5000"),
])
def test_more_cpus_per_worker_than_any_machine_has_is_refused(build, field, value):
    with raises_config_error(field, value, "ask for at most 1024 CPUs per worker", problem="more than 1024 CPUs"):
        build()
    assert WorkerGroup(resources=Resources(cpu=1024)).resources.cpu == 1024


@pytest.mark.parametrize(("kwargs", "field", "value", "problem"), [
    ({"replicas": 10**6}, "ReusePolicy.replicas", (10**6, 10**6), "at most 64"),
    ({"replicas": (1, 65)}, "ReusePolicy.replicas", (1, 65), "at most 64"),
    ({"concurrency": 10**6}, "ReusePolicy.concurrency", 10**6, "at most 256"),
    ({"idle_ttl": float("inf")}, "ReusePolicy.idle_ttl", float("inf"), "a finite number of seconds"),
    ({"idle_ttl": float("nan")}, "ReusePolicy.idle_ttl", float("nan"), "a finite number of seconds"),
    ({"idle_ttl": 1e20}, "ReusePolicy.idle_ttl", 1e20, "longer than a timedelta holds"),
    ({"scaledown_ttl": float("inf")}, "ReusePolicy.scaledown_ttl", float("inf"), "a finite number of seconds"),
    ({"scaledown_ttl": float("-inf")}, "ReusePolicy.scaledown_ttl", float("-inf"), "a finite number of seconds"),
])
def test_reuse_policy_numbers_out_of_any_use_are_refused(kwargs, field, value, problem):
    with raises_config_error(field, value, "pass ", problem=problem):
        ReusePolicy(**kwargs)
    policy = ReusePolicy(replicas=(0, 64), concurrency=256, idle_ttl=timedelta(days=365), scaledown_ttl=86400.5)
    assert (policy.max_replicas, policy.concurrency, policy.scaledown_ttl_s) == (64, 256, 86400.5)


# -- Param helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("build", "field", "value", "problem"), [
    (lambda: spark_executors(default=64), "Param 'Spark executors'.default", 64, "own bounds (1 to 32)"),
    (lambda: dask_workers(default=0), "Param 'Dask workers'.default", 0, "own bounds (1 to 32)"),
    (lambda: spark_executor_memory(default="3g"), "Param 'Spark executor memory'.default", "3g",
     "not one of the Param's values"),
    (lambda: knob(5, title="n", minimum=10, maximum=1), "Param 'n'.minimum", 10, "above the maximum (1)"),
])
def test_a_param_whose_default_its_own_schema_refuses_is_refused(build, field, value, problem):
    with raises_config_error(field, value, "pass ", problem=problem):
        build()
    assert spark_executors(default=32, maximum=32).value == 32


# -- through Airflow: DAG import errors ---------------------------------------------------------------
@pytest.mark.parametrize(("dag_file", "expected"), [
    ("ray_start_param_typo.py", r"HeadNodeConfig\.ray_start_params\['numcpus'\]: not a `ray start` option .*"
     r"\(got 'numcpus'\)\. Fix: did you mean 'num-cpus'\?"),
    ("ray_runtime_env_typo.py", r"RayJobConfig\.runtime_env\['pipp'\]: .*\(got 'pipp'\)\. Fix: did you mean 'pip'\?"),
    ("elastic_rdzv_typo.py", r"Elastic\.rdzv_configs\['join_timout'\]: .*Fix: did you mean 'join_timeout'\?"),
    ("spark_conf_hadoop_key.py", r"Spark\.spark_conf\['fs\.s3a\.endpoint'\]: .*Fix: a Hadoop property goes in "
     r"hadoop_conf"),
    ("spark_memory_space.py", r"Spark\.spark_conf\['spark\.executor\.memory'\]: not a JVM memory size "
     r"\(got '2 GB'\)\. Fix: use a size such as \"4g\""),
    ("dask_workers_bool.py", r"WorkerGroup\.number_of_workers: a bool where a number is expected .*\(got True\)"),
    ("reuse_replicas_huge.py", r"ReusePolicy\.replicas: replicas must be at most 64.*\(got \(1000000, 1000000\)\)"),
    ("param_default_out_of_bounds.py", r"Param 'Dask workers'\.default: outside the Param's own bounds "
     r"\(1 to 32\) \(got 64\)"),
])
def test_each_engine_s_bad_config_is_a_dag_import_error(dag_file, expected):
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(BAD_DAGS / dag_file), bundle_path=BAD_DAGS)
    (error,) = bag.import_errors.values()
    assert re.search(expected, error), error


def test_a_local_dask_worker_with_more_threads_than_the_machine_fails_before_it_starts(dag_runner, tmp_path):
    result = dag_runner.run("config_checks_dask_threads.py", run_conf={"attempt_dir": str(tmp_path)})
    assert result.states[("too_many_threads", -1)] == "failed"
    message = (tmp_path / "too_many_threads.error").read_text()
    assert message.startswith("WorkerGroup.resources.cpu: this machine has "), message
    assert "threads in one local Dask worker (16 per CPU)" in message and "Fix: ask for at most" in message
