"""Connection hooks (``hooks/connections.py``): what Airflow builds for the form and the Test button.

Engine-free: a plain TCP listener on 127.0.0.1 stands in for a cluster's port (the hooks only
check that the address answers). The Dask case against a real scheduler, in a real
``airflow standalone`` and Chromium, is ``tests/e2e/test_connections_ui.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_provider_flyte.hooks.connections import (
    FlyteDaskConnectionHook,
    FlyteRayConnectionHook,
    FlyteSparkConnectionHook,
)

HOOKS = {"flyte_spark": FlyteSparkConnectionHook, "flyte_ray": FlyteRayConnectionHook,
         "flyte_dask": FlyteDaskConnectionHook}


@contextmanager
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    def make(conn_id: str, **fields) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return conn_id

    return make


@pytest.mark.parametrize(
    ("conn_type", "host", "expected_scheme"),
    [("flyte_spark", "spark://127.0.0.1", "spark"), ("flyte_spark", "sc://127.0.0.1", "sc"),
     ("flyte_ray", "ray://127.0.0.1", "ray"), ("flyte_ray", "127.0.0.1", "gcs"),
     ("flyte_dask", "tcp://127.0.0.1", "tcp"), ("flyte_dask", "127.0.0.1", "tcp")],
)
def test_reachable_and_unreachable(connection, conn_type, host, expected_scheme):
    hook_class = HOOKS[conn_type]
    with listener() as port:
        conn_id = connection("live", conn_type=conn_type, host=host, port=port, extra={"connect_timeout": 2})
        ok, message = hook_class(conn_id=conn_id).test_connection()
    assert (ok, message) == (True, f"reachable: {expected_scheme}://127.0.0.1:{port}")

    dead = closed_port()
    conn_id = connection("dead", conn_type=conn_type, host=host, port=dead, extra={"connect_timeout": 1})
    ok, message = hook_class(conn_id=conn_id).test_connection()
    assert ok is False
    assert f"{expected_scheme}://127.0.0.1:{dead}" in message and "Cannot reach" in message, message


@pytest.mark.parametrize(
    ("hook_class", "conn_type", "host", "address"),
    [(FlyteSparkConnectionHook, "flyte_spark", "spark://h", "spark://h:7077"),
     (FlyteSparkConnectionHook, "spark_connect", "h", "sc://h:15002"),
     (FlyteSparkConnectionHook, "spark", "spark://h", "spark://h:7077"),
     (FlyteRayConnectionHook, "flyte_ray", "ray://h", "ray://h:10001"),
     (FlyteRayConnectionHook, "flyte_ray", "h", "gcs://h:6379"),
     (FlyteDaskConnectionHook, "flyte_dask", "h", "tcp://h:8786")],
)
def test_default_ports_and_accepted_types(connection, hook_class, conn_type, host, address):
    conn_id = connection("ports", conn_type=conn_type, host=host)
    assert hook_class(conn_id=conn_id).target().address == address


def test_wrong_type_missing_connection_and_bad_timeout(connection):
    conn_id = connection("wrong", conn_type="flyte_ray", host="tcp://127.0.0.1:1")
    ok, message = FlyteDaskConnectionHook(conn_id=conn_id).test_connection()
    assert not ok and "cannot use that connection type" in message and "flyte_dask" in message, message

    ok, message = FlyteDaskConnectionHook(conn_id="no_such_connection_xyz").test_connection()
    assert not ok and "no_such_connection_xyz" in message, message

    conn_id = connection("bad_timeout", conn_type="flyte_dask", host="tcp://127.0.0.1:1", extra={"connect_timeout": 0})
    ok, message = FlyteDaskConnectionHook(conn_id=conn_id).test_connection()
    assert not ok and "connect_timeout" in message, message


def test_same_types_and_ports_as_the_engine_hooks():
    from airflow_provider_flyte.hooks.dask import FlyteDaskHook
    from airflow_provider_flyte.hooks.ray import FlyteRayHook
    from airflow_provider_flyte.hooks.spark import FlyteSparkHook

    for conn_hook, engine_hook in ((FlyteSparkConnectionHook, FlyteSparkHook), (FlyteRayConnectionHook, FlyteRayHook),
                                   (FlyteDaskConnectionHook, FlyteDaskHook)):
        assert conn_hook.conn_type == engine_hook.conn_type
        assert conn_hook.accepted_conn_types == engine_hook.accepted_conn_types
        assert conn_hook.default_ports == engine_hook.default_ports
        assert conn_hook.default_conn_name == engine_hook.default_conn_name


def test_airflow_builds_the_hook_from_a_connection_alone(connection):
    """What the Test button does: ``Connection.get_hook()`` with only the conn id (no config)."""
    from airflow.models.connection import Connection

    with listener() as port:
        for conn_type in HOOKS:
            conn = Connection(conn_id=f"t_{conn_type}", conn_type=conn_type, host="127.0.0.1", port=port)
            connection(f"t_{conn_type}", conn_type=conn_type, host="127.0.0.1", port=port)
            hook = conn.get_hook()
            assert type(hook) is HOOKS[conn_type]
            status, message = conn.test_connection()
            assert status is True and message.startswith("reachable: ") and str(port) in message, message


def test_form_metadata_is_valid_json_and_matches_the_hooks():
    from airflow_provider_flyte.get_provider_info import get_provider_info

    for entry in get_provider_info()["connection-types"]:
        hook = HOOKS[entry["connection-type"]]
        behaviour = entry["ui-field-behaviour"]
        extra = json.loads(behaviour["placeholders"]["extra"])  # valid JSON, not a Python repr
        assert isinstance(extra, dict) and extra
        assert entry["hook-name"] == hook.hook_name
        assert hook.get_ui_field_behaviour()["hidden_fields"] == behaviour["hidden-fields"]
        assert hook.get_ui_field_behaviour()["placeholders"] == behaviour["placeholders"]
        assert "connect_timeout" in entry["conn-fields"]


def test_testing_a_connection_imports_no_engine():
    code = """
import json, os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); port = s.getsockname()[1]
from airflow_provider_flyte.hooks import connections as c
for cls, t in ((c.FlyteSparkConnectionHook, "flyte_spark"), (c.FlyteRayConnectionHook, "flyte_ray"),
               (c.FlyteDaskConnectionHook, "flyte_dask")):
    os.environ["AIRFLOW_CONN_X"] = json.dumps({"conn_type": t, "host": "127.0.0.1", "port": port})
    assert cls(conn_id="x").test_connection()[0]
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"pyspark", "ray", "dask", "distributed", "torch"})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_connection_hook_keeps_what_it_sets_itself_and_may_have_no_table_entry():
    from airflow_provider_flyte.hooks.connections import FlyteClusterConnectionHook, FlyteSparkConnectionHook

    class OwnSpark(FlyteSparkConnectionHook):
        conn_type = "flyte_spark"
        default_conn_name = "my_spark"

    assert OwnSpark.default_conn_name == "my_spark"
    assert OwnSpark.default_ports == FlyteSparkConnectionHook.default_ports  # the rest from the engine table

    class Unlisted(FlyteClusterConnectionHook):  # defining it must not fail (it used to raise StopIteration)
        conn_type = "flyte_not_in_the_table"
        hook_name = "Unlisted"

    assert Unlisted.hook_name == "Unlisted"
