"""Extra links read the URL the task recorded; a link the task did not use is an empty button."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_provider_flyte.links.base import LINKS_XCOM_KEY, XCOM_PREFIX, FlyteEngineLink, xcom_key
from airflow_provider_flyte.links.dask import DaskDashboardLink
from airflow_provider_flyte.links.kubernetes import KubernetesJobLink, KubernetesPodLink, kubernetes_links
from airflow_provider_flyte.links.ray import RayDashboardLink
from airflow_provider_flyte.links.spark import SparkUILink

ALL = (FlyteEngineLink, SparkUILink, RayDashboardLink, DaskDashboardLink, KubernetesJobLink, KubernetesPodLink)


def test_each_link_has_its_own_key_and_name() -> None:
    assert len({cls.link_key for cls in ALL}) == len(ALL)
    assert len({cls.name for cls in ALL}) == len(ALL)
    assert xcom_key("spark_ui") == f"{XCOM_PREFIX}spark_ui" == "flyte_link_spark_ui"
    assert LINKS_XCOM_KEY != XCOM_PREFIX


def test_a_link_reads_the_operators_record() -> None:
    operator = SimpleNamespace(flyte_links={"spark_ui": "http://driver:4040", "kubernetes_pod": "https://dash/pod"})
    assert SparkUILink().get_link(operator, ti_key=None) == "http://driver:4040"
    assert KubernetesPodLink().get_link(operator, ti_key=None) == "https://dash/pod"


def test_an_unused_or_odd_record_is_an_empty_link() -> None:
    operator = SimpleNamespace(flyte_links={"spark_ui": 4040})
    assert SparkUILink().get_link(operator, ti_key=None) == ""
    assert RayDashboardLink().get_link(operator, ti_key=None) == ""
    assert KubernetesJobLink().get_link(SimpleNamespace(flyte_links={}), ti_key=None) == ""


def test_every_operator_gets_both_kubernetes_links() -> None:
    links = kubernetes_links()
    assert [type(link) for link in links] == [KubernetesJobLink, KubernetesPodLink]
    assert [link.name for link in links] == ["Kubernetes job", "Kubernetes driver pod"]
