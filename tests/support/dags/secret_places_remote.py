"""Task functions for tests/kubernetes/test_secret_places.py (not a DAG): they report, as digests, the
secret values the task's engine sees in its pod, and whether the staged spec.json the pod started from holds
any of them."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from airflow_provider_flyte import ctx


def digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def spec_holds(*values: str | None) -> bool:
    """Whether the staged spec.json (``file://`` store; the pod's last argument) holds one of ``values``."""
    text = Path(urlsplit(sys.argv[-1]).path).read_text()
    return any(value and value in text for value in values)


def spark_sees_its_secrets() -> dict[str, object]:
    spark = ctx().data["spark_session"]
    context = spark.sparkContext
    conf = context.getConf().get("spark.flyte.test.password")
    hadoop = context._jsc.hadoopConfiguration().get("fs.s3a.secret.key")
    env = os.environ.get("AWS_SECRET_ACCESS_KEY")
    executor = context.parallelize([0], 1).map(lambda _: digest(os.environ.get("AWS_SECRET_ACCESS_KEY"))).collect()[0]
    return {"conf": digest(conf), "hadoop": digest(hadoop), "env": digest(env), "executor_env": executor,
            "spec_holds": spec_holds(conf, hadoop, env)}


def dask_sees_its_secrets() -> dict[str, object]:
    from distributed import Client

    env = os.environ.get("AWS_SECRET_ACCESS_KEY")
    on_workers = Client().run(lambda: digest(os.environ.get("AWS_SECRET_ACCESS_KEY")))
    return {"env": digest(env), "workers": sorted(set(on_workers.values())), "spec_holds": spec_holds(env)}

