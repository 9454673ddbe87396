"""``FlyteDaskOperator``: run a callable with a Dask cluster from a ``Dask`` config."""

from __future__ import annotations

from airflow_provider_flyte.links.dask import DaskDashboardLink
from airflow_provider_flyte.links.kubernetes import kubernetes_links
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.dask import Dask


class FlyteDaskOperator(FlyteOperator):
    """Run ``python_callable`` with a Dask cluster; a bare ``Client()`` inside connects to it.

    ``FlyteDaskOperator(task_id=..., python_callable=fn, plugin_config=Dask(workers=WorkerGroup(...)))``;
    the task's client is ``ctx().data["dask_client"]``. ``conn_id`` (or ``env.conn_id``) runs it on an
    existing scheduler (a ``flyte_dask`` connection, see :class:`~airflow_provider_flyte.hooks.dask.FlyteDaskHook`).
    """

    plugin_type = Dask
    ui_color = "#fdb462"
    operator_extra_links = (DaskDashboardLink(), *kubernetes_links())
