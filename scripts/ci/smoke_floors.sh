#!/usr/bin/env bash
# The built wheel, installed in separate venvs (not the dev venv, not the editable tree):
#   * the lowest supported Python with the lowest supported apache-airflow, common-compat and engines
#   * the highest supported Python with the newest releases
# Each parses every example DAG and runs the Spark, Ray and Dask examples (scripts/ci/smoke.py).
# Usage: scripts/ci/smoke_floors.sh [WHEEL]   (default: the newest dist/*.whl, built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
wheel="${1:-}"
if [ -z "$wheel" ]; then
  wheel="$(ls -t dist/*.whl 2>/dev/null | head -1 || true)"
  if [ -z "$wheel" ]; then
    $PY -m build --wheel --outdir dist . >/dev/null
    wheel="$(ls -t dist/*.whl | head -1)"
  fi
fi

# Lowest and highest supported Pythons (pyproject: requires-python >=3.10, classifiers up to 3.13).
find_python() {  # $1 = X.Y; the first candidate that really runs (a pyenv shim may not)
  for candidate in "$HOME"/.pyenv/versions/"$1".*/bin/python"$1" /root/.pyenv/versions/"$1".*/bin/python"$1" \
                   "/usr/bin/python$1" "/usr/local/bin/python$1" "python$1"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import sys, venv; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}
LOW_PY="${FLYTE_SMOKE_LOW_PYTHON:-$(find_python 3.10 || true)}"
HIGH_PY="${FLYTE_SMOKE_HIGH_PYTHON:-$(find_python 3.13 || true)}"
[ -n "$LOW_PY" ] || { echo "smoke: no Python 3.10 found (set FLYTE_SMOKE_LOW_PYTHON)"; exit 1; }
[ -n "$HIGH_PY" ] || { echo "smoke: no Python 3.13 found (set FLYTE_SMOKE_HIGH_PYTHON)"; exit 1; }

start=$(date +%s)
$PY scripts/ci/smoke.py --wheel "$wheel" --python "$LOW_PY" --mode floors
$PY scripts/ci/smoke.py --wheel "$wheel" --python "$HIGH_PY" --mode latest
echo "smoke: 2 passed, 0 failed ($(( $(date +%s) - start ))s)"
