"""The package's top level: Flyte's names that have a home here, and a hint for those that do not (issue 27)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import airflow_provider_flyte as flyte
from airflow_provider_flyte.resources import GPU, Device
from airflow_provider_flyte.secrets import Secret


def test_flyte_names_with_a_home_are_reachable_from_the_top_level():
    assert flyte.Secret is Secret
    assert flyte.GPU is GPU
    assert flyte.Device is Device
    assert isinstance(flyte.GPU("A100", 1), Device)
    assert {"Secret", "GPU", "Device"} <= set(dir(flyte))


@pytest.mark.parametrize(("name", "hint"), [("map", ".expand("), ("group", "TaskGroup")])
def test_flyte_names_without_a_home_name_the_airflow_way(name, hint):
    with pytest.raises(AttributeError, match=rf"flyte\.{name}.*in Airflow") as info:
        getattr(flyte, name)
    assert hint in str(info.value)


def test_unknown_names_stay_a_plain_attribute_error():
    with pytest.raises(AttributeError, match=r"has no attribute 'no_such_name'$"):
        flyte.no_such_name  # noqa: B018


def test_importing_the_package_and_its_new_names_imports_no_engine():
    code = ("import sys, airflow_provider_flyte as f; f.Secret; f.GPU; f.Device\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyspark', 'ray', 'dask', 'distributed', 'torch', 'kubernetes', 'airflow'))\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
