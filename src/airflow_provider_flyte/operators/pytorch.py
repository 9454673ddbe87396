"""``FlyteElasticOperator``: run a callable in PyTorch Elastic workers from an ``Elastic`` config."""

from __future__ import annotations

from airflow_provider_flyte.links.kubernetes import kubernetes_links
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.pytorch import Elastic


class FlyteElasticOperator(FlyteOperator):
    """Run ``python_callable`` in ``nproc_per_node`` processes under ``torch.distributed.elastic``.

    ``FlyteElasticOperator(task_id=..., python_callable=train, plugin_config=Elastic(nnodes=1, nproc_per_node=2))``;
    the task's return value is rank 0's.
    """

    plugin_type = Elastic
    ui_color = "#ee4c2c"
    operator_extra_links = kubernetes_links()
