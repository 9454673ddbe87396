"""Operator extra links to engine UIs (Spark UI, Ray dashboard, Dask dashboard).

A hook records URLs in ``hook.links`` during ``pre``; the operator keeps them
(``operator.flyte_links``) and pushes each one to XCom under ``flyte_link_<key>``. At the end of
the task Airflow asks every link class for its URL and stores it for the UI: a link reads the
operator's record, so a link the task did not use is an empty button, not an ``XCom not found``
error in the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import XCom
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

XCOM_PREFIX = "flyte_link_"
#: every link a try recorded, in one XCom (read back by a task resumed after deferral)
LINKS_XCOM_KEY = "flyte_links"


def xcom_key(link_key: str) -> str:
    return f"{XCOM_PREFIX}{link_key}"


class FlyteEngineLink(BaseOperatorLink):
    """A link whose URL the task recorded at run time; empty when the engine exposed none."""

    name: ClassVar[str] = "Engine UI"
    link_key: ClassVar[str] = "engine_ui"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:  # type: ignore[override]
        recorded = getattr(operator, "flyte_links", None)
        if isinstance(recorded, dict):
            value = recorded.get(self.link_key, "")
        else:  # an operator that kept no record (built before it existed): read what it pushed
            value = XCom.get_value(key=xcom_key(self.link_key), ti_key=ti_key)
        return value if isinstance(value, str) else ""
