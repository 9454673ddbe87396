"""hygiene/signals: handlers an engine replaces are put back, and SIGTERM ends a wait on a silent server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from airflow_provider_flyte.hygiene.signals import SavedSignals, keep_signal_handlers, sigterm_stops_wait


@pytest.fixture
def sigterm_handler():
    """SIGTERM's handler put back after the test, whatever the test did."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def _first(signum, frame):  # pragma: no cover - never delivered
    pass


def _second(signum, frame):  # pragma: no cover - never delivered
    pass


def test_saved_signals_restore_the_handler_and_the_environment(sigterm_handler, monkeypatch):
    signal.signal(signal.SIGTERM, _first)
    monkeypatch.setenv("FLYTE_TEST_SIGNALS_KEPT", "before")
    monkeypatch.delenv("FLYTE_TEST_SIGNALS_UNSET", raising=False)
    saved = SavedSignals(("SIGTERM",), env=("FLYTE_TEST_SIGNALS_KEPT", "FLYTE_TEST_SIGNALS_UNSET"))
    signal.signal(signal.SIGTERM, _second)
    os.environ["FLYTE_TEST_SIGNALS_KEPT"] = "engine"
    os.environ["FLYTE_TEST_SIGNALS_UNSET"] = "engine"
    saved.restore()
    assert signal.getsignal(signal.SIGTERM) is _first
    assert os.environ["FLYTE_TEST_SIGNALS_KEPT"] == "before"
    assert "FLYTE_TEST_SIGNALS_UNSET" not in os.environ


def test_forward_gives_the_signal_to_the_previous_handler(sigterm_handler):
    received = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    SavedSignals(("SIGTERM",)).forward(signal.SIGTERM)
    assert received == [signal.SIGTERM]

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with pytest.raises(SystemExit) as info:
        SavedSignals(("SIGTERM",)).forward(signal.SIGTERM)
    assert info.value.code == 128 + signal.SIGTERM


def test_saved_signals_outside_the_main_thread_save_nothing():
    found = []
    thread = threading.Thread(target=lambda: found.append(SavedSignals(("SIGTERM",)).handlers))
    thread.start()
    thread.join()
    assert found == [{}]


def test_keep_signal_handlers_puts_back_what_the_block_replaced(sigterm_handler):
    signal.signal(signal.SIGTERM, _first)
    with keep_signal_handlers("SIGTERM"):
        signal.signal(signal.SIGTERM, _second)
        assert signal.getsignal(signal.SIGTERM) is _second
    assert signal.getsignal(signal.SIGTERM) is _first
    with pytest.raises(RuntimeError), keep_signal_handlers():  # the default is SIGTERM, put back on error too
        signal.signal(signal.SIGTERM, _second)
        raise RuntimeError
    assert signal.getsignal(signal.SIGTERM) is _first


def test_sigterm_stops_wait_leaves_the_handler_as_it_was(sigterm_handler):
    signal.signal(signal.SIGTERM, _first)
    with sigterm_stops_wait("a server"):
        assert signal.getsignal(signal.SIGTERM) is not _first
    assert signal.getsignal(signal.SIGTERM) is _first


_WAITER = textwrap.dedent("""
    import signal, sys, threading
    from airflow_provider_flyte.exceptions import TaskKilledError
    from airflow_provider_flyte.hygiene.signals import sigterm_stops_wait

    def teardown(signum, frame):
        print("teardown ran", flush=True)

    signal.signal(signal.SIGTERM, teardown)
    try:
        with sigterm_stops_wait("the silent server at 127.0.0.1:1"):
            print("waiting", flush=True)
            threading.Event().wait(60)
        print("the wait ended by itself", flush=True)
    except TaskKilledError as exc:
        print("killed:", exc, flush=True)
        print("handler back:", signal.getsignal(signal.SIGTERM) is teardown, flush=True)
""")


def test_sigterm_ends_a_wait_after_running_the_previous_handler():
    proc = subprocess.Popen([sys.executable, "-c", _WAITER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert time.monotonic() - started < 10, "SIGTERM did not end the wait"
    lines = out.splitlines()
    assert lines[0] == "teardown ran", out
    assert lines[1] == "killed: the task was killed (SIGTERM) while waiting for the silent server at 127.0.0.1:1", out
    assert lines[2] == "handler back: True", out
    assert proc.returncode == 0
