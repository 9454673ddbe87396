"""The Kubernetes permissions the provider's own calls need: the two Roles of docs/kubernetes.md as data.

This table is the one home of the Roles: docs/kubernetes.md ("RBAC, least privilege") shows them as a YAML
block that ``tests/unit/remote/test_rbac.py`` checks against :func:`role_manifest`, and
``tests/kubernetes/real/test_rbac.py`` binds that block on a real API server. The connection check
(:mod:`~airflow_provider_flyte.remote.preflight`) asks the API server about each verb of each rule.

A verb whose absence does not fail a task says what it costs instead (:attr:`Rule.degrades`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: The engines' job objects, ``(API group, plural)``: what every engine rule covers.
JOB_OBJECTS: tuple[tuple[str, str], ...] = (
    ("sparkoperator.k8s.io", "sparkapplications"),
    ("ray.io", "rayjobs"),
    ("kubernetes.dask.org", "daskjobs"),
    ("kubeflow.org", "pytorchjobs"),
)
WORKER = "worker"
TRIGGERER = "triggerer"
DOCS = 'docs/kubernetes.md, "RBAC, least privilege"'


@dataclass(frozen=True)
class Rule:
    """One rule of a Role: ``verbs`` on each ``(group, resource)`` of ``objects``.

    :param degrades: ``{verb: what a task loses}`` for verbs whose absence does not fail the task.
    """

    objects: tuple[tuple[str, str], ...]
    verbs: tuple[str, ...]
    degrades: dict[str, str] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(group for group, _ in self.objects))

    @property
    def resources(self) -> list[str]:
        return [resource for _, resource in self.objects]

    def as_manifest(self) -> dict[str, Any]:
        return {"apiGroups": self.groups, "resources": self.resources, "verbs": list(self.verbs)}


@dataclass(frozen=True)
class Role:
    """A Role of docs/kubernetes.md: its name and rules, and which process's connection needs it."""

    name: str
    needed_by: str
    rules: tuple[Rule, ...]


_NO_PATCH = "a failed job is not kept for debugging (keep_failed_s)"
_NO_WATCH = "the triggerer polls (one shared LIST every 10 s) instead of watching"

ROLES: tuple[Role, ...] = (
    Role("airflow-flyte-worker", WORKER, (
        Rule(JOB_OBJECTS, ("create", "get", "list", "delete", "patch"), {"patch": _NO_PATCH}),
        Rule(tuple((group, f"{plural}/finalizers") for group, plural in JOB_OBJECTS), ("update",)),
        Rule((("", "pods"),), ("list",)),
        Rule((("", "pods/log"),), ("get",), {"get": "the job's log is left out of the task log"}),
        Rule((("", "secrets"),), ("create", "update", "patch", "delete")),
    )),
    Role("airflow-flyte-triggerer", TRIGGERER, (
        Rule(JOB_OBJECTS, ("get", "list", "watch", "delete"), {"watch": _NO_WATCH}),
        Rule((("", "pods"),), ("list", "watch"), {"watch": _NO_WATCH}),
    )),
)


def role(needed_by: str) -> Role:
    for found in ROLES:
        if found.needed_by == needed_by:
            return found
    raise KeyError(needed_by)


def role_manifest(found: Role, namespace: str = "NAMESPACE") -> dict[str, Any]:
    """The Role as the Kubernetes object docs/kubernetes.md shows."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": found.name, "namespace": namespace},
            "rules": [rule.as_manifest() for rule in found.rules]}


def checks(needed_by: str | None = None) -> Iterator[tuple[Role, Rule, str]]:
    """``(role, rule, verb)`` for each verb of each rule (of one process's Role, or of both)."""
    for found in ROLES:
        if needed_by in (None, found.needed_by):
            for rule in found.rules:
                for verb in rule.verbs:
                    yield found, rule, verb


def split_resource(resource: str) -> tuple[str, str]:
    """``"pods/log"`` -> ``("pods", "log")``: the resource and subresource of an access review."""
    name, _, sub = resource.partition("/")
    return name, sub


def fix_rule(found: Role, objects: list[tuple[str, str]], verb: str) -> str:
    """The rule to add to ``found`` for ``verb`` on ``objects``, as one line of YAML."""
    groups = ", ".join(group or '""' for group in dict.fromkeys(group for group, _ in objects))
    resources = ", ".join(resource for _, resource in objects)
    return (f"add to the Role {found.name} the rule {{apiGroups: [{groups}], resources: [{resources}], "
            f"verbs: [{verb}]}} ({DOCS})")


__all__ = ["DOCS", "JOB_OBJECTS", "ROLES", "TRIGGERER", "WORKER", "Role", "Rule", "checks", "fix_rule", "role",
           "role_manifest", "split_resource"]
