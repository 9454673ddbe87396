"""What makes a value secret besides its key's name (issue 21): its shape (a URL's userinfo password, a
``token=`` / ``password=`` parameter) and the cloud stores' key settings. The end-to-end check through
Airflow is tests/engines/test_secret_values.py; these pin the rules one case at a time."""

from __future__ import annotations

from airflow_provider_flyte.core.masking import is_sensitive, sensitive_values

SHAPES = [
    ("jdbc:postgresql://user:pw-jdbc1@h/db", ["pw-jdbc1"], "jdbc:postgresql://user:***@h/db"),
    ("postgresql://u:pw-pg1@h:5432", ["pw-pg1"], "postgresql://u:***@h:5432"),
    ("ray://user:SECRET1@host:10001", ["SECRET1"], "ray://user:***@host:10001"),
    ("sc://h:15002/;token=tok-sc1;user_id=me", ["tok-sc1"], "sc://h:15002/;token=***;user_id=me"),
    ("jdbc:sqlserver://h:1433;databaseName=d;password=pw-ms1", ["pw-ms1"],
     "jdbc:sqlserver://h:1433;databaseName=d;password=***"),
    ("jdbc:mysql://h/db?user=hive&password=pw-my1&ssl=true", ["pw-my1"], "jdbc:mysql://h/db?user=hive&password=***&ssl=true"),
    ("host=h password=pw-dsn1 dbname=x", ["pw-dsn1"], "host=h password=*** dbname=x"),
    ("postgresql://u:p%40ss-enc@h", ["p%40ss-enc", "p@ss-enc"], "postgresql://u:***@h"),
    ("ray://tok-only-user@h", [], "ray://***@h"),  # no password: only shown redacted (a token as user)
    ("-Xmx1g -Djavax.net.ssl.keyStorePassword=ks-pw-1 -Da=b", ["ks-pw-1"],
     "-Xmx1g -Djavax.net.ssl.keyStorePassword=*** -Da=b"),
    ("spark://h:7077", [], "spark://h:7077"),
    ("local[2]", [], "local[2]"),
]
KEYS = [
    ("spark.hadoop.fs.azure.account.key.acct.blob.core.windows.net", True),
    ("fs.azure.sas.container.acct.blob.core.windows.net", True),
    ("spark.hadoop.fs.gs.auth.service.account.private.key", True),
    ("spark.hadoop.fs.gs.auth.service.account.private.key.id", True),
    ("google.cloud.auth.service.account.json.keyfile", True),
    ("javax.jdo.option.ConnectionPassword", True),
    ("spark.hadoop.fs.s3a.access.key", True),
    ("spark.executorEnv.DATABASE_URL", False),  # secret for what it holds, not for its name
    ("spark.executor.memory", False),
    ("fs.azure.account.auth.type", False),
    ("spark.sql.sources.partitionOverwriteMode", False),
]


def test_secret_parts_and_their_redaction():
    from airflow_provider_flyte.core.masking import redact_text, secret_parts

    assert [(secret_parts(text), redact_text(text)) for text, _, _ in SHAPES] == [(p, s) for _, p, s in SHAPES]


def test_cloud_store_keys_are_sensitive():
    assert {key: is_sensitive(key) for key, _ in KEYS} == dict(KEYS)


def test_sensitive_values_walks_configs_keys_and_shapes():
    from airflow_provider_flyte.plugins.ray import RayJobConfig
    from airflow_provider_flyte.plugins.spark import Spark

    spark = Spark(spark_conf={"spark.hadoop.fs.azure.account.key.a.blob.core.windows.net": "az-key-1",
                              "spark.executorEnv.DATABASE_URL": "postgresql://u:db-pw-1@h/db",
                              "spark.a": "{{ var.value.x }}", "spark.executor.memory": "2g"},
                  hadoop_conf={"javax.jdo.option.ConnectionURL": "jdbc:mysql://h/m?user=u&password=hive-pw-1"})
    assert sorted(sensitive_values(spark)) == ["az-key-1", "db-pw-1", "hive-pw-1"]
    ray = RayJobConfig(worker_node_config=[], address="ray://u:ray-pw-1@h:10001",
                       runtime_env={"env_vars": {"DATABASE_URL": "postgresql://u:env-pw-1@h/db"}})
    assert sorted(sensitive_values(ray)) == ["env-pw-1", "ray-pw-1"]
