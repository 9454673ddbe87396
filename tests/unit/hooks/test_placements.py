"""Placements: chosen once from the spec, one module per placement, unsupported ones refused clearly."""

from __future__ import annotations

import sys
import types

import pytest

from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook
from airflow_provider_flyte.hooks.ray import FlyteRayHook
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark


@pytest.mark.parametrize(("hook", "config"), [
    (FlyteSparkHook, Spark()), (FlyteRayHook, RayJobConfig(worker_node_config=[])), (FlyteDaskHook, Dask()),
    (FlyteElasticHook, Elastic(nnodes=1, nproc_per_node=1)),
])
def test_each_engine_picks_its_placement_module(hook, config):
    local = hook(config, TaskSpec())
    assert local.placement == "local" and type(local).__module__ == f"{hook.__module__}.local"
    assert isinstance(local, hook)
    pod = hook(config, TaskSpec(placement="in_cluster"))
    assert pod.placement == "in_cluster" and type(pod).__module__ == f"{hook.__module__}.in_cluster"
    if hook is not FlyteElasticHook:
        attached = hook(config, TaskSpec(conn_id="c"))
        assert attached.placement == "attach" and type(attached).__module__ == f"{hook.__module__}.attach"


def test_ray_address_selects_the_attach_placement_without_a_connection():
    assert FlyteRayHook(RayJobConfig(worker_node_config=[], address="127.0.0.1:6379")).placement == "attach"
    assert FlyteRayHook(RayJobConfig(worker_node_config=[], address="local")).placement == "local"


def test_elastic_on_an_existing_cluster_is_refused_naming_conn_id():
    with pytest.raises(FlyteConfigError) as info:
        FlyteElasticHook(Elastic(nnodes=1, nproc_per_node=1), TaskSpec(conn_id="my_cluster"))
    message = str(info.value)
    assert message.startswith("conn_id: PyTorch Elastic does not run on an existing cluster: it runs on the Airflow "
                              "worker or as a Kubernetes job")
    assert "no connection 'my_cluster' was found" in message
    assert "Fix: create a connection 'my_cluster' of type kubernetes" in message
    assert "remove conn_id" not in message  # issue 27: the opposite of what the multi-node check asks for
    with pytest.raises(FlyteConfigError) as info:  # the attach placement asked for by name
        FlyteElasticHook(Elastic(nnodes=1, nproc_per_node=1), TaskSpec(conn_id="my_cluster", placement="attach"))
    assert "does not run on an existing cluster" in str(info.value)
    assert "set conn_id to a Kubernetes connection" in str(info.value)


def test_an_unknown_placement_lists_the_supported_ones():
    with pytest.raises(FlyteConfigError) as info:
        FlyteSparkHook(Spark(), TaskSpec(placement="nowhere"))
    assert "'nowhere'" in str(info.value) and "attach, in_cluster, kubernetes, local, warm" in str(info.value)


def test_a_new_placement_is_one_module(monkeypatch):
    """A sixth placement needs a module in the engine's package, and no change to the runner or base."""
    module = types.ModuleType("airflow_provider_flyte.hooks.dask.elsewhere")

    class ElsewhereDaskHook(FlyteDaskHook):
        placement = "elsewhere"

        def start(self):
            return {"dask_client": "elsewhere"}

    module.ElsewhereDaskHook = ElsewhereDaskHook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    hook = FlyteDaskHook(Dask(), TaskSpec(placement="elsewhere"))
    assert type(hook) is ElsewhereDaskHook
    with hook.session() as data:
        assert data == {"dask_client": "elsewhere"}
