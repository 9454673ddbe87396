"""The **Test** button of a ``flyte_dask`` connection, in a real ``airflow standalone`` and Chromium.

A live Dask scheduler on 127.0.0.1 (``dask scheduler --no-dashboard``, its own process group):
clicking Test shows success with the address; after the scheduler is stopped the same click
shows the failure with the address. The same holds through ``POST /api/v2/connections/test``
(``AIRFLOW__CORE__TEST_CONNECTION=Enabled``). The Add Connection form of each connection type
is screenshotted (``docs/img/connection-<type>.png`` with ``FLYTE_UPDATE_SCREENSHOTS=1``,
a temp dir otherwise) and checked for the provider's labels and placeholders.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.standalone import REPO, Standalone, StandaloneError, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
DASK = str(Path(sys.executable).parent / "dask")
CONN_ID = "dask_e2e"
SHOTS = (
    REPO / "docs" / "img"
    if os.environ.get("FLYTE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"flyte-connection-shots-{os.getpid()}"  # made by the fixture, not at import
)


class Scheduler:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DASK_"))}
        self.proc = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        import socket

        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "dask scheduler exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.3)
        raise AssertionError("dask scheduler did not open its port within 60 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module", autouse=True)
def _remove_scratch_shots() -> Iterator[None]:
    """Screenshots outside docs/img are scratch: made when the module starts, removed when it ends."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield
    if SHOTS.parent != REPO / "docs":
        shutil.rmtree(SHOTS, ignore_errors=True)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[Scheduler]:
    sched = Scheduler()
    sched.start()
    try:
        yield sched
    finally:
        sched.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[Standalone]:
    srv = Standalone([], parallelism=2, extra_env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"})
    try:
        srv.start()
    except BaseException:
        survivors = srv.stop()
        srv.cleanup()
        if survivors:
            raise StandaloneError(f"processes left after a failed start: {survivors}") from None
        raise
    try:
        yield srv
        exposed = srv.listening_beyond_loopback()
        assert not exposed, f"airflow standalone listens beyond 127.0.0.1: {exposed}"
    finally:
        survivors = srv.stop()
        if not survivors:
            srv.cleanup()
    assert not survivors, f"processes left after stopping airflow standalone: {survivors}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run scripts/setup.sh (apt-get install chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def dask_connection(server: Standalone, scheduler: Scheduler) -> dict[str, Any]:
    # Address and port in their own fields: Airflow 3.3.2's list page sends port 0 for an empty
    # port, which its test endpoint then rejects as "differs from the stored connection".
    body = {"connection_id": CONN_ID, "conn_type": "flyte_dask", "host": "tcp://127.0.0.1", "port": scheduler.port,
            "extra": json.dumps({"connect_timeout": 3})}
    response = server.api("POST", "/connections", json=body)
    assert response.status_code == 201, response.text
    return body


def click_test(server: Standalone, browser: Any, shot: str) -> tuple[dict[str, Any], str]:
    """Click the row's Test button; return the endpoint's answer and the toast the UI shows."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.base_url}/connections")
        row = page.get_by_role("row").filter(has_text=CONN_ID)
        with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as info:
            row.get_by_role("button", name="Test Connection").click()
        response = info.value
        assert response.status == 200, f"{response.status} {response.text()}"
        answer = response.json()
        toast = page.get_by_role("status").filter(has_text="Connection").first
        toast.wait_for()
        page.wait_for_timeout(500)
        text = toast.inner_text()
        page.screenshot(path=str(SHOTS / shot))
        return answer, text
    finally:
        page.close()


def test_ui_test_button_live_scheduler(server, browser, scheduler, dask_connection):
    answer, toast = click_test(server, browser, "connection-test-ok.png")
    assert answer == {"status": True, "message": f"reachable: {scheduler.address}"}
    assert "reachable" in toast and f"127.0.0.1:{scheduler.port}" in toast, toast


def test_rest_test_endpoint_live_scheduler(server, scheduler, dask_connection):
    body = {"connection_id": "adhoc_dask", "conn_type": "flyte_dask", "host": scheduler.address}
    response = server.api("POST", "/connections/test", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": True, "message": f"reachable: {scheduler.address}"}


def test_ui_and_rest_after_the_scheduler_stopped(server, browser, scheduler, dask_connection):
    scheduler.stop()
    answer, toast = click_test(server, browser, "connection-test-failed.png")
    assert answer["status"] is False, answer
    assert f"tcp://127.0.0.1:{scheduler.port}" in answer["message"] and "Cannot reach" in answer["message"], answer
    assert f"127.0.0.1:{scheduler.port}" in toast, toast

    body = {"connection_id": "adhoc_dask", "conn_type": "flyte_dask", "host": scheduler.address,
            "extra": json.dumps({"connect_timeout": 2})}
    response = server.api("POST", "/connections/test", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] is False and scheduler.address in result["message"], result


@pytest.mark.parametrize(
    ("conn_type", "label", "placeholder"),
    [("flyte_spark", "Flyte Spark", "spark://host:7077 or sc://host:15002"),
     ("flyte_ray", "Flyte Ray", "ray://host:10001 or host:6379"),
     ("flyte_dask", "Flyte Dask", "tcp://host:8786")],
)
def test_connection_form(server, browser, conn_type, label, placeholder):
    page = browser.new_page(viewport={"width": 1200, "height": 1100})
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.base_url}/connections")
        page.get_by_role("button", name="Add Connection").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("combobox").first.click()
        page.keyboard.type(label)
        page.get_by_role("option", name=label, exact=True).click()
        address = dialog.get_by_placeholder(placeholder)
        address.wait_for()
        assert dialog.get_by_text("Address", exact=True).is_visible()
        assert not dialog.get_by_text("Schema", exact=True).is_visible()  # hidden by the provider
        page.wait_for_timeout(500)
        dialog.screenshot(path=str(SHOTS / f"connection-{conn_type}.png"))
        dialog.get_by_role("button", name="Extra Fields", exact=True).click()
        dialog.get_by_text("Connect timeout (s)").wait_for()
        page.wait_for_timeout(500)
        dialog.screenshot(path=str(SHOTS / f"connection-{conn_type}-extra.png"))
    finally:
        page.close()
