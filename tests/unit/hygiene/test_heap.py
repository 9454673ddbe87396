"""pre() runs without cyclic collections; what it made is frozen until post(), which thaws it first."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hygiene import heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class RecordingHook(FlyteEngineHook[None]):
    """A hook whose pre and teardown record what the collector looks like to them."""

    placement = "local"
    engine_name = "Recording"
    fail_in_pre = False

    def pre(self) -> dict[str, Any]:
        self.enabled_in_pre = gc.isenabled()
        self.count_before = gc.get_count()[0]
        garbage = [_Cycle() for _ in range(5000)]  # enough allocations for several young collections
        del garbage
        self.count_after = gc.get_count()[0]
        self.add_cleanup(self._teardown)
        if self.fail_in_pre:
            raise RuntimeError("pre failed")
        return {"ok": True}

    def _teardown(self) -> None:
        self.frozen_in_teardown = gc.get_freeze_count()


@pytest.fixture(autouse=True)
def _clean_collector() -> Iterator[None]:
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    gc.enable()


def test_pre_runs_without_collections_and_post_thaws_before_teardown() -> None:
    hook = RecordingHook(None)
    with hook.session() as data:
        assert data == {"ok": True}
        # the 5000 cycles made in pre were never collected: no young collection ran during pre
        assert hook.enabled_in_pre is False and hook.count_after >= hook.count_before + 5000
        assert gc.isenabled(), "the collector is back on for the task's function"
        assert gc.get_freeze_count() > 0, "what pre made (and the heap before it) is frozen while the function runs"
    assert hook.frozen_in_teardown == 0, "post thawed the heap before tearing down"
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_a_failing_pre_still_thaws_and_reenables() -> None:
    hook = RecordingHook(None)
    hook.fail_in_pre = True
    with pytest.raises(RuntimeError, match="pre failed"), hook.session():
        pass
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_the_user_turned_off_stays_off() -> None:
    gc.disable()
    hook = RecordingHook(None)
    with hook.session():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pre_calls_keep_the_collector_paused_until_the_last_ends() -> None:
    first_in, release_first = threading.Event(), threading.Event()
    states: dict[str, bool] = {}

    def first() -> None:
        with heap.collection_paused():
            first_in.set()
            release_first.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(10)
    with heap.collection_paused():
        release_first.set()
        thread.join(10)
        states["after the first ended"] = gc.isenabled()
    states["after both"] = gc.isenabled()
    assert states == {"after the first ended": False, "after both": True}
