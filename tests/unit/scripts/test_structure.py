"""scripts/ci/structure.py: the package-shape check that scripts/test.sh runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "ci" / "structure.py"


@pytest.fixture(scope="module")
def structure():
    spec = importlib.util.spec_from_file_location("structure_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cycle_groups_finds_each_cycle_once_and_ignores_chains(structure):
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d", "f"}, "f": set(), "g": {"g"}}
    assert structure.cycle_groups(edges) == [["a", "b", "c"], ["d", "e"]]
    assert structure.shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_only_the_env_task_cycle_is_allowed(structure):
    p = structure.PACKAGE
    env, deco, op, auth = f"{p}.environment", f"{p}.decorators.flyte", f"{p}.operators.base", f"{p}.authoring.x"
    assert structure.is_allowed(sorted([env, deco, op]))
    assert structure.is_allowed(sorted([env, deco, op, auth]))
    assert not structure.is_allowed(sorted([env, deco, op, f"{p}.runtime.runner"]))  # reaches below the face
    assert not structure.is_allowed(sorted([f"{p}.remote.jobs", f"{p}.remote.watch"]))
    assert not structure.is_allowed(sorted([env, op]))  # not closed by the late import


def test_flyte_option_reads_are_found_and_writes_are_not(structure, tmp_path, monkeypatch):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n"
        "from airflow.configuration import conf\n"
        "NAME = 'AIRFLOW__FLYTE__X'\n"
        "a = conf.getboolean('flyte', 'x')\n"
        "b = os.environ.get(NAME)\n"
        "c = os.environ['AIRFLOW__FLYTE__Y']\n"
        "d = os.getenv(f'AIRFLOW__FLYTE__{NAME}')\n"
        "e = 'AIRFLOW__FLYTE__Z' in os.environ\n"
        "env = {}\n"
        "env[NAME] = '1'\n"
        "os.environ[NAME] = '1'\n"
        "f = conf.get('core', 'x')\n"
        "g = {}.get('flyte')\n"
    )
    monkeypatch.setattr(structure, "ROOT", tmp_path)
    reads = structure.flyte_reads(module, {"NAME"})
    assert [line.split(":")[1] for line in reads] == ["4", "5", "6", "7", "8"]


def test_the_package_is_measured_and_report_never_fails():
    done = subprocess.run([sys.executable, str(SCRIPT), "--report"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for heading in ("a. loose modules", "b. largest module", "c. uses of another module's _private name",
                    "d. import cycles", "e. modules that read [flyte] options"):
        assert heading in done.stdout
    assert "core/settings.py" in done.stdout


def test_a_breach_fails_with_its_reason(structure, capsys, monkeypatch):
    monkeypatch.setattr(structure, "ROOT", REPO)
    monkeypatch.setattr(structure, "MAX_LOOSE_MODULES", 0)
    assert structure.main([]) == 1
    out = capsys.readouterr().out
    assert "structure check FAILED" in out and "loose modules at the package top, over 0" in out
    assert structure.main(["--report"]) == 0
