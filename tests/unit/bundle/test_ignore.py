"""Credential files never travel in a code bundle: each is left out with a warning that names it."""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_flyte.bundle import build_bundle, clear_cache

MARK = "CREDENTIAL-3c9e1b"
SERVICE_ACCOUNT = json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "k",
                              "private_key": f"-----BEGIN PRIVATE KEY-----{MARK}", "client_email": "a@p.iam"})
DOCKER_CONFIG = json.dumps({"auths": {"registry.example.com": {"auth": MARK}}})

#: Found by name (planted with the mark as their content).
BY_NAME = [
    "kubeconfig", "deploy/prod.kubeconfig", "keys/loader-sa.json", "credentials.json",
    "gcloud/application_default_credentials.json", "AuthKey_ABC123.p8", "krb/service.keytab", ".my.cnf",
    ".s3cfg", ".vault-token", "infra/terraform.tfstate", "infra/old.tfstate", "infra/terraform.tfstate.backup",
    "secrets.yaml", "conf/secrets.yml", "token.txt", "local.sqlite-wal", "local.sqlite-shm",
    "local.sqlite-journal", "airflow.db-wal",
]
#: Found by content: the names say nothing.
BY_CONTENT = {"keys/loader.json": SERVICE_ACCOUNT, "registry/config.json": DOCKER_CONFIG,
              "config.json": DOCKER_CONFIG}
#: Look alike, hold nothing: bundled.
KEPT = {"helpers/util.py": "def f():\n    return 42\n", "data/config.json": '{"threshold": 3}\n',
        "data/account.json": '{"type": "service_account", "note": "no key here"}\n',
        "docs/tokens.md": "# tokens\n", "kubeconfig_helpers.py": "X = 1\n"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@contextlib.contextmanager
def _warnings_of(name: str) -> Iterator[list[str]]:
    """The warnings logger ``name`` emits in the block (whatever handlers Airflow's logging set up)."""
    found: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: found.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _plant(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_credential_files_are_left_out_of_the_bundle_with_a_warning_naming_each(
        tmp_path: Path) -> None:
    root = tmp_path / "project"
    for rel in BY_NAME:
        _plant(root, rel, MARK + rel)
    for rel, text in {**BY_CONTENT, **KEPT}.items():
        _plant(root, rel, text)
    (root / "linked-credentials.json").symlink_to(root / "keys" / "loader.json")  # a link to one: not followed
    with _warnings_of("airflow_provider_flyte.bundle.build") as warnings:
        bundle = build_bundle(root, fmt="zip")
    with zipfile.ZipFile(bundle.path) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
        assert not [n for n in names if MARK.encode() in archive.read(n)], names
    assert names == set(KEPT), names
    warned = "\n".join(warnings)
    for rel in [*BY_NAME, *BY_CONTENT]:
        assert f"Code bundle: {rel} looks like a secret and is not bundled" in warned, rel
    assert "linked-credentials.json -> keys/loader.json" in warned
