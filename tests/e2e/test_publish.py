"""What goes to PyPI: the sdist and wheel's contents and metadata, and the docs link checker.

Uses the artifacts in ``$FLYTE_DIST_DIR`` when set (``scripts/ci/release_check.sh`` builds them
once), else builds both into a temp dir with ``python -m build``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from airflow_provider_flyte import __version__
from airflow_provider_flyte.get_provider_info import DISTRIBUTION

REPO = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"ruff", "mypy", "pytest", "pytest-timeout", "playwright", "types-pyyaml", "import-linter", "mkdocs",
             "mkdocs-material", "mkdocstrings", "twine", "build", "moto", "jsonschema"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("FLYTE_DIST_DIR")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def one(dist: Path, pattern: str) -> Path:
    (path,) = [p for p in dist.glob(pattern) if __version__ in p.name]
    return path


@pytest.fixture(scope="module")
def wheel_names(dist: Path) -> list[str]:
    with zipfile.ZipFile(one(dist, "*.whl")) as zf:
        return zf.namelist()


@pytest.fixture(scope="module")
def metadata(dist: Path):
    with zipfile.ZipFile(one(dist, "*.whl")) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode())


def test_name_version_and_python(metadata):
    assert metadata["Name"] == DISTRIBUTION == "airflow-provider-flyte-plugins"
    assert metadata["Version"] == __version__  # one source: __init__.__version__
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License-Expression"] == "Apache-2.0"
    classifiers = set(metadata.get_all("Classifier"))
    for wanted in ("Typing :: Typed", "Framework :: Apache Airflow :: Provider", "Development Status :: 3 - Alpha",
                   *(f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 14))):
        assert wanted in classifiers, wanted
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Changelog", "Issues", "Source", "Documentation"} <= set(urls)
    assert "(preview) on an ephemeral Kubernetes cluster" in metadata["Summary"]


def test_no_dev_tools_in_published_requirements(metadata):
    requirements = metadata.get_all("Requires-Dist")
    names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in requirements}
    assert not names & DEV_TOOLS, names & DEV_TOOLS
    assert "test" not in (metadata.get_all("Provides-Extra") or [])


def test_floors_match_the_readme(metadata):
    """The README's table of lowest supported versions is the wheel's own ``>=`` floors."""
    floors = {}
    for req in metadata.get_all("Requires-Dist"):
        m = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", req)
        if m:
            floors[m.group(1).lower()] = m.group(2)
    readme = (REPO / "README.md").read_text()
    for name in ("apache-airflow", "apache-airflow-providers-common-compat", "pyspark", "ray", "torch"):
        row = re.search(rf"^\| {re.escape(name)}(?: \(`\[\w+\]`\))? \| ([^ |]+) \|", readme, re.M)
        assert row, f"README has no floor row for {name}"
        assert row.group(1) == floors[name], f"{name}: README says {row.group(1)}, wheel says {floors[name]}"
    dask_row = re.search(r"^\| dask / distributed \(`\[dask\]`\) \| ([^ |]+) \|", readme, re.M)
    assert dask_row and dask_row.group(1) == floors["dask"] == floors["distributed"]


def test_wheel_contents(wheel_names):
    assert "airflow_provider_flyte/py.typed" in wheel_names
    assert "airflow_provider_flyte/hooks/connections.py" in wheel_names
    assert any(n.startswith("airflow_provider_flyte/example_dags/example_flyte_spark.py") for n in wheel_names)
    assert "airflow_provider_flyte/triggers/kubernetes_job.py" in wheel_names, "the deferrable Kubernetes trigger ships"
    licenses = [n for n in wheel_names if ".dist-info/licenses/" in n]
    assert {Path(n).name for n in licenses} == {"LICENSE", "NOTICE"}
    assert not [n for n in wheel_names if n.startswith("tests/")]


def test_sdist_carries_its_tests_and_legal_files(dist):
    with tarfile.open(one(dist, "*.tar.gz")) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for wanted in ("tests/conftest.py", "tests/e2e/test_package.py", "tests/support/dagrun.py", "tests/support/bad_dags/reusable_with_plugin.py",
                   "LICENSE", "NOTICE", "CHANGELOG.md", "README.md", "pyproject.toml", "mkdocs.yml"):
        assert wanted in names, wanted
    assert any(n.startswith("tests/support/dags/") and n.endswith(".py") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "src/airflow_provider_flyte/triggers/kubernetes_job.py" in names


def test_readme_links_are_absolute():
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links
    relative = [link for link in links if not link.startswith(("https://", "http://", "#"))]
    assert not relative, f"relative links 404 on PyPI: {relative}"


def test_link_checker_finds_broken_links_and_anchors(tmp_path):
    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    (site / "index.html").write_text('<a href="a/">A</a><a href="a/#sec">sec</a><a href="https://x.invalid/">x</a>'
                                     '<img src="img/p.png">')
    (site / "a" / "index.html").write_text('<h2 id="sec">S</h2><a href="../">home</a><a href="/pre/a/#sec">root</a>')
    (site / "img").mkdir()
    (site / "img" / "p.png").write_bytes(b"")
    checker = [sys.executable, str(REPO / "scripts" / "ci" / "check_links.py"), str(site), "--base-path", "/pre/"]
    ok = subprocess.run(checker, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert "0 broken internal links" in ok.stdout

    (site / "a" / "index.html").write_text('<a href="../nope/">x</a><a href="../#missing">y</a>')
    bad = subprocess.run(checker, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "BROKEN a/index.html: ../nope/" in bad.stdout and "no #missing" in bad.stdout, bad.stdout
