"""Code bundle benchmark: cold and cached build time of a tree of 1,000 modules.

Run: ``.venv/bin/python bench/bench_bundle.py [--modules 1000] [--repeat 7]``.
Figures are medians over ``--repeat`` runs; results are recorded in docs/bundle.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from airflow_provider_flyte.bundle import build_bundle, cache_info, clear_cache

MODULE = '''"""Module {i} of package {p}."""

from __future__ import annotations

import math

CONSTANT_{i} = {i}


def compute_{i}(values: list[float]) -> float:
    """Sum of square roots, scaled by the module number."""
    return sum(math.sqrt(abs(v)) for v in values) * CONSTANT_{i}


class Worker{i}:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, n: int) -> list[float]:
        return [compute_{i}([float(k), float(n)]) for k in range(n)]
'''


def make_tree(root: Path, modules: int, per_package: int = 25) -> None:
    """``modules`` Python modules in packages of ``per_package``, plus files the rules drop."""
    (root / ".gitignore").write_text("*.csv\nscratch/\n")
    (root / ".env").write_text("TOKEN=secret\n")
    for i in range(modules):
        pkg = root / f"pkg_{i // per_package:03d}"
        if not pkg.exists():
            pkg.mkdir()
            (pkg / "__init__.py").write_text("")
            (pkg / "__pycache__").mkdir()
        (pkg / f"mod_{i:04d}.py").write_text(MODULE.format(i=i, p=pkg.name))
        (pkg / "__pycache__" / f"mod_{i:04d}.cpython-311.pyc").write_bytes(b"\0" * 512)
    (root / "data.csv").write_text("a,b\n" * 1000)
    an_hour_ago = time.time_ns() - 3600 * 10**9  # an edited-earlier tree, not one written just now
    for path in root.rglob("*"):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("airflow_provider_flyte").setLevel(logging.ERROR)  # no per-build log lines

    with tempfile.TemporaryDirectory(prefix="flyte-bench-bundle-") as tmp:
        root = Path(tmp) / "dags"
        root.mkdir()
        make_tree(root, args.modules)
        print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
        print(f"tree: {args.modules} modules under {root}; median of {args.repeat} runs")
        print(f"{'format':8} {'files':>6} {'archive':>10} {'cold build':>12} {'cached build':>13} {'touched':>10}")
        for fmt in ("zip", "tar.gz"):
            cold, cached, touched = [], [], []
            bundle = None
            for _ in range(args.repeat):
                clear_cache()
                cold.append(timed(lambda: build_bundle(root, fmt=fmt)))  # noqa: B023
                before = cache_info()
                cached.append(timed(lambda: build_bundle(root, fmt=fmt)))  # noqa: B023
                assert cache_info().hits == before.hits + 1, "cached build was not a cache hit"
                target = root / "pkg_000" / "mod_0000.py"
                stamp = time.time_ns()
                os.utime(target, ns=(stamp, stamp))
                touched.append(timed(lambda: build_bundle(root, fmt=fmt)))  # noqa: B023
                bundle = build_bundle(root, fmt=fmt)
            assert bundle is not None
            print(
                f"{fmt:8} {bundle.file_count:>6} {bundle.size / 1024:>7.0f} KiB "
                f"{statistics.median(cold) * 1000:>9.1f} ms {statistics.median(cached) * 1000:>10.1f} ms "
                f"{statistics.median(touched) * 1000:>7.1f} ms"
            )
        clear_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
