"""core/settings.py: the one reader of [flyte] options reads them as Airflow does, with declared defaults."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteConfigError


def test_every_option_read_is_declared_with_a_default():
    options = settings.CONFIG["flyte"]["options"]
    assert {"code_bundle", "staging_uri", "warm_dir", "kubernetes_startup_timeout"} <= set(options)
    assert all("default" in spec and "description" in spec for spec in options.values())
    with pytest.raises(KeyError, match="not declared"):
        settings.value("no_such_option")


def test_unset_options_take_their_declared_defaults(monkeypatch):
    for name in ("CODE_BUNDLE", "KUBERNETES_STARTUP_TIMEOUT", "KUBERNETES_KEEP_FAILED_S", "KUBERNETES_NAMESPACE",
                 "KUBERNETES_DEFERRABLE"):
        monkeypatch.delenv(f"AIRFLOW__FLYTE__{name}", raising=False)
    assert settings.flag("code_bundle") is True
    assert settings.flag("kubernetes_deferrable") is True
    assert settings.number("kubernetes_startup_timeout") == 300.0
    assert settings.number("kubernetes_keep_failed_s") == 0.0
    assert settings.text("kubernetes_namespace") is None


def test_the_variable_wins_and_is_expanded_as_airflow_does(monkeypatch):
    monkeypatch.setenv("FLYTE_TEST_USER", "bob")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_NAMESPACE", "  ns-$FLYTE_TEST_USER ")
    assert settings.value("kubernetes_namespace") == "ns-bob"
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_NAMESPACE", "")
    assert settings.value("kubernetes_namespace") is None


@pytest.mark.parametrize(("raw", "expected"), [("False  # baked into the image", False), ("t", True), ("0", False),
                                               ("TRUE", True)])
def test_booleans_read_as_airflow_reads_them(monkeypatch, raw, expected):
    monkeypatch.setenv("AIRFLOW__FLYTE__CODE_BUNDLE", raw)
    assert settings.flag("code_bundle") is expected


def test_a_value_of_the_wrong_kind_names_the_option_and_its_variable(monkeypatch):
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "sometimes")
    with pytest.raises(FlyteConfigError, match=r"\[flyte\] kubernetes_deferrable.*AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE"):
        settings.flag("kubernetes_deferrable")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_STARTUP_TIMEOUT", "5m")
    with pytest.raises(FlyteConfigError, match="kubernetes_startup_timeout.*not a number"):
        settings.number("kubernetes_startup_timeout")

