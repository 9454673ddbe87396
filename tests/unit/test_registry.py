"""The registry: a missing engine extra is Airflow's optional-feature error with the pip line."""

from __future__ import annotations

import pytest
from airflow.exceptions import AirflowOptionalProviderFeatureException

from airflow_provider_flyte.core.engines import DISTRIBUTION, PluginEntry, find
from airflow_provider_flyte.plugins.spark import Spark


def test_a_missing_engine_names_the_pip_install_line():
    entry = PluginEntry("x.Thing", "x.ThingHook", requires=("surely_not_installed_engine",), extra="thing")
    with pytest.raises(AirflowOptionalProviderFeatureException) as info:
        entry.hook_class()
    message = str(info.value)
    assert "surely_not_installed_engine" in message
    assert f'pip install "{DISTRIBUTION}[thing]"' in message


def test_installed_engines_load():
    assert find(Spark).hook_class().__name__ == "FlyteSparkHook"
