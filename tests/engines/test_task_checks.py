"""Issue 21: task inputs that were silent or got a raw message are applied, or refused naming field, value and fix.

Parse-time cases are DAG files under ``tests/support/bad_dags/task_checks_*.py`` loaded as Airflow's DAG
processor loads them (a DAG import error). Run-time cases are one ``dag.test()`` of
``tests/support/dags/task_checks_dag.py``: Dask sized by ``TaskEnvironment.resources``, a connection extra
that is not JSON, a Kubernetes API on a closed loopback port and ``[flyte] warm_dir`` on a file.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import pytest

BAD_DAGS = Path(__file__).parents[1] / "support" / "bad_dags"


@pytest.mark.parametrize(
    ("dag_file", "expected"),
    [
        ("task_checks_secret_env.py", r"TaskEnvironment\.secrets: the secret Variable or connection 'api_token' is "
         r"exposed as env var 'API_TOKEN', which env_vars\['API_TOKEN'\] also sets.*\(got 'API_TOKEN'\)\. Fix: give "
         r"the secret another name"),
        ("task_checks_retries.py", r"flyte_task\.retries: not a number of retries \(got 'x'\)\. Fix: pass a whole "
         r"number"),
        ("task_checks_positional_config.py", r"flyte_task: a plugin config passed positionally.*\(got 'Spark'\)\. "
         r"Fix: pass it by name: @flyte_task\(plugin_config=Spark\(\.\.\.\)\)"),
        ("task_checks_env_task_int.py", r"TaskEnvironment\.task: not a function: @env\.task decorates a function "
         r"\(got 42\)\. Fix: "),
        ("task_checks_resources_dict.py", r"flyte_task\.resources: not Flyte's Resources.*\(got \{'cpu': 2\}\)\. "
         r"Fix: use Resources\(cpu=2, memory=\"4Gi\"\)"),
        ("task_checks_op_kwargs.py", r"FlyteDaskOperator\.op_kwargs: not a dict of argument names to values "
         r"\(got \[\('n', 2\)\]\)\. Fix: pass a dict"),
        ("task_checks_op_args.py", r"FlyteDaskOperator\.op_args: not a list of positional arguments "
         r"\(got \{'n': 2\}\)\. Fix: pass a list"),
        ("task_checks_async_generator.py", r"flyte_task\.python_callable: an async generator function.*\(got 't'\)\. "
         r"Fix: return the values"),
        ("task_checks_generator.py", r"FlyteDaskOperator\.python_callable: a generator function.*\(got 'job'\)\. "
         r"Fix: return the values"),
    ],
)
def test_bad_task_input_is_a_dag_import_error(dag_file, expected):
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(BAD_DAGS / dag_file), bundle_path=BAD_DAGS)
    errors = list(bag.import_errors.values())
    assert len(errors) == 1, f"no DAG import error: {dag_file} parsed ({sorted(bag.dags)})"
    assert re.search(expected, errors[0]), errors[0]
    assert "Traceback" not in errors[0].split("FlyteConfigError", 1)[-1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_time_inputs_are_applied_or_fail_clearly(dag_runner, tmp_path, monkeypatch, capfd, caplog):
    caplog.set_level(logging.INFO)
    dead = _closed_port()
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(json.dumps({  # JSON is YAML
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "down", "cluster": {"server": f"http://127.0.0.1:{dead}"}}],
        "users": [{"name": "down", "user": {}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "down", "namespace": "default"}}],
        "current-context": "down",
    }))
    monkeypatch.setenv("AIRFLOW_CONN_TASK_CHECKS_K8S_DOWN", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
    monkeypatch.setenv("AIRFLOW_CONN_TASK_CHECKS_BAD_EXTRA", json.dumps(
        {"conn_type": "flyte_dask", "host": f"tcp://127.0.0.1:{dead}", "extra": "{'token': 'PLANTED-EXTRA-1'}"}))
    warm_file = tmp_path / "warm-is-a-file"
    warm_file.write_text("")
    monkeypatch.setenv("AIRFLOW__FLYTE__WARM_DIR", str(warm_file))

    result = dag_runner.run("task_checks_dag.py", "task_checks")
    out, err = capfd.readouterr()
    text = "\n".join([out, err, *(r.getMessage() for r in caplog.records)])

    # Every check of the one run is reported, so a failure names each case that went wrong.
    expected = {
        "sized: TaskEnvironment.resources sizes each local Dask worker": (
            result.states[("sized", -1)] == "success"
            and result.xcoms.get(("sized", -1)) == {"threads": [3], "memory_limit": [512 * 2**20]}),
        "bad_extra: the task fails naming the connection's extra, without showing it": (
            result.states[("bad_extra", -1)] == "failed"
            and "connection 'task_checks_bad_extra'.extra: not JSON (Expecting property name enclosed in double "
                "quotes" in text
            and "Fix: write the extras as a JSON object" in text
            and f"127.0.0.1:{dead}) within" not in text  # it stopped at the extra: no probe without the extras
            and "PLANTED-EXTRA-1" not in text),
        "k8s_down: the task fails naming the API address and the connection": (
            result.states[("k8s_down", -1)] == "failed"
            and f"Cannot reach the Kubernetes API at http://127.0.0.1:{dead} (connection 'task_checks_k8s_down')"
                in text
            and "Fix: check that the cluster is running" in text),
        "warm_dir_file: the task fails naming [flyte] warm_dir and its value": (
            result.states[("warm_dir_file", -1)] == "failed"
            and "[flyte] warm_dir: a file is in the way: the state folder of warm engines must be a folder "
                f"(got '{warm_file}'). Fix: point [flyte] warm_dir" in text
            and warm_file.is_file()),
    }
    wrong = [case for case, ok in expected.items() if not ok]
    assert not wrong, f"{wrong}; states {result.states}; sized returned {result.xcoms.get(('sized', -1))}"
