"""Extra link to the Dask dashboard of the scheduler a task ran on."""

from __future__ import annotations

from airflow_provider_flyte.links.base import FlyteEngineLink


class DaskDashboardLink(FlyteEngineLink):
    """The scheduler's dashboard (``Client.dashboard_link``, or the connection's ``dashboard_link`` extra).

    Recorded for tasks on an existing scheduler. A task's local cluster runs without a dashboard.
    """

    name = "Dask dashboard"
    link_key = "dask_dashboard"
