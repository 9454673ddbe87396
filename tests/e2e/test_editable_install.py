"""The setup's editable install leaves one copy of the distribution, so Airflow loads the plugin once (issue 27).

``pip install -e .`` (setuptools) leaves ``src/airflow_provider_flyte_plugins.egg-info`` next to the package; src/ is
on sys.path, so ``importlib.metadata`` finds the distribution twice and Airflow registers the listener plugin twice
("1 Plugin Import Error"). ``scripts/setup.sh`` installs through ``scripts/dev/install_editable.sh``, which leaves
no such copy. The test installs a copy of this checkout with that script into a throw-away venv that sees the
shared venv's packages (all but this distribution), with pip's real editable build, and asks Airflow's
plugins manager, in that venv, what it loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.procs import REPO

DIST = "airflow-provider-flyte-plugins"
_OURS = re.compile(r"^(__editable__\.)?airflow_provider_flyte(_plugins)?\b", re.IGNORECASE)

_CHECK = """
import importlib.metadata as md, json, re, sys
name = lambda d: re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower()
dists = [str(d._path) for d in md.distributions() if name(d) == sys.argv[1]]
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
import airflow_provider_flyte
print(json.dumps({"dists": dists, "plugins": [p.name for p in plugins], "errors": errors,
                  "package": airflow_provider_flyte.__file__}))
"""


def _overlay_venv(root: Path) -> Path:
    """A venv whose site-packages links every package of the running one except this distribution."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root)], check=True)
    shared = Path(sysconfig.get_paths()["purelib"])
    (site,) = (root / "lib").glob("python3*/site-packages")
    for entry in shared.iterdir():
        if not _OURS.match(entry.name):
            (site / entry.name).symlink_to(entry)
    return root / "bin" / "python"


def _checkout_copy(dest: Path) -> Path:
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "scripts" / "dev", dest / "scripts" / "dev")
    return dest


def test_the_setups_editable_install_leaves_one_copy_and_airflow_loads_the_plugin_once(tmp_path):
    repo = _checkout_copy(tmp_path / "checkout")
    python = _overlay_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    # As the setup runs it: pip's default build isolation (its setuptools writes the egg-info into src/).
    subprocess.run(["bash", "scripts/dev/install_editable.sh", str(python), "--no-deps", "-e", "."],
                   cwd=repo, env=env, check=True, timeout=300)

    out = subprocess.run([str(python), "-c", _CHECK, DIST], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(repo / "src")), found  # the copy just installed is what runs
    assert len(found["dists"]) == 1 and "site-packages" in found["dists"][0], found["dists"]
    assert found["plugins"].count("flyte_plugins_listeners") == 1, found["plugins"]
    assert found["errors"] == {}, found["errors"]
    assert "already registered" not in out.stderr + out.stdout
    assert sorted(p.name for p in (repo / "src").iterdir() if p.name.endswith(".egg-info")) == []


def test_setup_installs_through_the_script():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert re.search(r"^bash scripts/dev/install_editable\.sh \.venv/bin/python -e ", setup, re.MULTILINE), setup
    assert not re.search(r"^\S*pip install .*-e ", setup, re.MULTILINE)  # no other editable install beside it
