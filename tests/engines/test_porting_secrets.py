"""A secret from an Airflow connection reaches the task as an env var and appears in no log line,
XCom, rendered field or staged spec."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets as pysecrets
from pathlib import Path

import pytest


@pytest.fixture
def secret_value(monkeypatch):
    value = "tok-" + pysecrets.token_hex(16)
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_PORTING_SECRET",
                       json.dumps({"conn_type": "http", "host": "api.example", "password": value}))
    monkeypatch.delenv("PORTING_API_TOKEN", raising=False)
    return value


def test_connection_secret_reaches_the_task_and_leaks_nowhere(dag_runner, secret_value, capfd, caplog, tmp_path):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    caplog.set_level(logging.DEBUG)
    result = dag_runner.run("porting_secrets_dag.py", "porting_secrets")
    assert result.state == "success", result.states
    value = result.value("use_secret")
    assert value["sha256"] == hashlib.sha256(secret_value.encode()).hexdigest()  # it reached the task
    assert "PORTING_API_TOKEN" not in os.environ  # removed after the run

    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert "token is registered with the masker: True" in logs
    assert secret_value not in logs

    with create_session() as session:
        xcoms = session.query(XComModel).filter_by(dag_id="porting_secrets", run_id=result.run_id).all()
        assert xcoms
        assert all(secret_value not in json.dumps(x.value, default=str) for x in xcoms)
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id="porting_secrets").all()
        assert rendered
        assert all(secret_value not in json.dumps(r.rendered_fields, default=str) for r in rendered)

    # The staged spec of the same task holds the reference, never the value.
    from airflow_provider_flyte.core.task_info import TaskInfo
    from airflow_provider_flyte.operators.base import build_spec
    from airflow_provider_flyte.remote.staging import stage_task

    dag = dag_runner.load("porting_secrets_dag.py", "porting_secrets")
    task = dag.get_task("use_secret")
    spec = build_spec(TaskInfo(dag_id="porting_secrets", task_id="use_secret", run_id="r1",
                               dag_file=dag.fileloc), None, task.env, None)
    assert spec.secrets[0]["group"] == "flyte_porting_secret"
    stage_task(spec, task.python_callable, [], {"label": "x"}, base=f"file://{tmp_path}")
    written = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert any(p.name == "spec.json" for p in written)
    for path in written:
        assert secret_value.encode() not in path.read_bytes(), path


def test_secret_as_file_and_missing_secret(secret_value):
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.secrets import Secret, exposed

    ref = Secret(group="flyte_porting_secret", key="password", mount="/etc/flyte/secrets").to_ref()
    with exposed([ref]) as names:
        folder = os.environ["FLYTE_SECRETS_DEFAULT_DIR"]
        path = Path(folder, "flyte_porting_secret", "password")
        assert path.read_text() == secret_value
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert names == ["$FLYTE_SECRETS_DEFAULT_DIR/flyte_porting_secret/password"]
    assert not Path(folder).exists()
    with pytest.raises(FlyteConfigError, match="no Airflow Variable or Connection"), exposed(
            [Secret(key="no_such_secret_anywhere").to_ref()]):
        pass
    with pytest.raises(FlyteConfigError, match="Only /etc/flyte/secrets"):
        Secret(key="x", mount="/tmp/x")
    assert Secret(key="my-key").as_env_var == "MY_KEY"
    assert Secret(key="k", group="g").as_env_var == "G_K"
