"""Operator extra links to engine UIs (Spark UI, Ray dashboard, Dask dashboard).

A hook records URLs in ``hook.links`` during ``pre``; the operator pushes each one to
XCom under ``flyte_link_<key>``; a link class reads it back for the UI button.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import XCom
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

XCOM_PREFIX = "flyte_link_"


def xcom_key(link_key: str) -> str:
    return f"{XCOM_PREFIX}{link_key}"


class FlyteEngineLink(BaseOperatorLink):
    """A link whose URL the task recorded at run time; empty when the engine exposed none."""

    name: ClassVar[str] = "Engine UI"
    link_key: ClassVar[str] = "engine_ui"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:  # type: ignore[override]
        value = XCom.get_value(key=xcom_key(self.link_key), ti_key=ti_key)
        return value if isinstance(value, str) else ""
