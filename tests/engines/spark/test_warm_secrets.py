"""Secrets in a warm Spark server's start-time properties never reach a command line (``ps``), yet reach the task.

The properties go to the server in a file only its user can read. A UDF on the server sees the values;
no process of the machine (the server's JVM, its Python worker daemon, ...) holds one in its command line.
"""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from tests.engines.dask.test_warm import warm_dir  # noqa: F401  (fixture; stops the server after the test)


def test_secrets_reach_the_warm_server_through_a_private_file_not_its_command_line(
        dag_runner, warm_dir, monkeypatch: pytest.MonkeyPatch, capfd) -> None:  # noqa: F811
    env_secret, url_secret = f"envsecret-{secrets.token_hex(8)}", f"urlsecret-{secrets.token_hex(8)}"
    monkeypatch.setenv("SECRET_PLACES_ENV", env_secret)
    monkeypatch.setenv("SECRET_PLACES_URL", url_secret)
    result = dag_runner.run("secret_places_warm_spark.py", "secret_places_warm_spark")
    assert result.state == "success", result.states
    look = result.value("look")
    assert look["holding"] == [], f"processes with a secret on their command line: {look['holding']}"
    assert look["server_processes"] >= 2, look  # the JVM and its Python worker daemon were scanned
    assert look["seen"] == look["expected"]  # a UDF on the server sees both values
    (folder,) = (Path(p) for p in look["server_folders"])
    properties = [p for p in folder.rglob("*.properties") if env_secret in p.read_text()]
    assert properties, "the server's properties file"
    for path in [*properties, *(p.parent for p in properties), folder]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, oct(path.stat().st_mode)
    log = "".join(capfd.readouterr())
    assert env_secret not in log and url_secret not in log
