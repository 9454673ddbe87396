"""Test session setup: a scratch Airflow home, a migrated metadata DB, and a DAG runner.

Tests run DAGs the way Airflow loads them (``BundleDagBag``: generated module names,
bundle root on ``sys.path``) and execute them with ``dag.test()`` against real engines.
The working directory is moved away from the DAG folders so nothing is importable by accident.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE_TEST_DAGS = Path(__file__).resolve().parent / "support" / "dags"
SOURCE_EXAMPLE_DAGS = REPO / "src" / "airflow_provider_flyte" / "example_dags"

# dag.test() serializes the whole DAGS_FOLDER, so the session's DAG folder is a scratch copy
# holding the test DAGs plus the example DAGs (under examples/), outside the repository.
_HOME = Path(tempfile.mkdtemp(prefix="flyte-test-airflow-home-"))
# A child process that imports a test module (and so this file) makes a home of its own: gone at its exit.
# The session's own home is removed in pytest_sessionfinish, and again here (a no-op then).
atexit.register(shutil.rmtree, _HOME, True)
TEST_DAGS = _HOME / "dags"
EXAMPLE_DAGS = TEST_DAGS / "examples"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")
shutil.copytree(SOURCE_TEST_DAGS, TEST_DAGS, ignore=_IGNORE)
shutil.copytree(SOURCE_EXAMPLE_DAGS, EXAMPLE_DAGS, ignore=_IGNORE)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(TEST_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE"] = "False"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PYTHONUNBUFFERED", "1")
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

import pytest  # noqa: E402

from tests.support.dagrun import DagRunner  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from airflow_provider_flyte.bundle.cache import sweep_orphaned_caches

    shutil.rmtree(_HOME, ignore_errors=True)
    sweep_orphaned_caches()  # bundle caches of task processes that were killed (no atexit ran)


def pytest_sessionstart(session: pytest.Session) -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )


@pytest.fixture(scope="session", autouse=True)
def _neutral_cwd(tmp_path_factory: pytest.TempPathFactory):
    """Run from a directory that is neither the repo nor a DAG folder."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


@pytest.fixture(scope="session")
def dag_runner() -> DagRunner:
    return DagRunner()
