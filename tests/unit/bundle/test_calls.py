"""The pickled call: functions from DAG modules by value, unpicklable values named with the fix."""

from __future__ import annotations

import sys
import threading
import types

import cloudpickle
import pytest

from airflow_provider_flyte.bundle.calls import dumps_call, loads_call
from airflow_provider_flyte.bundle.user_code import register_by_value
from airflow_provider_flyte.exceptions import FlyteConfigError


def _dag_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("unusual_prefix_0123_calls_dag")
    exec("def fn(x):\n    return x + 1\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_a_dag_function_travels_by_value_and_the_registration_is_undone(monkeypatch):
    module = _dag_module(monkeypatch)
    payload = dumps_call(module.fn, [1], {}, where="the workers")
    assert module.__name__ not in cloudpickle.list_registry_pickle_by_value(), "dumps_call undoes its registration"
    monkeypatch.delitem(sys.modules, module.__name__)  # another process cannot import the DAG module
    call = loads_call(payload)
    assert call["fn"](*call["args"], **call["kwargs"]) == 2


def test_an_unpicklable_argument_is_named_with_the_fix(monkeypatch):
    module = _dag_module(monkeypatch)
    with pytest.raises(FlyteConfigError) as info:
        dumps_call(module.fn, [], {"lock": threading.Lock()}, where="the PyTorch workers")
    message = str(info.value)
    assert "fn: argument 'lock'" in message
    assert "cannot be sent to the PyTorch workers" in message
    assert "pass plain values" in message


def test_register_by_value_undoes_only_what_it_registered(monkeypatch):
    module = _dag_module(monkeypatch)
    cloudpickle.register_pickle_by_value(module)
    try:
        undo = register_by_value(module.fn, cloudpickle)
        undo()
        assert module.__name__ in cloudpickle.list_registry_pickle_by_value(), "registered by someone else: kept"
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    undo = register_by_value(module.fn, cloudpickle)
    assert module.__name__ in cloudpickle.list_registry_pickle_by_value()
    undo()
    assert module.__name__ not in cloudpickle.list_registry_pickle_by_value()
