"""Airflow listeners of the provider, registered as an ``airflow.plugins`` entry-point plugin (pyproject)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_flyte.listeners import warm_run_end


class FlyteListenersPlugin(AirflowPlugin):
    """Stops ``scope="run"`` warm engines when their DAG run ends."""

    name = "flyte_plugins_listeners"
    listeners = [warm_run_end]
