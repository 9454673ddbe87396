"""Template scanning and the declared-Params-only rules (no DAG run, no Jinja)."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.authoring.templates import (
    ENV_VARS_FIELD,
    check_conn_id_not_templated,
    check_declared_params,
    check_templates,
    declared_params_only,
    nested_xcom_args,
    param_names,
    rendered_secrets,
    string_templates,
    undeclared_params_error,
    undeclared_params_named,
)
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.spark import Spark


def test_string_templates_finds_templates_in_config_fields_dicts_and_lists():
    config = Spark(spark_conf={"spark.executor.instances": "{{ params.n }}", "spark.app.name": "x"},
                   executor_path="{{ var.value.py }}")
    assert sorted(string_templates(config)) == ["{{ params.n }}", "{{ var.value.py }}"]
    assert string_templates(["a", ("{% if x %}1{% endif %}",), {"k": 3}]) == ["{% if x %}1{% endif %}"]
    assert string_templates("plain") == []


def test_param_names_reads_attribute_and_item_references_but_not_method_calls():
    assert param_names({"a": "{{ params.n }}", "b": "{{ params['m-1'] }}", "c": "{{ params.get('z') }}"}) == {
        "n", "m-1"}


def test_dag_run_conf_and_airflow_conf_are_refused_var_and_conn_allowed():
    with pytest.raises(FlyteConfigError, match="plugin config templates may not read dag_run.conf"):
        check_templates("Op.plugin_config", {"x": "{{ dag_run.conf['n'] }}"})
    with pytest.raises(FlyteConfigError, match="env_vars templates may not read Airflow's configuration"):
        check_templates(ENV_VARS_FIELD, {"X": "{{ conf.get('core', 'x') }}"})
    check_templates("Op.plugin_config", {"x": "{{ var.value.k }}", "y": "{{ conn.c.password }}", "z": "{{ ds }}"})


def test_undeclared_params_are_named():
    check_declared_params("Op.plugin_config", {"a": "{{ params.n }}"}, {"n"})
    with pytest.raises(FlyteConfigError, match="a plugin config template uses a Param") as caught:
        check_declared_params("Op.plugin_config", {"a": "{{ params.n }}", "b": "{{ params.m }}"}, {"n"})
    assert caught.value.value == ["m"]
    error = undeclared_params_error(ENV_VARS_FIELD, {"A": "{{ params.q }}"}, {}, RuntimeError("'q' is undefined"))
    assert error.value == ["q"] and "an env_vars template" in error.problem


def test_undeclared_params_named_turns_only_jinjas_undefined_error_into_a_config_error():
    class UndefinedError(Exception):
        pass

    with pytest.raises(FlyteConfigError) as caught, undeclared_params_named(
            "Op.plugin_config", {"a": "{{ params.z }}"}, {"params": {}}):
        raise UndefinedError("'z' is undefined")
    assert caught.value.value == ["z"]
    with pytest.raises(KeyError), undeclared_params_named("Op.plugin_config", {}, {"params": {}}):
        raise KeyError("other")


def test_declared_params_only_drops_trigger_conf_keys():
    class Holder:
        def __init__(self, params, dag=None):
            self.params, self.dag = params, dag

    task = Holder({"t": 1}, dag=Holder({"d": 2}))
    context = {"params": {"t": 1, "d": 2, "sneaky": "x"}, "ds": "2026-01-01"}
    restricted = declared_params_only(context, task)
    assert restricted["params"] == {"t": 1, "d": 2}
    assert restricted["ds"] == "2026-01-01"
    assert context["params"]["sneaky"] == "x"  # the original context is left alone


def test_rendered_secrets_yields_only_what_var_and_conn_templates_rendered():
    original = Spark(spark_conf={"spark.a": "{{ var.value.key }}", "spark.b": "{{ params.n }}", "spark.c": "plain"},
                     executor_path="{{ conn.db.password }}")
    rendered = Spark(spark_conf={"spark.a": "SECRET1", "spark.b": "4", "spark.c": "plain"}, executor_path="SECRET2")
    assert sorted(rendered_secrets(original, rendered)) == ["SECRET1", "SECRET2"]
    assert list(rendered_secrets({"X": "{{ var.json.k }}"}, {"X": "S"})) == ["S"]


def test_conn_id_may_not_be_a_template_and_xcom_args_are_found_nested():
    check_conn_id_not_templated("Op.conn_id", "my_cluster")
    with pytest.raises(FlyteConfigError, match="conn_id is not templated"):
        check_conn_id_not_templated("Op.conn_id", "{{ params.c }}")

    class FakeXComArg:
        def resolve(self):
            return None

        def iter_references(self):
            return iter(())

    ref = FakeXComArg()
    assert nested_xcom_args({"a": [1, ref], "b": "{{ x }}"}) == [ref]
