#!/usr/bin/env bash
# Set up a fresh machine and run every example DAG on the embedded default (engines local on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
FLYTE_SETUP_BROWSER=0 bash scripts/setup.sh
export SPARK_LOCAL_IP=127.0.0.1 RAY_USAGE_STATS_ENABLED=0
home="$(mktemp -d -t flyte-examples-XXXXXX)"
trap 'rm -rf "$home"' EXIT
export AIRFLOW_HOME="$home" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/src/airflow_provider_flyte/example_dags"
.venv/bin/airflow db migrate >/dev/null
.venv/bin/python scripts/run_dags.py "$AIRFLOW__CORE__DAGS_FOLDER" "$@"
