#!/usr/bin/env bash
# Install this checkout editable into the venv of the given python, leaving no second copy of its metadata.
# Usage: scripts/dev/install_editable.sh PYTHON [pip install arguments, e.g. -e ".[all]" --group dev]
#
# setuptools' editable build writes src/airflow_provider_flyte_plugins.egg-info next to the package. The editable
# install puts src/ on sys.path, so importlib.metadata then finds the distribution twice (the venv's dist-info and
# that egg-info), and Airflow registers the listener plugin twice: "Plugin 'flyte_plugins_listeners' already
# registered", shown as "1 Plugin Import Error" on the home page (issue 27). The venv's dist-info is the install;
# the egg-info is a build leftover, removed here before and after pip runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${1:?usage: install_editable.sh PYTHON [pip install arguments]}"
shift
rm -rf src/*.egg-info
"$PY" -m pip install -q "$@" 2>&1 | grep -v "^WARNING: Location" || true
rm -rf src/*.egg-info
