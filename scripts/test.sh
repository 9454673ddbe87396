#!/usr/bin/env bash
# The test command: set up a fresh machine, lint, type-check, run the whole suite against real engines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SPARK_LOCAL_IP=127.0.0.1 RAY_USAGE_STATS_ENABLED=0

# The real kube-apiserver for tests/kubernetes/real (scripts/k8s/build_apiserver.sh: about 14 minutes the first
# time, cached outside the clone, nothing when the binaries exist) builds in the background beside lint and the
# suite; the `real_cluster` fixture waits for its log's last line `rc=<status>` and fails naming the log if the
# build failed. Its own process group, stopped if this script ends first.
own_log=""
[ -n "${FLYTE_K8S_BUILD_LOG:-}" ] || own_log=$(mktemp "${TMPDIR:-/tmp}/flyte-k8s-build.XXXXXX")
export FLYTE_K8S_BUILD_LOG="${FLYTE_K8S_BUILD_LOG:-$own_log}"
setsid bash -c 'started=$(date +%s); bash scripts/k8s/build_apiserver.sh; rc=$?;
  echo "build_apiserver: $(( $(date +%s) - started )) s"; echo "rc=$rc"' >"$FLYTE_K8S_BUILD_LOG" 2>&1 </dev/null &
export FLYTE_K8S_BUILD_PID=$!
trap 'kill -- "-$FLYTE_K8S_BUILD_PID" 2>/dev/null || true; [ -z "$own_log" ] || rm -f "$own_log"' EXIT
echo "building the real API server in the background (pid $FLYTE_K8S_BUILD_PID, log $FLYTE_K8S_BUILD_LOG)"

.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports  # layer rules (.importlinter)
.venv/bin/python scripts/ci/structure.py  # loose modules, module sizes, _private uses, import cycles, [flyte] readers
.venv/bin/python -m pytest tests -q --durations=25 "$@"  # the 25 slowest: where to look when the suite grows
tail -2 "$FLYTE_K8S_BUILD_LOG"
