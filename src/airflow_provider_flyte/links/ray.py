"""Extra link to the Ray dashboard of the cluster a task ran on."""

from __future__ import annotations

from airflow_provider_flyte.links.base import FlyteEngineLink


class RayDashboardLink(FlyteEngineLink):
    """The Ray dashboard the task's ``ray.init`` reported (or the connection's ``dashboard_url`` extra).

    Recorded for tasks on an existing cluster whose head runs the dashboard. A task's private
    local Ray instance runs without a dashboard unless ``ray_start_params`` asks for one; that
    dashboard disappears with the task.
    """

    name = "Ray dashboard"
    link_key = "ray_dashboard"
