"""The TaskSpec built from the author's objects, the placement options and the per-config placement check."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from airflow_provider_flyte import Resources, TaskEnvironment
from airflow_provider_flyte.authoring.spec_builder import (
    build_spec,
    check_nodes,
    placement_options,
    pod_template_json,
)
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.spark import Spark


def test_build_spec_copies_the_environment_into_plain_data():
    env = TaskEnvironment(name="e", env_vars={"A": "1"}, resources=Resources(cpu="2"), image="img:1",
                          interruptible=True, service_account="runner",
                          pod_template={"spec": {"nodeSelector": {"pool": "x"}}})
    spec = build_spec(TaskInfo(dag_id="d", task_id="t", run_id="r"), Spark(), env, "k8s")
    assert spec.config_type == "airflow_provider_flyte.plugins.spark.Spark"
    assert spec.env_vars == {"A": "1"} and spec.env_vars is not env.env_vars
    assert spec.resources == Resources(cpu="2").to_dict()
    assert (spec.conn_id, spec.image, spec.env_name, spec.service_account) == ("k8s", "img:1", "e", "runner")
    assert spec.interruptible is True and spec.reusable is None
    assert spec.pod_template == {"spec": {"nodeSelector": {"pool": "x"}}}


def test_build_spec_without_config_or_environment():
    spec = build_spec(TaskInfo(dag_id="d", task_id="t", run_id="r"), None, None, None)
    assert spec.config_type is None and spec.config is None
    assert spec.env_vars == {} and spec.secrets == () and spec.pod_template is None and spec.interruptible is False


def test_pod_template_json_turns_client_objects_into_dicts():
    from kubernetes.client import V1ObjectMeta, V1PodTemplateSpec

    assert pod_template_json(None) is None
    assert pod_template_json({"a": 1}) == {"a": 1}
    assert pod_template_json(V1PodTemplateSpec(metadata=V1ObjectMeta(labels={"x": "y"}))) == {
        "metadata": {"labels": {"x": "y"}}}


def test_placement_options_take_settings_for_unset_values_and_a_deadline_from_the_timeout():
    options = placement_options(deferrable=False, startup_timeout=12.0, keep_failed_s=0,
                                execution_timeout=timedelta(seconds=60))
    assert (options["deferrable"], options["startup_timeout"], options["keep_failed_s"]) == (False, 12.0, 0)
    assert 55 < options["deadline"] - time.time() <= 60
    defaults = placement_options(deferrable=None, startup_timeout=None, keep_failed_s=None, execution_timeout=None)
    assert defaults["deferrable"] is True and defaults["startup_timeout"] == 300 and "deadline" not in defaults
    from airflow_provider_flyte.core import settings

    assert "namespace" in defaults and defaults["namespace"] == settings.text("kubernetes_namespace")


def test_multi_node_elastic_needs_a_cluster_and_other_configs_do_not_care():
    check_nodes(Elastic(nnodes=1, nproc_per_node=4), None)
    check_nodes(Elastic(nnodes=2, nproc_per_node=1), "k8s")
    check_nodes(Spark(), None)
    check_nodes(None, None)
    with pytest.raises(FlyteConfigError, match="2 nodes need a cluster") as caught:
        check_nodes(Elastic(nnodes="1:2", nproc_per_node=1), None)
    assert caught.value.field == "Elastic.nnodes" and caught.value.value == "1:2"
    Elastic(nnodes=3, nproc_per_node=1).check_placement("kubernetes")
    with pytest.raises(FlyteConfigError, match="3 nodes need a cluster"):
        Elastic(nnodes=3, nproc_per_node=1).check_placement("warm")
    Spark().check_placement("local")  # the base: nothing to refuse
