"""Issue 22: tests mirror the code. Re-runnable relayout of tests/ (run from anywhere: python test_moves.py [REPO]).

tests/unit/<package>/test_<module>.py   fast, no engine (mirror of src/airflow_provider_flyte)
tests/engines/<engine>/test_<placement or feature>.py, tests/engines/test_<feature>.py (several engines)
tests/kubernetes/                       simulator-backed (tests/kubernetes/simulator: the simulator's own tests)
tests/e2e/                              airflow standalone / UI / faults / package / provider cli / publish
tests/support/                          clusters, procs, dagrun, s3 server, K8s simulator, CRDs, test DAGs, errors catalogue

1. ``git mv`` each path in MOVES (explicit old -> new). An old path that is gone while its new path exists was
   moved by an earlier run (skipped); both gone, or both present, fails loudly.
2. Rewrites, in every tracked text file (tests, src, bench, scripts, .ci, docs, root *.md except CHANGELOG.md,
   pyproject.toml, MANIFEST.in): dotted ``tests.<old>`` module names, slash ``tests/<old>`` paths, and
   ``Path(__file__)...`` expressions in tests/ and bench/ whose file or target moved (re-expressed from the new place).
3. Every new folder holding Python test or support modules gets an ``__init__.py`` (pytest's package names keep
   same-named test files apart: tests/engines/test_leftovers.py and tests/kubernetes/test_leftovers.py).
Idempotent: a second run changes nothing.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()

MOVES: dict[str, str] = {
    # --- support: helpers, simulator, CRDs, test DAGs, errors catalogue
    "tests/procs.py": "tests/support/procs.py",
    "tests/dagrun.py": "tests/support/dagrun.py",
    "tests/standalone.py": "tests/support/standalone.py",
    "tests/s3_server.py": "tests/support/s3_server.py",
    "tests/silent_server.py": "tests/support/silent_server.py",
    "tests/spark_clusters.py": "tests/support/spark_clusters.py",
    "tests/ray_clusters.py": "tests/support/ray_clusters.py",
    "tests/dask_clusters.py": "tests/support/dask_clusters.py",
    "tests/config_errors.py": "tests/support/config_errors.py",
    "tests/errors_cases.py": "tests/support/errors_cases.py",
    "tests/errors_catalogue.py": "tests/support/errors_catalogue.py",
    "tests/crds.py": "tests/support/crds.py",
    "tests/k8s_crds": "tests/support/k8s_crds",
    "tests/k8s": "tests/support/k8s",
    "tests/dags": "tests/support/dags",
    "tests/bad_dags": "tests/support/bad_dags",
    "tests/seed_dags": "tests/support/seed_dags",
    # --- unit: mirror of src/airflow_provider_flyte (fast, no engine)
    "tests/test_bundle.py": "tests/unit/bundle/test_build.py",
    "tests/test_mutations_bundle.py": "tests/unit/bundle/test_extract.py",
    "tests/test_secret_places_bundle.py": "tests/unit/bundle/test_ignore.py",
    "tests/test_connections.py": "tests/unit/hooks/test_connections.py",
    "tests/test_manifests_base.py": "tests/unit/manifests/test_base.py",
    "tests/test_manifests_ray_pytorch.py": "tests/unit/manifests/test_ray_pytorch.py",
    "tests/test_manifests_spark_dask.py": "tests/unit/manifests/test_spark_dask.py",
    "tests/test_secret_places_manifests.py": "tests/unit/manifests/test_secret_places.py",
    "tests/test_validation.py": "tests/unit/test_environment.py",
    "tests/test_errors_catalogue.py": "tests/unit/test_exceptions.py",
    "tests/unit/test_masking_values.py": "tests/unit/core/test_masking.py",
    "tests/unit/test_reuse_policy.py": "tests/unit/test_reuse.py",
    "tests/unit/test_warm_fingerprint.py": "tests/unit/warm/test_fingerprint.py",
    "tests/unit/test_warm_liveness.py": "tests/unit/warm/test_pool.py",
    "tests/unit/runtime/test_calls.py": "tests/unit/core/test_calls.py",
    "tests/unit/runtime/test_registry.py": "tests/unit/test_registry.py",
    "tests/unit/runtime/test_spec.py": "tests/unit/core/test_spec.py",
    "tests/unit/runtime/test_heap.py": "tests/unit/hygiene/test_heap.py",
    "tests/unit/runtime/test_staging.py": "tests/unit/remote/test_staging.py",
    "tests/unit/plugins/test_engine_key_lists.py": "tests/unit/plugins/test_known_keys.py",
    # --- engines: real engines through dag.test(), one folder per engine
    "tests/test_spark.py": "tests/engines/spark/test_local.py",
    "tests/test_spark_cluster.py": "tests/engines/spark/test_attach.py",
    "tests/test_warm_spark.py": "tests/engines/spark/test_warm.py",
    "tests/test_secret_places_warm.py": "tests/engines/spark/test_warm_secrets.py",
    "tests/test_spark_errors.py": "tests/engines/spark/test_errors.py",
    "tests/test_ray.py": "tests/engines/ray/test_local.py",
    "tests/test_ray_cluster.py": "tests/engines/ray/test_attach.py",
    "tests/test_warm_ray.py": "tests/engines/ray/test_warm.py",
    "tests/test_dask.py": "tests/engines/dask/test_local.py",
    "tests/test_dask_cluster.py": "tests/engines/dask/test_attach.py",
    "tests/test_warm_dask.py": "tests/engines/dask/test_warm.py",
    "tests/test_warm_pool.py": "tests/engines/dask/test_warm_pool.py",
    "tests/test_pytorch.py": "tests/engines/pytorch/test_local.py",
    # several engines in one test file
    "tests/test_config_checks.py": "tests/engines/test_config_checks.py",
    "tests/test_task_checks.py": "tests/engines/test_task_checks.py",
    "tests/test_leftovers.py": "tests/engines/test_leftovers.py",
    "tests/test_scratch.py": "tests/engines/test_scratch.py",
    "tests/test_timeouts.py": "tests/engines/test_timeouts.py",
    "tests/test_faults_engines.py": "tests/engines/test_faults.py",
    "tests/test_silent_servers.py": "tests/engines/test_silent_servers.py",
    "tests/test_quiet_engines.py": "tests/engines/test_quiet.py",
    "tests/test_secret_values.py": "tests/engines/test_secret_values.py",
    "tests/test_params.py": "tests/engines/test_params.py",
    "tests/test_porting_overrides.py": "tests/engines/test_porting_overrides.py",
    "tests/test_porting_secrets.py": "tests/engines/test_porting_secrets.py",
    "tests/test_porting_seed.py": "tests/engines/test_porting_seed.py",
    "tests/test_porting_validation.py": "tests/engines/test_porting_validation.py",
    # --- kubernetes: simulator-backed
    "tests/integration/__init__.py": "tests/kubernetes/__init__.py",
    "tests/integration/conftest.py": "tests/kubernetes/conftest.py",
    "tests/integration/test_in_cluster_entrypoint.py": "tests/kubernetes/test_in_cluster_entrypoint.py",
    "tests/integration/test_kubernetes_dags.py": "tests/kubernetes/test_dags.py",
    "tests/integration/test_kubernetes_pod_settings.py": "tests/kubernetes/test_pod_settings.py",
    "tests/integration/test_kubernetes_runner.py": "tests/kubernetes/test_runner.py",
    "tests/integration/test_kubernetes_standalone.py": "tests/kubernetes/test_standalone.py",
    "tests/integration/test_leftovers_k8s.py": "tests/kubernetes/test_leftovers.py",
    "tests/integration/test_secret_places_k8s.py": "tests/kubernetes/test_secret_places.py",
    "tests/integration/test_three_places.py": "tests/kubernetes/test_three_places.py",
    "tests/unit/k8s_sim": "tests/kubernetes/simulator",
    # --- e2e: a real airflow (standalone, CLI, UI) or the built package
    "tests/test_e2e_ui.py": "tests/e2e/test_ui.py",
    "tests/test_connections_ui.py": "tests/e2e/test_connections_ui.py",
    "tests/test_faults_standalone.py": "tests/e2e/test_faults_standalone.py",
    "tests/test_provider_cli.py": "tests/e2e/test_provider_cli.py",
    "tests/test_package.py": "tests/e2e/test_package.py",
    "tests/test_publish.py": "tests/e2e/test_publish.py",
}

#: Text that names several moved files at once (globs in docs), replaced as is.
EXTRA_TEXT: dict[str, str] = {
    "tests/test_manifests_*.py": "tests/unit/manifests/test_*.py",
}

#: Folders under tests/ that are not Python packages on purpose (DAG folders are bundle roots, CRDs are data).
NOT_PACKAGES = ("tests/support/dags", "tests/support/bad_dags", "tests/support/seed_dags", "tests/support/k8s_crds")

TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".txt", ".in", ""}
REWRITE_ROOTS = ("tests/", "src/", "bench/", "scripts/", ".ci/", "docs/")
SELF = "scripts/dev/test_moves.py"  # this script's committed copy names the old paths on purpose
REWRITE_FILES = ("pyproject.toml", "MANIFEST.in", "README.md", "CONTRIBUTING.md", "SECURITY.md", "mkdocs.yml",
                 ".importlinter")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def new_path(rel: str) -> str:
    """Where a repository-relative path lives after the moves (longest matching MOVES key)."""
    for old in sorted(MOVES, key=len, reverse=True):
        if rel == old or rel.startswith(old + "/"):
            return MOVES[old] + rel[len(old):]
    return rel


def move() -> dict[str, str]:
    """git mv each entry; returns {new file: old file} for every tracked file this run moved."""
    moved: dict[str, str] = {}
    tracked = git("ls-files").splitlines()
    for old, new in MOVES.items():
        src, dst = ROOT / old, ROOT / new
        if src.exists() and dst.exists():
            sys.exit(f"test_moves: both {old} and {new} exist; resolve by hand")
        if not src.exists():
            if dst.exists():
                continue  # moved by an earlier run
            sys.exit(f"test_moves: {old} is missing and {new} does not exist")
        files = [f for f in tracked if f == old or f.startswith(old + "/")]
        if not files:
            sys.exit(f"test_moves: {old} exists but git tracks nothing there")
        dst.parent.mkdir(parents=True, exist_ok=True)
        git("mv", old, new)
        for f in files:
            moved[new + f[len(old):]] = f
    return moved


def packages() -> None:
    """An __init__.py in every folder under tests/ that holds .py files (except the DAG and data folders)."""
    for py in sorted(git("ls-files", "tests").splitlines()):
        if not py.endswith(".py"):
            continue
        folder = Path(py).parent
        while folder != Path("."):
            if any(str(folder) == n or str(folder).startswith(n + "/") for n in NOT_PACKAGES):
                break
            init = ROOT / folder / "__init__.py"
            if not init.exists():
                init.write_text("")
                git("add", str(init.relative_to(ROOT)))
            folder = folder.parent


def _alternation(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def _dotted_map() -> dict[str, str]:
    out = {}
    for old, new in MOVES.items():
        o, n = old.removesuffix(".py"), new.removesuffix(".py")
        if o.endswith("__init__") or o.endswith("conftest"):
            continue
        out[o.replace("/", ".")] = n.replace("/", ".")
    out["tests.integration"] = "tests.kubernetes"  # the package itself
    out["tests.unit.k8s_sim"] = "tests.kubernetes.simulator"
    return out


DOTTED = _dotted_map()
DOTTED_RE = re.compile(rf"(?<![\w.])({_alternation(list(DOTTED))})(?![\w])")
SLASHED = {**MOVES, "tests/integration": "tests/kubernetes"}
SLASHED_RE = re.compile(rf"(?<![\w.-])({_alternation(list(SLASHED))})(?![\w])")
FROM_TESTS_RE = re.compile(r"^(?P<indent>[ \t]*)from tests import (?P<name>\w+)(?P<alias> as \w+)?[ \t]*$", re.M)


def _from_tests(m: re.Match[str]) -> str:
    """``from tests import crds`` -> ``from tests.support import crds`` (one module per line, as written here)."""
    old = f"tests.{m['name']}"
    if old not in DOTTED:
        return m[0]
    pkg, _, name = DOTTED[old].rpartition(".")
    alias = m["alias"] or (f" as {m['name']}" if name != m["name"] else "")
    return f"{m['indent']}from {pkg} import {name}{alias}"


FILE_EXPR = re.compile(
    r'Path\(__file__\)(?P<resolve>\.resolve\(\))?(?P<parents>(?:\.parent(?!s))*)(?:\.parents\[(?P<k>\d+)\])?'
    r'(?P<parts>(?:\s*/\s*"[^"]+")*)'
)


def rewrite_file_exprs(text: str, old_file: str, new_file: str) -> str:
    """Re-express ``Path(__file__)...`` paths from the file's new place, following moved targets."""

    def repl(m: re.Match[str]) -> str:
        up = len(m["parents"]) // len(".parent") + (int(m["k"]) + 1 if m["k"] is not None else 0)
        if up == 0:
            return m[0]  # the file itself
        parts = re.findall(r'"([^"]+)"', m["parts"])
        base = Path(old_file).parent
        target = os.path.normpath(os.path.join(str(base), *([".."] * (up - 1)), *parts))
        new_target = new_path(target) if not target.startswith("..") else target
        if old_file == new_file and new_target == target:
            return m[0]
        rel = os.path.relpath(new_target, str(Path(new_file).parent)).split(os.sep)
        n = 0
        while n < len(rel) and rel[n] == "..":
            n += 1
        down = [p for p in rel[n:] if p != "."]
        head = "Path(__file__)" + (m["resolve"] or "") + (".parent" if n == 0 else f".parents[{n}]")
        return head + "".join(f' / "{p}"' for p in down)

    return FILE_EXPR.sub(repl, text)


