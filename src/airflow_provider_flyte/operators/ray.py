"""``FlyteRayOperator``: run a callable with Ray initialized from a ``RayJobConfig``."""

from __future__ import annotations

from airflow_provider_flyte.links.kubernetes import kubernetes_links
from airflow_provider_flyte.links.ray import RayDashboardLink
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.ray import RayJobConfig


class FlyteRayOperator(FlyteOperator):
    """Run ``python_callable`` with Ray initialized (``ray.remote`` / ``ray.get`` work in it).

    ``FlyteRayOperator(task_id=..., python_callable=fn, plugin_config=RayJobConfig(...))``;
    map it over configs with ``.partial(...).expand(plugin_config=[...])``.
    ``conn_id`` (or ``env.conn_id``, or ``RayJobConfig.address``) runs it on an existing Ray
    cluster (see :class:`~airflow_provider_flyte.hooks.ray.FlyteRayHook`).
    """

    plugin_type = RayJobConfig
    ui_color = "#028cf0"
    operator_extra_links = (RayDashboardLink(), *kubernetes_links())
