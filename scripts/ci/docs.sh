#!/usr/bin/env bash
# Build the docs site with warnings as errors, then check every internal link and anchor in it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_MKDOCS_2_WARNING=1
site="$(mktemp -d -t flyte-site-XXXXXX)"
trap 'rm -rf "$site"' EXIT
.venv/bin/mkdocs build --strict --site-dir "$site"
base="$(.venv/bin/python -c 'import yaml,urllib.parse as u; print(u.urlsplit(yaml.safe_load(open("mkdocs.yml"))["site_url"]).path)')"
.venv/bin/python scripts/ci/check_links.py "$site" --base-path "$base"
