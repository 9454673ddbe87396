"""The Roles as data (remote/rbac.py) are the Roles docs/kubernetes.md shows: one home, the page checked against it."""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_flyte.core import engines
from airflow_provider_flyte.remote import rbac
from tests.kubernetes.real import access


def test_the_pages_yaml_block_is_the_table() -> None:
    documented = access.documented_roles()
    assert set(documented) == {role.name for role in rbac.ROLES}
    for role in rbac.ROLES:
        assert documented[role.name] == rbac.role_manifest(role), role.name


def test_every_engine_with_a_kubernetes_job_is_covered() -> None:
    jobs = {(module.GROUP, module.PLURAL) for module in (
        importlib.import_module(entry.manifest_path) for entry in engines.entries() if entry.manifest_path)}
    assert jobs == set(rbac.JOB_OBJECTS)


def test_checks_walk_every_verb_of_one_role_or_both() -> None:
    worker = [(rule.resources[0], verb) for _, rule, verb in rbac.checks(rbac.WORKER)]
    assert ("sparkapplications", "create") in worker and ("pods/log", "get") in worker
    assert all(role.needed_by == rbac.TRIGGERER for role, _, _ in rbac.checks(rbac.TRIGGERER))
    assert len(list(rbac.checks())) == len(worker) + len(list(rbac.checks(rbac.TRIGGERER))) == 18
    with pytest.raises(KeyError):
        rbac.role("scheduler")


def test_the_fix_is_a_rule_to_add() -> None:
    role = rbac.role(rbac.WORKER)
    assert rbac.fix_rule(role, [("ray.io", "rayjobs"), ("kubeflow.org", "pytorchjobs")], "get") == (
        "add to the Role airflow-flyte-worker the rule {apiGroups: [ray.io, kubeflow.org], "
        "resources: [rayjobs, pytorchjobs], verbs: [get]} (docs/kubernetes.md, \"RBAC, least privilege\")")
    assert "{apiGroups: [\"\"], resources: [pods/log], verbs: [get]}" in rbac.fix_rule(role, [("", "pods/log")], "get")
    assert rbac.split_resource("pods/log") == ("pods", "log") and rbac.split_resource("pods") == ("pods", "")
