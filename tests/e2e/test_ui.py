"""End to end in a real Airflow: ``airflow standalone``, Chromium on the trigger form, the REST API.

The standalone (see :mod:`tests.support.standalone`) serves the example DAG
``example_flyte_cluster_params`` and ``tests/support/dags/e2e_expand_dag.py`` on 127.0.0.1, runs
tasks with LocalExecutor and is stopped as a process group afterwards. Chromium is
Debian's ``chromium`` driven by Playwright (``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines.test_params import expected_ray_cpus
from tests.support.standalone import REPO, Standalone, airflow_standalone  # noqa: F401  (fixture)

DAG_ID = "example_flyte_cluster_params"
EXPAND_DAG_ID = "e2e_expand"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
# The doc's screenshot is refreshed only on request (FLYTE_UPDATE_SCREENSHOTS=1), so a test run
# leaves the working tree clean; otherwise it goes to a temp dir and is still checked.
SCREENSHOT = (
    REPO / "docs" / "img" / "trigger-form.png"
    if os.environ.get("FLYTE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / f"flyte-trigger-form-{os.getpid()}.png"
)
RUN_TIMEOUT_S = 360


# -- helpers --------------------------------------------------------------------------------------
def finished_run(server: Standalone, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    run = server.wait_for_run(dag_id, run_id, timeout=timeout)
    return run


def assert_tasks_succeeded(server: Standalone, dag_id: str, run_id: str, task_ids: list[str] | None = None) -> None:
    states = server.task_states(dag_id, run_id)
    wanted = {k: v for k, v in states.items() if task_ids is None or k.split("[")[0] in task_ids}
    if not wanted or set(wanted.values()) != {"success"}:
        raise AssertionError(
            f"tasks of {dag_id} run {run_id} did not all succeed: {wanted or states}\n"
            f"{server.failed_task_logs(dag_id, run_id)}"
        )


def new_run(server: Standalone, dag_id: str, before: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in server.dag_runs(dag_id) if r["dag_run_id"] not in before]
        if runs:
            assert len(runs) == 1, f"expected one new run, got {[r['dag_run_id'] for r in runs]}"
            return runs[0]
        time.sleep(1)
    server.fail(f"no new run of {dag_id} appeared within {timeout}s after submitting the trigger form")
    raise AssertionError  # unreachable


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that are open at the same instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def server(airflow_standalone: Standalone) -> Standalone:  # noqa: F811
    airflow_standalone.wait_for_dag(DAG_ID)
    return airflow_standalone


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


# -- the trigger form -----------------------------------------------------------------------------
def test_trigger_form_sets_spark_executors_of_the_live_session(server: Standalone, browser: Any) -> None:
    before = {r["dag_run_id"] for r in server.dag_runs(DAG_ID)}
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server.base_url}/dags/{DAG_ID}")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        section = dialog.get_by_role("button", name="Cluster size")
        if section.get_attribute("aria-expanded") != "true":
            section.click()
        executors = dialog.get_by_label("Spark executors")
        executors.fill("99")  # beyond the Param's maximum: the form clamps it to the schema
        executors.blur()
        assert executors.input_value() == "8", executors.input_value()
        executors.fill("3")
        executors.blur()
        dialog.get_by_label("Spark executor memory").click()
        page.keyboard.type("1g")
        page.keyboard.press("Enter")
        assert executors.input_value() == "3"
        page.wait_for_timeout(500)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        dialog.screenshot(path=str(SCREENSHOT))
        dialog.get_by_role("button", name="Trigger").click()
        run = new_run(server, DAG_ID, before)
    finally:
        page.close()

    assert run["conf"]["executors"] == 3, run["conf"]
    assert run["conf"]["executor_memory"] == "1g", run["conf"]
    assert run["triggered_by"] == "ui", run
    finished_run(server, DAG_ID, run["dag_run_id"])
    assert_tasks_succeeded(server, DAG_ID, run["dag_run_id"], ["spark_sized"])
    live = server.xcom(DAG_ID, run["dag_run_id"], "spark_sized")
    assert live["spark.executor.instances"] == "3", live
    assert live["spark.executor.memory"] == "1g", live


# -- the same through REST ------------------------------------------------------------------------
REST_CONF = {"executors": 4, "executor_memory": "512m", "ray_workers": 2, "dask_workers": 3, "nproc_per_node": 2}
GUARD_DAG_ID = "params_guard"


@pytest.fixture(scope="module")
def rest_run(server: Standalone) -> dict[str, Any]:
    response = server.trigger(DAG_ID, REST_CONF)
    assert response.status_code == 200, f"POST dagRuns: HTTP {response.status_code} {response.text}"
    run = response.json()
    assert run["conf"] == REST_CONF
    return finished_run(server, DAG_ID, run["dag_run_id"])


def test_rest_trigger_sets_spark_executors_of_the_live_session(server: Standalone, rest_run: dict) -> None:
    run_id = rest_run["dag_run_id"]
    assert_tasks_succeeded(server, DAG_ID, run_id, ["spark_sized"])
    live = server.xcom(DAG_ID, run_id, "spark_sized")
    assert live["spark.executor.instances"] == "4", live
    assert live["spark.executor.memory"] == "512m", live


def test_rest_conf_key_that_is_not_a_param_does_not_reach_a_templated_engine_setting(server: Standalone) -> None:
    """``params_guard`` templates ``spark.driver.extraJavaOptions`` from ``params.get('java_opts')``: a
    REST trigger's ``java_opts`` (not a declared Param) reaches the task's context, never the engine."""
    server.wait_for_dag(GUARD_DAG_ID)
    response = server.trigger(GUARD_DAG_ID, {"executors": 3, "java_opts": "-Dflyte.injected=1"})
    assert response.status_code == 200, f"POST dagRuns: HTTP {response.status_code} {response.text}"
    run_id = response.json()["dag_run_id"]
    finished_run(server, GUARD_DAG_ID, run_id)
    assert_tasks_succeeded(server, GUARD_DAG_ID, run_id)
    # A successful Spark task's log under Airflow's supervisor: the JVM's own lines at their own level.
    errors = server.task_log_errors(GUARD_DAG_ID, run_id, "live_conf")
    assert not errors, "error-level lines in a successful task's log:\n" + "\n".join(errors[:20])
    live = server.xcom(GUARD_DAG_ID, run_id, "live_conf")
    assert live["instances"] == "3", live
    assert "-Dflyte.safe=1" in live["java_opts"] and "injected" not in live["java_opts"], live
    assert live["task_saw_extra_key"] is True, live  # Airflow passed it on; the allow-list kept it from Spark


def test_rest_trigger_sizes_every_engine_of_the_example(server: Standalone, rest_run: dict) -> None:
    run_id = rest_run["dag_run_id"]
    assert_tasks_succeeded(server, DAG_ID, run_id)
    assert rest_run["state"] == "success", rest_run
    # Each engine's successful task, under Airflow's supervisor (which logs a task's stderr as ERROR).
    for task_id in ("spark_sized", "ray_sized", "dask_sized", "elastic_sized"):
        errors = server.task_log_errors(DAG_ID, run_id, task_id)
        assert not errors, f"error-level lines in the log of {task_id}:\n" + "\n".join(errors[:20])
    assert server.xcom(DAG_ID, run_id, "dask_sized") == {"workers": 3}
    assert server.xcom(DAG_ID, run_id, "elastic_sized") == {"world_size": 2}
    ray = server.xcom(DAG_ID, run_id, "ray_sized")
    assert ray["workers"] == 2, ray  # REST_CONF's ray_workers, not the default (1)
    assert ray["cpus"] == expected_ray_cpus(workers=2), ray


def test_value_outside_the_schema_is_rejected_and_creates_no_run(server: Standalone) -> None:
    before = {r["dag_run_id"] for r in server.dag_runs(DAG_ID)}
    response = server.trigger(DAG_ID, {"executors": 99})
    assert 400 <= response.status_code < 500, f"HTTP {response.status_code} {response.text}"
    assert "executors" in response.text and "maximum" in response.text, response.text
    time.sleep(3)
    after = {r["dag_run_id"] for r in server.dag_runs(DAG_ID)}
    assert after == before, f"a refused trigger created runs: {after - before}"


# -- .expand() under LocalExecutor ----------------------------------------------------------------
ENGINES = {"spark": "spark_square_sum", "ray": "ray_square_sum", "dask": "dask_square_sum"}


def test_expand_runs_three_engine_instances_concurrently(server: Standalone) -> None:
    server.wait_for_dag(EXPAND_DAG_ID)
    with server.watch_listeners() as exposed:
        response = server.trigger(EXPAND_DAG_ID)
        assert response.status_code == 200, response.text
        run_id = response.json()["dag_run_id"]
        finished_run(server, EXPAND_DAG_ID, run_id, timeout=480)
    assert not exposed, f"listening beyond 127.0.0.1 while the engines ran: {exposed}"

    tis = server.task_instances(EXPAND_DAG_ID, run_id)
    problems = []
    for engine, task_id in ENGINES.items():
        mine = sorted((ti for ti in tis if ti["task_id"] == task_id), key=lambda ti: ti["map_index"])
        states = [ti["state"] for ti in mine]
        if states != ["success"] * 3:
            problems.append(f"{engine}: states {states}")
            continue
        values = [server.xcom(EXPAND_DAG_ID, run_id, task_id, i) for i in range(3)]
        expected = [sum(v * v for v in range(x + 1)) for x in (1, 2, 3)]
        if [v["value"] for v in values] != expected:
            problems.append(f"{engine}: values {[v['value'] for v in values]} != {expected}")
        if len({v["address"] for v in values}) != 3 or len({v["pid"] for v in values}) != 3:
            problems.append(f"{engine}: instances share an address or a process: {values}")
        ti_windows = [(parse_time(ti["start_date"]), parse_time(ti["end_date"])) for ti in mine]
        engine_windows = [(v["up"], v["down"]) for v in values]
        if max_overlap(ti_windows) < 2:
            problems.append(f"{engine}: no two task instances overlapped in time: {ti_windows}")
        if max_overlap(engine_windows) < 2:
            problems.append(f"{engine}: no two engines were up at the same time: {engine_windows}")
        print(f"{engine}: {max_overlap(ti_windows)} task instances and {max_overlap(engine_windows)} engines "
              f"at once; addresses {[v['address'] for v in values]}")
    if problems:
        raise AssertionError("\n".join(problems) + "\n" + server.failed_task_logs(EXPAND_DAG_ID, run_id))


def test_max_overlap_counts_simultaneous_intervals() -> None:
    assert max_overlap([(0, 1), (2, 3)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 1.6)]) == 3
    assert max_overlap([(0, 1), (1, 2)]) == 1  # touching is not overlapping
