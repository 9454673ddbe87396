"""A value is secret for where it comes from or what it is (issue 21): through Airflow, no planted secret
reaches the task log, the rendered fields, XCom or an error, and Variable / Connection templates work.

The tasks log their secrets on purpose, so with masking switched off (``masking.sensitive_values``
yielding nothing) the end-to-end test fails.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError

SPARK_VARIABLE = "VarValue-sv-spark-2c81"
ENV_VARIABLE = "VarValue-sv-env-77d3"
CONN_PASSWORD = "ConnPw-sv-a9f3e2"
CONNECT_TOKEN = "ConnectTok-sv-4d0e"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def worker_masking():
    """The task log as a worker writes it: Airflow's ``mask_logs`` processor on every line.

    On a worker the supervisor masks what the task process logs; ``dag.test()`` has no such step, so
    without this nothing in a dag.test() log is ever masked and a "secret not in the log" test could not
    fail. The masker and its secrets are the ones the task registered (mask_secret).
    """
    import structlog
    from airflow.sdk.log import mask_logs

    processors = structlog.get_config()["processors"]  # the live list: loggers already cached use it too
    processors.insert(len(processors) - 1, mask_logs)  # before the renderer
    yield
    processors.remove(mask_logs)


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SV_SPARK_SETTING", SPARK_VARIABLE)
    monkeypatch.setenv("AIRFLOW_VAR_SV_ENV_SETTING", ENV_VARIABLE)
    monkeypatch.setenv("AIRFLOW_CONN_SV_DB", json.dumps({"conn_type": "postgres", "host": "127.0.0.1",
                                                         "login": "app", "password": CONN_PASSWORD}))
    monkeypatch.setenv("AIRFLOW_CONN_SV_CONNECT", json.dumps({
        "conn_type": "flyte_spark", "host": f"sc://127.0.0.1:1/;token={CONNECT_TOKEN}",
        "extra": {"connect_timeout": 1}}))
    from tests.support.dags import secret_values_dag

    return (*secret_values_dag.LITERALS, SPARK_VARIABLE, ENV_VARIABLE, CONN_PASSWORD, CONNECT_TOKEN)


def test_planted_secrets_appear_nowhere_and_templates_reach_the_engine(dag_runner, worker_masking, planted, capfd):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.support.dags.secret_values_dag import AZURE_KEY

    result = dag_runner.run("secret_values_dag.py", "secret_values", run_conf={"n": 3})
    assert result.states[("spark_conf_secrets", -1)] == "success", result.states
    assert result.states[("templated_env_vars", -1)] == "success", result.states
    assert result.states[("ray_userinfo", -1)] == "failed", result.states
    assert result.states[("connect_token", -1)] == "failed", result.states

    # Variable and Connection templates render at run time and reach the engine's config and the task's env.
    spark = result.value("spark_conf_secrets")
    assert spark["from_variable"] == _sha(SPARK_VARIABLE)
    assert spark["from_connection"] == _sha(CONN_PASSWORD)
    assert spark["executors"] == "3"
    assert spark["account_key"] == _sha(AZURE_KEY)
    env = result.value("templated_env_vars")
    assert env == {"n": "3", "db_url": _sha(f"postgresql://app:{CONN_PASSWORD}@127.0.0.1/app"),
                   "from_variable": _sha(ENV_VARIABLE)}

    out, err = capfd.readouterr()
    logs = out + err  # the task log as Airflow writes it (caplog holds the records before the masker)
    assert "Running secret_values.spark_conf_secrets with Spark" in logs
    assert "spark conf spark.hadoop.fs.azure.account.key.svacct.blob.core.windows.net = ***" in logs
    assert "env SV_N = 3" in logs
    # The errors name the address with its credential redacted.
    assert "RayJobConfig.address (ray://sv_user:***@127.0.0.1:1)" in logs
    assert "connection 'sv_connect' (sc://127.0.0.1:1/;token=***)" in logs
    for secret in planted:
        assert secret not in logs, secret

    with create_session() as session:
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id="secret_values",
                                                                       run_id=result.run_id).all()
        assert {r.task_id for r in rendered} >= {"spark_conf_secrets", "ray_userinfo"}
        stored = json.dumps([r.rendered_fields for r in rendered], default=str)
        assert "spark.flyte.sv.from_variable" in stored
        xcoms = json.dumps([x.value for x in session.query(XComModel).filter_by(
            dag_id="secret_values", run_id=result.run_id)], default=str)
    for secret in planted:
        assert secret not in stored, secret
        assert secret not in xcoms, secret


@pytest.mark.parametrize(("build", "shown"), [
    (lambda: __import__("airflow_provider_flyte.plugins.ray", fromlist=["RayJobConfig"]).RayJobConfig(
        worker_node_config=[], address="ray://user:SeCrEt-sv-1@head:10O01"), "ray://user:***@head:10O01"),
    (lambda: __import__("airflow_provider_flyte.plugins.ray", fromlist=["RayJobConfig"]).RayJobConfig(
        worker_node_config=[], address="http://user:SeCrEt-sv-1@head:8265"), "http://user:***@head:8265"),
    (lambda: __import__("airflow_provider_flyte.core.addresses", fromlist=["parse_address"]).parse_address(
        "connection 'c'.host", "sc://h:99999/;token=SeCrEt-sv-1", default_scheme="sc", fix="fix it"),
     "sc://h:99999/;token=***"),
])
def test_an_address_error_shows_its_credential_redacted(build, shown):
    with pytest.raises(FlyteConfigError) as info:
        build()
    assert "SeCrEt-sv-1" not in str(info.value)
    assert shown in str(info.value)


def test_templates_read_params_variables_and_connections_never_conf():
    from airflow.sdk import DAG

    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.operators.spark import FlyteSparkOperator
    from airflow_provider_flyte.plugins.spark import Spark

    def op(**kwargs):
        with DAG("sv_templates", schedule=None, params={"n": 2}):
            return FlyteSparkOperator(task_id="t", python_callable=print, **kwargs)

    op(plugin_config=Spark(spark_conf={"spark.a.secret": "{{ var.value.x }}", "spark.b": "{{ var.json.y.z }}",
                                       "spark.c": "{{ conn.db.password }}"}),
       env=TaskEnvironment(name="e", env_vars={"A": "{{ var.value.x }}", "B": "{{ params.n }}"}))
    with pytest.raises(FlyteConfigError, match=r"may not read dag_run\.conf"):
        op(plugin_config=Spark(spark_conf={"spark.a": "{{ dag_run.conf['a'] }}"}))
    with pytest.raises(FlyteConfigError, match=r"may not read Airflow's configuration \(conf\)"):
        op(plugin_config=Spark(spark_conf={"spark.a": "{{ conf.get('core', 'fernet_key') }}"}))
    with pytest.raises(FlyteConfigError, match=r"TaskEnvironment\.env_vars: env_vars templates may not read "
                                               r"dag_run\.conf"):
        op(plugin_config=Spark(), env=TaskEnvironment(name="e", env_vars={"A": "{{ dag_run.conf['a'] }}"}))
    with pytest.raises(FlyteConfigError, match=r"TaskEnvironment\.env_vars: an env_vars template uses a Param "
                                               r"the DAG does not declare \(got \['m'\]\)"):
        op(plugin_config=Spark(), env=TaskEnvironment(name="e", env_vars={"A": "{{ params.m }}"}))
    with pytest.raises(FlyteConfigError) as info:
        op(plugin_config=Spark(), conn_id="{{ params.c }}")
    assert "conn_id is not templated" in str(info.value)
    assert "AIRFLOW_CONN_{{" not in str(info.value)
