"""remote/resume: what a retry reads back from task_state_store (a dict stands for the store: plain data)."""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.remote.resume import STATE_KEY, identity, recall, remember


class Store:
    """``task_state_store``'s get/set, in memory."""

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


OBJ = {"metadata": {"name": "etl-train-0a1b2c3d", "namespace": "ml", "uid": "5f1c-77"}}


def test_the_created_object_is_stored_under_one_key_and_read_back() -> None:
    store = Store()
    remember(store, OBJ, "RayJob", "ml")
    assert store.values == {STATE_KEY: {"kind": "RayJob", "name": "etl-train-0a1b2c3d", "namespace": "ml",
                                        "uid": "5f1c-77"}}
    assert recall(store, "RayJob") == identity(OBJ, "RayJob")


def test_nothing_stored_no_store_or_a_malformed_value_means_the_label_fallback() -> None:
    assert recall(None, "RayJob") is None
    assert recall(Store(), "RayJob") is None
    assert recall(Store(**{STATE_KEY: "etl-train"}), "RayJob") is None
    assert recall(Store(**{STATE_KEY: {"kind": "RayJob", "name": "x", "namespace": "ml"}}), "RayJob") is None
    stored = Store()
    remember(stored, OBJ, "RayJob", "ml")
    assert recall(stored, "DaskJob") is None, "another kind's identity is not this job's"


def test_a_store_that_fails_only_costs_durability() -> None:
    class Broken(Store):
        def set(self, key: str, value: Any) -> None:
            raise RuntimeError("API server unreachable")

        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("API server unreachable")

    remember(Broken(), OBJ, "RayJob", "ml")
    assert recall(Broken(), "RayJob") is None
