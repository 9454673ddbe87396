"""The provider as Airflow's CLI shows it: ``providers get``, ``providers configs``, ``config get-value``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from airflow_provider_flyte import __version__
from airflow_provider_flyte.get_provider_info import DISTRIBUTION


def airflow(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "airflow", *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=300)
    assert out.returncode == 0, f"airflow {' '.join(args)}: {out.stderr[-3000:]}"
    return out.stdout


def json_out(text: str) -> Any:
    return json.loads(text[text.index("["):])


def test_providers_get_shows_the_free_name_and_version():
    (row,) = json_out(airflow("providers", "get", DISTRIBUTION, "-o", "json"))
    assert row == {"Provider": DISTRIBUTION, "Version": __version__}


def test_providers_configs_lists_every_flyte_option():
    rows = json_out(airflow("providers", "configs", "-o", "json"))
    ours = [r["provider_config"][1] for r in rows if r["provider_config"][0] == DISTRIBUTION]
    assert ours, f"{DISTRIBUTION} declares no config: {[r['provider_config'][0] for r in rows]}"
    options = ours[0]["flyte"]["options"]
    assert set(options) == {"code_bundle", "bundle_max_bytes", "staging_uri", "staging_conn_id",
                            "kubernetes_namespace", "kubernetes_deferrable", "kubernetes_startup_timeout",
                            "kubernetes_keep_failed_s", "kubernetes_object_url", "kubernetes_pod_url",
                            "kubernetes_service_account", "kubernetes_interruptible_tolerations",
                            "kubernetes_interruptible_node_selector", "kubernetes_kueue_queue",
                            "kubernetes_kueue_timeout", "warm_dir", "warm_ttl_override_s"}
    assert (options["code_bundle"]["type"], options["code_bundle"]["default"]) == ("boolean", "True")
    assert (options["bundle_max_bytes"]["type"], options["bundle_max_bytes"]["default"]) == ("integer", "104857600")
    assert options["staging_uri"]["default"] == "" and options["staging_conn_id"]["default"] == ""


def test_config_get_value_reads_defaults_and_overrides():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__FLYTE__")}
    run = lambda *a, extra=None: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "airflow", "config", "get-value", "flyte", *a], capture_output=True, text=True,
        env={**env, **(extra or {})}, timeout=300,
    )
    out = run("code_bundle")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
    assert run("bundle_max_bytes").stdout.strip() == "104857600"
    assert run("code_bundle", extra={"AIRFLOW__FLYTE__CODE_BUNDLE": "False"}).stdout.strip() == "False"
    staging = run("staging_uri", extra={"AIRFLOW__FLYTE__STAGING_URI": "s3://b/p"})
    assert staging.returncode == 0 and staging.stdout.strip() == "s3://b/p"


def test_the_code_reads_the_declared_defaults():
    """What ``[flyte]`` declares is what the code falls back to (no drift between the two)."""
    from airflow_provider_flyte.bundle.build import DEFAULT_MAX_BYTES
    from airflow_provider_flyte.core.settings import CONFIG

    options = CONFIG["flyte"]["options"]
    assert int(options["bundle_max_bytes"]["default"]) == DEFAULT_MAX_BYTES
    code = ("from airflow_provider_flyte.hooks.base import code_bundle_enabled;"
            "from airflow_provider_flyte.bundle.build import resolve_max_bytes;"
            "print(code_bundle_enabled(), resolve_max_bytes())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__FLYTE__")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", str(DEFAULT_MAX_BYTES)]
