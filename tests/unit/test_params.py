"""Trigger-form knobs (``params``): the JSON schema each Param gets, and defaults the Param itself refuses."""

from __future__ import annotations

import pytest

from airflow_provider_flyte import params
from airflow_provider_flyte.exceptions import FlyteConfigError


def test_a_knob_infers_its_json_type_and_keeps_its_bounds() -> None:
    p = params.knob(3, title="Workers", description="how many", minimum=1, maximum=8)
    assert p.value == 3
    assert p.schema == {"type": "integer", "title": "Workers", "section": params.SECTION, "minimum": 1, "maximum": 8}
    assert p.description == "how many"
    assert params.knob(0.5, title="f").schema["type"] == "number"
    assert params.knob(True, title="b").schema["type"] == "boolean"
    assert params.knob("1g", title="m", values=("1g", "2g")).schema["enum"] == ["1g", "2g"]


def test_a_default_of_no_json_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="use a bool, int, float or str default"):
        params.knob([1], title="list")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"default": 0, "minimum": 1}, "Param 'k'.default"),
    ({"default": 9, "maximum": 8}, "Param 'k'.default"),
    ({"default": 2, "minimum": 4, "maximum": 1}, "Param 'k'.minimum"),
    ({"default": "3g", "values": ("1g", "2g")}, "Param 'k'.default"),
])
def test_a_default_the_param_would_refuse_is_a_config_error(kwargs, field) -> None:
    default = kwargs.pop("default")
    with pytest.raises(FlyteConfigError) as err:
        params.knob(default, title="k", **kwargs)
    assert err.value.field == field


def test_the_engine_knobs_name_their_setting() -> None:
    knobs = {params.spark_executors(): ("Spark executors", 2), params.spark_executor_cores(): ("Spark executor cores", 1),
             params.spark_executor_memory(): ("Spark executor memory", "1g"), params.ray_workers(): ("Ray worker replicas", 1),
             params.dask_workers(): ("Dask workers", 2), params.elastic_nproc_per_node(): ("Processes per node", 1)}
    for p, (title, default) in knobs.items():
        assert (p.schema["title"], p.value) == (title, default)
    with pytest.raises(FlyteConfigError):
        params.dask_workers(0)  # below its own minimum of 1
