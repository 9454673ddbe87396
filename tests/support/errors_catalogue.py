"""The error catalogue: every row of docs/errors.md's table is one case here (id, when, code, message).

``code`` is the exact Python the table shows; :func:`raised` evaluates it in :data:`NAMESPACE`
and returns the error. ``tests/unit/test_exceptions.py`` checks that each case raises exactly its
message and that the table and this list hold the same rows. After changing a case, rewrite
the table with ``python -m tests.support.errors_catalogue``.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"
WHEN = ("construction", "DAG parse", "render", "connect", "run")


@dataclass(frozen=True)
class Case:
    id: str
    when: str
    code: str
    message: str
    error: type[Exception] = FlyteConfigError


# -- helpers the cases call (names visible in the table) ------------------------------------------
@contextmanager
def _connection(conn_id: str, **fields: Any) -> Iterator[None]:
    import json

    with mock.patch.dict(os.environ, {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(fields)}):
        yield


def dask_connection(**fields: Any) -> Any:
    """The address a Dask task would use from connection ``my_dask`` holding ``fields``."""
    from airflow_provider_flyte.hooks.connections import FlyteDaskConnectionHook

    with _connection("my_dask", **fields):
        target = FlyteDaskConnectionHook(conn_id="my_dask").target()
        return target.connect_timeout


def reach_dask(timeout: float = 1, **fields: Any) -> None:
    """What a Dask task does first on an existing cluster: read connection ``my_dask`` and probe it."""
    from airflow_provider_flyte.hooks.clusters import probe
    from airflow_provider_flyte.hooks.connections import FlyteDaskConnectionHook

    with _connection("my_dask", **fields):
        probe(FlyteDaskConnectionHook(conn_id="my_dask").target(), timeout=timeout, engine="Dask cluster")


def ray_connection(**fields: Any) -> Any:
    from airflow_provider_flyte.hooks.connections import FlyteRayConnectionHook

    with _connection("my_ray", **fields):
        return FlyteRayConnectionHook(conn_id="my_ray").target()


def choose_placement(config: Any, **fields: Any) -> str:
    """Where a task with ``conn_id="my_k8s"`` runs, connection ``my_k8s`` holding ``fields`` (none: missing)."""
    from airflow_provider_flyte.core.spec import TaskSpec
    from airflow_provider_flyte.registry import find

    hook = find(type(config)).hook_class()
    if not fields:
        return str(hook.choose_placement(config, TaskSpec(conn_id="my_k8s")))
    with _connection("my_k8s", **fields):
        return str(hook.choose_placement(config, TaskSpec(conn_id="my_k8s")))


def render(config: Any, **params: Any) -> Any:
    """What Airflow does at task start: render every template field with ``params``, then validate."""
    import dataclasses

    import jinja2

    from airflow_provider_flyte.plugins.base import PluginConfig, copy_config

    def walk(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            return jinja2.Template(value).render(params=params)
        if isinstance(value, PluginConfig):
            for f in dataclasses.fields(value):  # type: ignore[arg-type]
                object.__setattr__(value, f.name, walk(getattr(value, f.name)))
            return value
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(copy_config(config)).validated()


def in_dag(build: Any) -> None:
    """Build tasks inside a DAG, as a DAG file does at parse time."""
    from airflow.sdk import DAG

    with DAG("catalogue", schedule=None):
        build()


def bundle_with_unreadable_file() -> None:
    """Bundle a project whose ``data.csv`` cannot be read (as root, chmod 000 would not stop reading)."""
    import tempfile

    from airflow_provider_flyte.bundle import build_bundle

    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "data.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "dag.py").write_text("x = 1\n")
        (Path(root) / "data.csv").write_text("a,b\n")
        with mock.patch.object(Path, "read_bytes", read_bytes):
            try:
                build_bundle(root)
            except FlyteConfigError as exc:  # the path of the temp folder varies: show it as <project>
                raise FlyteConfigError(exc.field, exc.value, exc.problem.replace(root, "<project>"), exc.fix) from None


def warm_dir_on_a_file() -> None:
    """What a warm task does first, with ``[flyte] warm_dir`` naming a file (its temp path shown as <file>)."""
    import tempfile

    from airflow_provider_flyte.warm.state import WARM_DIR_ENV, root

    with tempfile.NamedTemporaryFile() as file, mock.patch.dict(os.environ, {WARM_DIR_ENV: file.name}):
        try:
            root()
        except FlyteConfigError as exc:
            raise FlyteConfigError(exc.field, "<file>", exc.problem, exc.fix) from None


def job(x: int = 1) -> int:
    """A task function for the decorator cases."""
    return x


def killed_worker() -> Exception:
    from distributed.scheduler import KilledWorker

    return KilledWorker("sum-1", types.SimpleNamespace(address="tcp://127.0.0.1:40000"), 3)  # type: ignore[arg-type]


def java_gateway_exited() -> Exception:
    from pyspark.errors import PySparkRuntimeError

    return PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})


def fail(error: Exception | None) -> None:
    """Raise what a translation returned (the runner raises it ``from`` the engine's error)."""
    if error is not None:
        raise error


#: What the cases' code may name: ``module:attribute``.
_NAMES = (
    "airflow_provider_flyte:Resources", "airflow_provider_flyte:TaskEnvironment", "airflow_provider_flyte:flyte_task",
    "airflow_provider_flyte:ReusePolicy",
    "airflow_provider_flyte.resources:GPU", "airflow_provider_flyte.core.bounds:check_local_fit",
    "airflow_provider_flyte.hooks.spark.local:require_java", "airflow_provider_flyte.hooks.spark.local:probe_master", "airflow_provider_flyte.operators.base:check_nodes",
    "airflow_provider_flyte.operators.dask:FlyteDaskOperator", "airflow_provider_flyte.operators.spark:FlyteSparkOperator",
    "airflow_provider_flyte.plugins.dask:Dask", "airflow_provider_flyte.plugins.dask:WorkerGroup",
    "airflow_provider_flyte.plugins.pytorch:Elastic", "airflow_provider_flyte.plugins.pytorch:RunPolicy",
    "airflow_provider_flyte.plugins.ray:AutoscalerOptionsConfig", "airflow_provider_flyte.plugins.ray:HeadNodeConfig",
    "airflow_provider_flyte.plugins.ray:RayJobConfig", "airflow_provider_flyte.plugins.ray:WorkerNodeConfig",
    "airflow_provider_flyte.plugins.spark:Spark", "airflow_provider_flyte.plugins.spark_conf:check_local_driver_memory", "airflow_provider_flyte.runtime.diagnose:translate",
    "airflow_provider_flyte.params:spark_executors", "airflow_provider_flyte.params:spark_executor_memory",
    "airflow_provider_flyte.core.sealed:unseal",
    "airflow_provider_flyte.hooks.clusters:no_answer_error",
)
_HELPERS = ("job", "choose_placement", "warm_dir_on_a_file", "dask_connection", "reach_dask", "ray_connection", "render", "in_dag", "bundle_with_unreadable_file", "killed_worker",
            "java_gateway_exited", "fail")


def _namespace() -> dict[str, Any]:
    import importlib

    names: dict[str, Any] = {"GiB": 2**30, "flyte": importlib.import_module("airflow_provider_flyte")}
    for entry in _NAMES:
        module, _, name = entry.partition(":")
        names[name] = getattr(importlib.import_module(module), name)
    names.update({name: globals()[name] for name in _HELPERS})
    return names


def raised(case: Case) -> BaseException | None:
    """Evaluate the case's code; the exception it raised (``None`` if it raised nothing)."""
    try:
        eval(case.code, _namespace())  # noqa: S307 - the catalogue's own code, shown verbatim in the docs
    except Exception as exc:
        return exc
    return None


# -- the table --------------------------------------------------------------------------------------
def _code_span(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"  # a pipe inside a code span does not split the cell


def render_table(cases: list[Case]) -> str:
    lines = ["| id | input | detected | error and message |", "| --- | --- | --- | --- |"]
    for case in cases:
        lines.append(f"| `{case.id}` | {_code_span(case.code)} | {case.when} | "
                     f"{case.error.__name__}: {_code_span(case.message)} |")
    return "\n".join(lines)


_ROW = re.compile(r"^\| `(?P<id>[^`]+)` \| (?P<code>.+) \| (?P<when>[^|]+) \| (?P<error>\w+): (?P<message>.+) \|$")


def _unspan(cell: str) -> str:
    fence = "``" if cell.startswith("``") else "`"
    inner = cell[len(fence):-len(fence)]
    return inner[1:-1] if fence == "``" else inner


def table_rows(text: str) -> dict[str, tuple[str, str, str, str]]:
    """``id -> (code, when, error, message)`` of every row between the catalogue markers."""
    body = text.split(START, 1)[1].split(END, 1)[0]
    rows: dict[str, tuple[str, str, str, str]] = {}
    for line in body.strip().splitlines()[2:]:
        match = _ROW.match(line)
        if match is None:
            raise AssertionError(f"not a catalogue row: {line}")
        rows[match["id"]] = (_unspan(match["code"]), match["when"], match["error"], _unspan(match["message"]))
    return rows


def write_table() -> None:
    from tests.support.errors_cases import CASES

    text = DOC.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render_table(CASES)}\n{END}{tail}")


__all__ = ["Case", "FlyteConfigError", "FlyteEngineError", "raised", "render_table", "table_rows", "write_table"]

if __name__ == "__main__":
    write_table()
