#!/usr/bin/env bash
# Build the sdist and wheel, check them as PyPI would, and run the sdist's own tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="$PWD/.venv/bin/python"
rm -rf dist
$PY -m build --outdir dist . > /tmp/flyte-build.log 2>&1 || { tail -40 /tmp/flyte-build.log; exit 1; }
rm -rf src/*.egg-info build  # setuptools leaves them; a second copy of the metadata doubles entry points
ls -l dist
$PY -m twine check --strict dist/*
FLYTE_DIST_DIR="$PWD/dist" $PY -m pytest tests/e2e/test_publish.py -q -p no:cacheprovider

# The sdist must be able to run its tests: unpack it and run tests/e2e/test_package.py from there,
# against the sdist's own src/ (the installed distribution's metadata and entry point stay in use).
work="$(mktemp -d -t flyte-sdist-XXXXXX)"
trap 'rm -rf "$work"' EXIT
tar xzf dist/*.tar.gz -C "$work"
root="$(ls -d "$work"/*/)"
test -f "$root/tests/conftest.py" && test -d "$root/tests/support/dags"
(cd "$root" && PYTHONPATH="$root/src:$root" "$PY" -m pytest tests/e2e/test_package.py -q -p no:cacheprovider \
  && PYTHONPATH="$root/src:$root" "$PY" -c "import airflow_provider_flyte as p, sys; assert p.__file__.startswith(sys.argv[1]), p.__file__" "$root")
