"""Code bundle benchmark: cold, cached and touched builds of a 1,000-module tree and of a 50 MB tree.

Run: ``.venv/bin/python bench/bench_bundle.py [--modules 1000] [--mb 50] [--repeat 7]``.
The first tree is ``--modules`` Python modules (plus files the ignore rules drop); the second
is 20 modules plus ``--mb`` MiB of data files, half incompressible (random bytes) and half
text. Figures are medians over ``--repeat`` runs; results are recorded in docs/bundle.md and
docs/performance.md.
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


def make_big_tree(root: Path, mb: int, file_kib: int = 512) -> None:
    """20 modules plus ``mb`` MiB of data in files of ``file_kib`` KiB, half random bytes, half text."""
    make_tree(root, 20)
    data = root / "data_files"
    data.mkdir()
    count = mb * 1024 // file_kib
    line = b"2026-01-01,sensor-0042,17.25,ok\n"
    for i in range(count):
        if i % 2:
            payload = os.urandom(file_kib * 1024)
        else:
            payload = (line * (file_kib * 1024 // len(line) + 1))[: file_kib * 1024]
        (data / f"part_{i:04d}.{'bin' if i % 2 else 'txt'}").write_bytes(payload)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for path in root.rglob("*"):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def measure(root: Path, label: str, repeat: int) -> list[dict[str, object]]:
    """Cold (cache cleared), cached (unchanged tree) and touched (one file's mtime bumped) builds."""
    rows = []
    for fmt in ("zip", "tar.gz"):
        cold, cached, touched = [], [], []
        bundle = None
        for _ in range(repeat):
            clear_cache()
            cold.append(timed(lambda: build_bundle(root, fmt=fmt, max_bytes=200 * 2**20)))  # noqa: B023
            before = cache_info()
            cached.append(timed(lambda: build_bundle(root, fmt=fmt, max_bytes=200 * 2**20)))  # noqa: B023
            assert cache_info().hits == before.hits + 1, "cached build was not a cache hit"
            target = root / "pkg_000" / "mod_0000.py"
            stamp = time.time_ns()
            os.utime(target, ns=(stamp, stamp))
            touched.append(timed(lambda: build_bundle(root, fmt=fmt, max_bytes=200 * 2**20)))  # noqa: B023
            bundle = build_bundle(root, fmt=fmt, max_bytes=200 * 2**20)
        assert bundle is not None
        row = {"tree": label, "format": fmt, "files": bundle.file_count, "archive_bytes": bundle.size,
               "cold": statistics.median(cold), "cached": statistics.median(cached),
               "touched": statistics.median(touched)}
        rows.append(row)
        print(f"| {label} | {fmt} | {bundle.file_count} | {_size(bundle.size)} "
              f"| {row['cold'] * 1000:.1f} ms | {row['cached'] * 1000:.2f} ms | {row['touched'] * 1000:.1f} ms |",
              flush=True)
    clear_cache()
    return rows


def run(modules: int, mb: int, repeat: int) -> list[dict[str, object]]:
    logging.getLogger("airflow_provider_flyte").setLevel(logging.ERROR)  # no per-build log lines
    print(f"# code bundle: python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"median of {repeat} runs")
    rows = []
    with tempfile.TemporaryDirectory(prefix="flyte-bench-bundle-") as tmp:
        root = Path(tmp) / "dags"
        root.mkdir()
        make_tree(root, modules)
        # The first build in a process also reads Airflow's config ([flyte] bundle_max_bytes, ignore
        # syntax): a one-off per process, reported apart so it does not skew the first cold figure.
        warm = Path(tmp) / "warm"
        warm.mkdir()
        make_tree(warm, 1)
        print(f"(first build in this process, 1 module: {timed(lambda: build_bundle(warm)) * 1000:.0f} ms)")
        print("| tree | format | files | archive | cold build | cached build | touched |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        rows += measure(root, f"{modules} modules", repeat)
        if mb:
            big = Path(tmp) / "big"
            big.mkdir()
            make_big_tree(big, mb)
            size = sum(p.stat().st_size for p in (big / "data_files").iterdir())
            rows += measure(big, f"{size / 2**20:.0f} MiB (20 modules + data)", repeat)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--mb", type=int, default=50, help="size of the second tree's data files (0: skip it)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    run(args.modules, args.mb, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
