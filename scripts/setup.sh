#!/usr/bin/env bash
# Set up a fresh machine: system packages the engines need, a virtualenv, the package with its test extras.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
if [ "${FLYTE_SETUP_BROWSER:-1}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# --group needs pip >= 25.1: the upgrade above is what makes it work in a fresh venv.
# torch is pinned to the tested release. PyPI serves only its CUDA build for Linux x86_64 (GBs of nvidia wheels,
# also without a GPU); a CPU build installed beforehand from PyTorch's index is kept (README: torch and GPUs).
# The distribution was renamed (airflow-provider-flyte -> airflow-provider-flyte-plugins): drop an old install.
.venv/bin/python -m pip uninstall -q -y airflow-provider-flyte >/dev/null 2>&1 || true
# Editable, leaving no src/*.egg-info behind (a second copy of the distribution: the plugin would load twice).
bash scripts/dev/install_editable.sh .venv/bin/python -e ".[${FLYTE_EXTRAS:-all}]" --group dev "torch==2.13.0"
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; exit 1; }
.venv/bin/python -c "import airflow_provider_flyte, pyspark, ray, dask, distributed, torch" 
echo "setup done: $(.venv/bin/python -c 'import airflow, pyspark, ray, distributed, torch; print("airflow", airflow.__version__, "pyspark", pyspark.__version__, "ray", ray.__version__, "distributed", distributed.__version__, "torch", torch.__version__)')"
