"""The Roles docs/kubernetes.md documents ("RBAC, least privilege"), read from the page, bound on a real API server.

The page's YAML block after ``<!-- rbac-roles`` is the one source of truth: these tests apply it as is,
or with one verb taken out.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "kubernetes.md"
MARKER = "<!-- rbac-roles"
#: The role each token user of the real cluster gets.
ROLE_OF_USER = {"worker": "airflow-flyte-worker", "triggerer": "airflow-flyte-triggerer"}


def documented_roles() -> dict[str, dict[str, Any]]:
    """``{role name: Role}`` from the page's YAML block."""
    text = DOC.read_text()
    start = text.index(MARKER)
    block = re.search(r"```yaml\n(.*?)```", text[start:], re.S)
    assert block, f"no ```yaml block after {MARKER} in {DOC}"
    roles = [doc for doc in yaml.safe_load_all(block.group(1)) if doc]
    assert all(r["kind"] == "Role" for r in roles), roles
    return {r["metadata"]["name"]: r for r in roles}


def grants(role: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(verb, resource)`` for each verb of each rule (a rule's resources share its verbs: the first stands)."""
    for rule in role["rules"]:
        for verb in rule["verbs"]:
            yield verb, rule["resources"][0]


def without(role: dict[str, Any], verb: str, resource: str) -> dict[str, Any]:
    """``role`` less ``verb`` on the rule that holds ``resource`` (on every resource of that rule)."""
    changed = copy.deepcopy(role)
    for rule in changed["rules"]:
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    changed["rules"] = [r for r in changed["rules"] if r["verbs"]]
    return changed


def bind(cluster: Any, namespace: str, user: str, role: dict[str, Any]) -> None:
    """Create ``role`` in ``namespace`` and bind it to the token user ``user``."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(cluster.api_client("admin"))
    body = copy.deepcopy(role)
    body["metadata"]["namespace"] = namespace
    rbac.create_namespaced_role(namespace, body)
    rbac.create_namespaced_role_binding(namespace, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"{body['metadata']['name']}-{user}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": body["metadata"]["name"]},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    })


def new_namespace(cluster: Any, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(name)
    return name


def delete_namespace(cluster: Any, namespace: str) -> None:
    from kubernetes import client

    client.CoreV1Api(cluster.api_client("admin")).delete_namespace(namespace)
