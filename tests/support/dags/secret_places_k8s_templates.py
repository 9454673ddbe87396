"""Variables rendered into a Kubernetes task's plugin config and ``env_vars``
(tests/kubernetes/test_secret_places.py): the task reports, as digests, what its driver got, and
whether the staged spec.json it started from holds either value. The keys look harmless on purpose: the
values are secret because they came from Variables."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None

shop_env = TaskEnvironment(
    name="shop_env", image="sim/venv:1", conn_id=CONN_ID,
    env_vars={"SHOP_DSN": "{{ var.value.k8s_shop_dsn }}"},
    plugin_config=Spark(spark_conf={"spark.executor.instances": "1",
                                    "spark.flyte.test.shop": "{{ var.value.k8s_shop_conf }}"}),
)


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def k8s_templates():
    @shop_env.task
    def sees_its_variables() -> dict[str, object]:
        import hashlib
        import sys
        from pathlib import Path
        from urllib.parse import urlsplit

        def digest(text: str | None) -> str:
            return hashlib.sha256((text or "").encode()).hexdigest()

        conf = ctx().data["spark_session"].sparkContext.getConf().get("spark.flyte.test.shop")
        dsn = os.environ.get("SHOP_DSN")
        spec = Path(urlsplit(sys.argv[-1]).path).read_text()  # the staged spec.json (file:// store)
        return {"conf": digest(conf), "env": digest(dsn), "spec_holds": any(v and v in spec for v in (conf, dsn))}

    sees_its_variables()


k8s_templates()
