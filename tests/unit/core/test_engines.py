"""The engine table (``core/engines.py``): one entry per engine, read by provider info, forms, hooks, reuse.

The main test adds a fifth engine at run time: it writes one engine folder (a config class and a hook
with a ``local`` placement) to a temporary directory put on ``sys.path``, adds one table entry through
the public ``registry.register()``, and runs a task with it through ``dag.test()``. Nothing in the
package is edited for it.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_flyte import registry
from airflow_provider_flyte.core import engines
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError

#: The fifth engine's folder: its config, its hook (what every placement shares) and its local placement.
ENGINE_FILES = {
    "__init__.py": '''
        """A toy engine: its "client" is a dict, its pre and post append to a file."""
    ''',
    "config.py": '''
        from dataclasses import dataclass

        from airflow_provider_flyte.plugins.base import PluginConfig


        @dataclass
        class Toy(PluginConfig):
            factor: int = 2
            record_to: str = ""
    ''',
    "hook/__init__.py": '''
        from typing import Any

        from airflow_provider_flyte.hooks.base import FlyteEngineHook
        from fifth_engine.config import Toy


        class FlyteToyHook(FlyteEngineHook[Toy]):
            config_type = Toy

            def record(self, event: str) -> None:
                with open(self.config.record_to, "a") as out:
                    out.write(f"{event} {self.placement} {self.task.task_id}\\n")

            def pre(self) -> dict[str, Any]:
                self.record("pre")
                self.add_cleanup(self.record, "post")
                return {"toy_client": {"factor": self.config.factor, "started_by": type(self).__name__}}
    ''',
    "hook/local.py": '''
        from fifth_engine.hook import FlyteToyHook


        class LocalToyHook(FlyteToyHook):
            placement = "local"
    ''',
}

DAG_FILE = '''
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from fifth_engine.config import Toy

env = TaskEnvironment(name="toy", plugin_config=Toy(factor=7, record_to={record_to!r}))


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def fifth_engine_dag():
    @env.task
    def multiply(x: int) -> dict:
        client = ctx().data["toy_client"]
        return {{"product": x * client["factor"], "started_by": client["started_by"]}}

    multiply(6)


fifth_engine_dag()
'''


@pytest.fixture
def fifth_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """The engine folder on ``sys.path`` and its one table entry, removed afterwards."""
    import importlib
    import sys

    root = tmp_path / "engines"
    for name, text in ENGINE_FILES.items():
        path = root / "fifth_engine" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(root))
    config = importlib.import_module("fifth_engine.config").Toy
    registry.register(config, "fifth_engine.hook.FlyteToyHook", placements=("local",), label="Toy")
    yield config
    registry.unregister(config)
    for module in [m for m in sys.modules if m == "fifth_engine" or m.startswith("fifth_engine.")]:
        del sys.modules[module]


def test_a_fifth_engine_is_one_folder_and_one_entry(fifth_engine, tmp_path, dag_runner):
    record = tmp_path / "events.txt"
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "fifth_engine_dags"
    folder.mkdir(exist_ok=True)
    try:
        (folder / "toy_dag.py").write_text(DAG_FILE.format(record_to=str(record)))
        result = dag_runner.run(folder / "toy_dag.py", "fifth_engine_dag")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.state == "success", result.states
    assert result.value("multiply") == {"product": 42, "started_by": "LocalToyHook"}
    assert record.read_text().splitlines() == ["pre local multiply", "post local multiply"]


def test_the_fifth_engine_reads_its_entry(fifth_engine):
    entry = engines.find(fifth_engine)
    hook = entry.hook_class()
    assert hook.engine_name == "Toy" and hook.placements() == ["local"]
    assert fifth_engine.__name__ in registry.registered_names()
    with pytest.raises(FlyteConfigError) as info:
        hook(fifth_engine(record_to="x"), TaskSpec(conn_id="somewhere"))
    assert "Toy does not run on an existing cluster" in str(info.value)
    with pytest.raises(FlyteConfigError) as info:
        hook(fifth_engine(record_to="x"), TaskSpec(placement="warm"))
    assert "Toy has no 'warm' placement" in str(info.value) and "use one of local" in str(info.value)


def test_placements_are_declared_not_scanned():
    from airflow_provider_flyte.hooks.dask import FlyteDaskHook
    from airflow_provider_flyte.plugins.dask import Dask

    assert FlyteDaskHook.placements() == ["attach", "in_cluster", "kubernetes", "local", "warm"]
    with pytest.raises(FlyteConfigError) as info:
        FlyteDaskHook(Dask(), TaskSpec(placement="worker_preload"))
    message = str(info.value)
    assert "has no 'worker_preload' placement" in message and "worker_preload," not in message.split("use one of")[1]


def test_provider_info_lists_every_builtin_engine_from_the_table():
    from airflow_provider_flyte.get_provider_info import get_provider_info

    info = get_provider_info()
    titles = [entry.title for entry in engines.BUILTIN]
    assert [i["integration-name"] for i in info["integrations"]] == titles
    assert [o["python-modules"] for o in info["operators"]] == [[e.operator_module] for e in engines.BUILTIN]
    assert [c["connection-type"] for c in info["connection-types"]] == [
        e.connection.conn_type for e in engines.BUILTIN if e.connection is not None]
    for conn in info["connection-types"]:
        form = engines.connection(conn["connection-type"])
        assert json.loads(conn["ui-field-behaviour"]["placeholders"]["extra"]) == form.form["placeholders"]["extra"]


def test_engine_and_connection_hooks_take_their_facts_from_the_table():
    for entry in engines.BUILTIN:
        hook = entry.hook_class()
        assert hook.engine_name == entry.label and hook.hook_name == entry.title
        if entry.connection is None:
            continue
        conn_hook = engines.load(entry.connection.hook_class_path)
        for klass in (hook, conn_hook):
            assert klass.conn_type == entry.connection.conn_type
            assert klass.accepted_conn_types == dict(entry.connection.accepted_conn_types)
            assert klass.default_ports == dict(entry.connection.default_ports)
            assert klass.default_conn_name == f"{entry.connection.conn_type}_default"


def test_warm_servers_named_by_the_table_are_the_ones_the_warm_placements_start():
    import importlib

    for entry in engines.BUILTIN:
        if entry.warm_server is None:
            assert not entry.supports_reuse
            continue
        warm = importlib.import_module(f"{entry.hook_module}.warm")
        assert entry.warm_server == warm.SERVER_MODULE
        importlib.import_module(entry.warm_server)


def test_core_engines_imports_no_hook():
    import ast

    source = Path(engines.__file__).read_text()
    imported = [node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m and ".hooks" in m], imported


def test_a_hook_class_registered_after_it_was_defined_reads_its_entry():
    from dataclasses import dataclass

    from airflow_provider_flyte.hooks.base import FlyteEngineHook
    from airflow_provider_flyte.plugins.base import PluginConfig

    @dataclass
    class Late(PluginConfig):
        pass

    class LateHook(FlyteEngineHook[Late]):
        config_type = Late
        hook_name = "its own title"

    assert LateHook.engine_name == "engine" and LateHook.accepted_conn_types == {}
    connection = engines.ConnectionType("late", "x.LateConnectionHook", accepted_conn_types={"late": "tcp"},
                                        default_ports={"tcp": 1234}, form={})
    registry.register(Late, LateHook, label="Late", connection=connection)
    try:
        assert LateHook.engine_name == "Late" and LateHook.hook_name == "its own title"
        assert LateHook.accepted_conn_types == {"late": "tcp"} and LateHook.default_ports == {"tcp": 1234}
        assert LateHook.conn_type == "late" and LateHook.default_conn_name == "late_default"
    finally:
        registry.unregister(Late)
