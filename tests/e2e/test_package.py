"""Packaging: light imports, provider metadata, the provider as Airflow sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SOURCE_EXAMPLE_DAGS

ENGINES = ("pyspark", "ray", "dask", "distributed", "torch")

_IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import airflow_provider_flyte as pkg
from airflow_provider_flyte import TaskEnvironment, Resources, flyte_task, ctx
for mod in pkgutil.walk_packages(pkg.__path__, "airflow_provider_flyte."):
    if ".example_dags" not in mod.name:
        importlib.import_module(mod.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {engines!r})))
"""

_PARSE_EXAMPLES = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
assert not bag.import_errors, bag.import_errors
assert bag.dags, "no example DAGs parsed"
print(json.dumps({{"dags": sorted(bag.dags), "engines": sorted(m for m in sys.modules if m.split(".")[0] in {engines!r})}}))
"""


def _run(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_importing_every_module_loads_no_engine():
    loaded = json.loads(_run(_IMPORT_EVERYTHING.format(engines=set(ENGINES))))
    assert loaded == []


def test_parsing_example_dags_loads_no_engine():
    result = json.loads(_run(_PARSE_EXAMPLES.format(engines=set(ENGINES)), str(SOURCE_EXAMPLE_DAGS)))
    assert "example_flyte_spark" in result["dags"]
    assert result["engines"] == []


def test_provider_info_validates_against_airflows_schema():
    import airflow
    import jsonschema

    from airflow_provider_flyte.get_provider_info import get_provider_info

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    for section in ("operators", "hooks"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                __import__(module)
    for conn in info["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook = getattr(__import__(module, fromlist=[cls]), cls)
        assert hook.conn_type == conn["connection-type"]
    for path in info.get("extra-links", []):
        module, _, cls = path.rpartition(".")
        getattr(__import__(module, fromlist=[cls]), cls)


def test_entry_point_and_airflow_providers_list():
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_flyte")]
    assert ep.load()()["package-name"] == "airflow-provider-flyte-plugins"
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True, text=True, env=os.environ.copy(), check=True,
    )
    names = [p["package_name"] for p in json.loads(out.stdout[out.stdout.index("["):])]
    assert "airflow-provider-flyte-plugins" in names


def test_task_flyte_resolves_through_the_providers_manager():
    from airflow.sdk import task
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from airflow_provider_flyte.decorators.flyte import flyte_task

    assert ProvidersManagerTaskRuntime().taskflow_decorators["flyte"] is flyte_task
    assert task.flyte is flyte_task


def test_ctx_is_falsy_outside_a_task():
    from airflow_provider_flyte import ctx

    assert not ctx()


@pytest.mark.parametrize(
    ("dag_file", "expected"),
    [
        ("elastic_to_spark_operator.py", r"FlyteSparkOperator.plugin_config.*runs Spark configs.*got 'Elastic'"),
        ("reusable_with_plugin.py", r"TaskEnvironment.plugin_config: Cannot set plugin_config when environment is reusable\."
         r".*\(got 'Elastic'\)"),
        ("dask_memory_typo.py", r"WorkerGroup\.resources\.memory: a worker needs at least 64\.0 MiB .*\(got '1Mi'\)\. Fix: "),
        ("ray_bad_port.py", r"RayJobConfig\.address: the port '10O01' is not a number .*\(got 'ray://head:10O01'\)\. Fix: "),
        ("reuse_idle_ttl_too_short.py", r"ReusePolicy.idle_ttl: idle_ttl must be at least 30 seconds \(got 5.0\)\. Fix:"),
        ("reuse_concurrency_zero.py", r"ReusePolicy.concurrency: concurrency must be an int of at least 1.*\(got 0\)"),
        ("reuse_replicas_reversed.py", r"ReusePolicy.replicas: the minimum \(3\) is above the maximum \(1\).*Fix:"),
        ("reuse_ray_shutdown.py", r"RayJobConfig.shutdown_after_job_finishes: shutdown_after_job_finishes cannot be used "
         r"with a reuse policy.*Fix: Remove shutdown_after_job_finishes"),
    ],
)
def test_bad_input_is_a_dag_import_error(dag_file, expected):
    import re

    from airflow.dag_processing.dagbag import BundleDagBag

    folder = Path(__file__).parents[1] / "support" / "bad_dags"
    bag = BundleDagBag(dag_folder=str(folder / dag_file), bundle_path=folder)
    (error,) = bag.import_errors.values()
    assert re.search(expected, error), error
