"""Local Ray warns about Resources it cannot give (issue 27), through dag.test(): it ignored them silently.

``Resources(memory=..., gpu=...)`` on the environment, or on a node's requests, beyond what the local instance
has is one WARNING line each, naming the field and the value; the task still runs. A request that fits says
nothing.
"""

from __future__ import annotations

import logging
import re

from airflow_provider_flyte.hooks.ray.local_fit import unmet_requests
from airflow_provider_flyte.resources import GPU, Resources


def _warning_lines(text: str) -> list[str]:
    """The task log's WARNING lines (structlog's ``[warning  ] message [logger]``), messages only."""
    found = re.findall(r"\[warning\s*\] (.*?) \[airflow\.task\.hooks\.[\w.]+\]", text)
    return found


def test_requests_local_ray_cannot_give_are_warning_lines(dag_runner, capfd, caplog):
    caplog.set_level(logging.INFO)
    result = dag_runner.run("ray_resources_dag.py", "ray_resources")
    assert result.state == "success", result.states
    assert result.value("asks_too_much") == 2 and result.value("asks_what_fits") == 2

    out, err = capfd.readouterr()
    warnings = _warning_lines(out + err)
    env_memory = [w for w in warnings if w.startswith("TaskEnvironment.resources.memory='64Ti' asks for 64.0 TiB, "
                                                     "but the local Ray instance has ")]
    env_gpu = [w for w in warnings if w.startswith("TaskEnvironment.resources.gpu=16 asks for 16 GPU(s), but the "
                                                  "local Ray instance has 0 ")]
    node_gpu = [w for w in warnings if w.startswith("RayJobConfig.worker_node_config[0].requests.gpu='A100:2' asks "
                                                   "for 2 GPU(s)")]
    assert len(env_memory) == len(env_gpu) == len(node_gpu) == 1, warnings
    assert "Run on a Ray cluster (conn_id) or Kubernetes" in env_memory[0]
    assert "drop gpu= for local runs" in env_gpu[0]
    assert not [w for w in warnings if "'64Mi'" in w], warnings  # the task that fits: no warning


def test_what_fits_is_quiet_and_each_field_is_named():
    available = {"CPU": 2.0, "memory": 8 * 2**30, "GPU": 1.0}
    assert unmet_requests([("e", Resources(memory="1Gi", gpu=1)), ("n", None)], available) == []
    lines = unmet_requests([("e", Resources(memory=("16Gi", "32Gi"))), ("n", Resources(gpu=GPU("H100", 2)))],
                           available)
    assert [line.split(" asks", 1)[0] for line in lines] == ["e.memory=('16Gi', '32Gi')",
                                                             "n.gpu=Device(quantity=2, device_class='GPU', "
                                                             "device='H100', partition=None)"]
    assert "has 8.0 GiB of memory" in lines[0] and "has 1 (GPU as Ray detects it" in lines[1]
