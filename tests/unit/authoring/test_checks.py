"""Value checks of the DAG author's objects."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.authoring.checks import (
    check_cache,
    check_callable,
    check_conn_id,
    check_plugin_type,
    check_secret_env_vars,
    resolve_include,
    validate_plugin_config,
)
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.secrets import Secret


def test_validate_plugin_config_accepts_configs_and_templates_and_names_the_mistake():
    assert validate_plugin_config(Spark(), field="f").config_path == "airflow_provider_flyte.plugins.spark.Spark"
    assert validate_plugin_config("{{ ti.xcom_pull('c') }}", field="f") is None
    with pytest.raises(FlyteConfigError, match=r"a plugin config class, not a config.*call it: Spark\(\.\.\.\)"):
        validate_plugin_config(Spark, field="f")
    with pytest.raises(FlyteConfigError, match="dict is not a plugin config"):
        validate_plugin_config({"spark_conf": {}}, field="f")


def test_plugin_type_of_an_engine_operator():
    check_plugin_type("Op.plugin_config", None, None, "FlyteOperator")
    check_plugin_type("Op.plugin_config", Spark(), Spark, "FlyteSparkOperator")
    check_plugin_type("Op.plugin_config", "{{ x }}", Spark, "FlyteSparkOperator")
    with pytest.raises(FlyteConfigError, match="this operator needs a plugin config"):
        check_plugin_type("Op.plugin_config", None, Spark, "FlyteSparkOperator")
    with pytest.raises(FlyteConfigError, match="FlyteSparkOperator runs Spark configs"):
        check_plugin_type("Op.plugin_config", Dask(), Spark, "FlyteSparkOperator")


def test_secret_env_var_clash_names_both_sides():
    check_secret_env_vars([Secret(key="k", as_env_var="TOKEN")], {"OTHER": "1"})
    with pytest.raises(FlyteConfigError, match=r"env_vars\['TOKEN'\] also sets"):
        check_secret_env_vars([Secret(key="k", as_env_var="TOKEN")], {"TOKEN": "1"})
    with pytest.raises(FlyteConfigError, match="the secret .* also sets"):
        check_secret_env_vars([Secret(key="a", as_env_var="T"), Secret(key="b", as_env_var="T")], None)


def test_cache_callable_and_conn_id():
    check_cache(None, field="f")
    check_cache("disable", field="f")
    with pytest.raises(FlyteConfigError, match="no task-result cache"):
        check_cache("auto", field="f")
    check_callable("f", print)
    with pytest.raises(FlyteConfigError, match="not callable"):
        check_callable("f", 3)
    check_conn_id("f", None)
    check_conn_id("f", "my_cluster")
    for bad in ("", "  ", 7):
        with pytest.raises(FlyteConfigError, match="not a connection id"):
            check_conn_id("f", bad)


def test_resolve_include_expands_globs_and_refuses_paths_outside_the_project(tmp_path):
    project = tmp_path / "dags"
    (project / "templates").mkdir(parents=True)
    (project / "templates" / "a.html").write_text("a")
    (project / "templates" / "b.html").write_text("b")
    (tmp_path / "outside.txt").write_text("x")
    dag_file = project / "dag.py"
    dag_file.write_text("")
    found = resolve_include(("templates/*.html", "templates/a.html"), str(dag_file))
    assert [p.rsplit("/", 1)[1] for p in found] == ["a.html", "b.html"]  # de-duplicated, in order
    assert resolve_include(("x",), None) == ()
    with pytest.raises(FlyteConfigError, match="matches no file"):
        resolve_include(("missing.txt",), str(dag_file))
    with pytest.raises(FlyteConfigError, match="include entries must be str paths"):
        resolve_include(("",), str(dag_file))
