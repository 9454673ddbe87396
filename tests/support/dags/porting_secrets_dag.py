"""A secret from an Airflow connection, exposed to the task as an env var (issue 12)."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime

from airflow.sdk import dag

import airflow_provider_flyte as flyte
from airflow_provider_flyte.secrets import Secret

env = flyte.TaskEnvironment(
    name="with_secret",
    secrets=[Secret(group="flyte_porting_secret", key="password", as_env_var="PORTING_API_TOKEN")],
)


@env.task
def use_secret(label: str = "{{ params.label }}") -> dict:
    token = os.environ["PORTING_API_TOKEN"]
    from airflow.sdk.log import redact

    # The value is registered with Airflow's secrets masker: the task log pipeline shows *** for it.
    logging.getLogger("airflow.task").info("token is registered with the masker: %s", redact(token) == "***")
    return {"sha256": hashlib.sha256(token.encode()).hexdigest(), "label": label,
            "files_dir": os.environ.get("FLYTE_SECRETS_DEFAULT_DIR")}


@dag(dag_id="porting_secrets", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"label": "x"})
def porting_secrets():
    use_secret()


porting_secrets()
