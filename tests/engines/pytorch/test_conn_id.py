"""Elastic's conn_id names no Kubernetes connection (issue 27), through dag.test().

Without conn_id, ``nnodes=2`` is refused with "set conn_id to a Kubernetes connection"; with a conn_id that is
missing, or of another type, the task was then told to "remove conn_id". Now it names the connection, what was
found, and the fix: create a Kubernetes connection with that id, or run one node on the worker.
"""

from __future__ import annotations

import json
import logging


def test_a_conn_id_that_is_no_kubernetes_connection_names_it_and_the_fix(dag_runner, monkeypatch, capfd, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.delenv("AIRFLOW_CONN_PYTORCH_CONN_MISSING", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_PYTORCH_CONN_HTTP", json.dumps({"conn_type": "http", "host": "example.invalid"}))

    result = dag_runner.run("pytorch_conn_dag.py", "pytorch_conn")
    out, err = capfd.readouterr()
    text = "\n".join([out, err, *(r.getMessage() for r in caplog.records)])

    assert all(result.states[(t, -1)] == "failed" for t in ("missing", "http", "http_one_node")), result.states
    assert "remove conn_id" not in text
    assert "must not run" not in text
    head = ("conn_id: PyTorch Elastic does not run on an existing cluster: it runs on the Airflow worker or as a "
            "Kubernetes job, so conn_id must name a Kubernetes connection; ")
    k8s_fix = ("Fix: create a connection {0!r} of type kubernetes (Admin > Connections, or "
               "AIRFLOW_CONN_{1}='{{\"conn_type\": \"kubernetes\", ...}}'; docs/kubernetes.md) to run it on Kubernetes, "
               "or ")
    two_nodes = "use nnodes=1 (with nproc_per_node=N processes) and no conn_id to run it on the Airflow worker"
    expected = {
        "missing": head + "no connection 'pytorch_conn_missing' was found (got 'pytorch_conn_missing'). "
        + k8s_fix.format("pytorch_conn_missing", "PYTORCH_CONN_MISSING") + two_nodes,
        "http": head + "connection 'pytorch_conn_http' is of type 'http', not 'kubernetes' (got 'pytorch_conn_http'). "
        + k8s_fix.format("pytorch_conn_http", "PYTORCH_CONN_HTTP") + two_nodes,
        "http_one_node": head + "connection 'pytorch_conn_http' is of type 'http', not 'kubernetes' "
        "(got 'pytorch_conn_http'). " + k8s_fix.format("pytorch_conn_http", "PYTORCH_CONN_HTTP")
        + "leave conn_id unset to run it on the Airflow worker",
    }
    wrong = [task for task, message in expected.items() if message not in text]
    assert not wrong, f"{wrong} not in the log; {[line for line in text.splitlines() if 'conn_id' in line][:6]}"
