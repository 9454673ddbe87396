#!/usr/bin/env bash
# The test command: set up a fresh machine, lint, type-check, run the whole suite against real engines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/k8s/build_apiserver.sh >/dev/null  # the real API server for tests/kubernetes/real (cached outside the clone)
export SPARK_LOCAL_IP=127.0.0.1 RAY_USAGE_STATS_ENABLED=0
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports  # layer rules (.importlinter)
.venv/bin/python scripts/ci/structure.py  # loose modules, module sizes, _private uses, import cycles, [flyte] readers
.venv/bin/python -m pytest tests -q --durations=25 "$@"  # the 25 slowest: where to look when the suite grows