def rewrite(moved: dict[str, str]) -> list[str]:
    changed = []
    for rel in git("ls-files").splitlines():
        if rel == SELF or not (rel.startswith(REWRITE_ROOTS) or rel in REWRITE_FILES):
            continue
        path = ROOT / rel
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = text
        for a, b in EXTRA_TEXT.items():
            new = new.replace(a, b)
        new = FROM_TESTS_RE.sub(_from_tests, new)
        new = DOTTED_RE.sub(lambda m: DOTTED[m[1]], new)
        new = SLASHED_RE.sub(lambda m: SLASHED[m[1]], new)
        in_dags = any(rel.startswith(n + "/") for n in NOT_PACKAGES)  # copied to a DAG folder at run time
        if rel.endswith(".py") and rel.startswith(("tests/", "bench/")) and not in_dags:
            new = rewrite_file_exprs(new, moved.get(rel, rel), rel)
        if new != text:
            path.write_text(new)
            changed.append(rel)
    return changed


def sort_imports(files: list[str]) -> None:
    """The rewritten module names change isort's order: ruff's import sorting (rule I001) puts them back."""
    ruff = ROOT / ".venv" / "bin" / "ruff"
    if files:
        cmd = [str(ruff) if ruff.exists() else "ruff", "check", "--select", "I001", "--fix", "--quiet", *files]
        subprocess.run(cmd, cwd=ROOT, check=False)
        git("add", *files)


def main() -> None:
    if not (ROOT / "src" / "airflow_provider_flyte").is_dir():
        sys.exit(f"test_moves: {ROOT} is not the repository root")
    moved = move()
    packages()
    changed = rewrite(moved)
    sort_imports([c for c in changed if c.endswith(".py")])
    if changed:
        git("add", *changed)
    print(f"test_moves: {len(moved)} files moved, {len(changed)} files rewritten")


if __name__ == "__main__":
    main()
