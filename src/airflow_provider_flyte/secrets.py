"""``Secret``: Flyte's secret request, resolved from Airflow Variables and Connections at run time.

The task spec carries only *references* (key, group, env var name, mount): the value is read
where the task runs, registered with Airflow's secrets masker (so any log line that prints it
shows ``***``), exposed to the task and its engine's workers as an environment variable or a
file, and removed again when the task ends. It never enters XCom, rendered templates or the
staged spec.

Where a secret comes from:

* ``Secret(key="name")`` (or the string ``"name"``): the Airflow Variable ``name``; when there is
  no such Variable, the Airflow Connection ``name`` (its password, else its URI).
* ``Secret(group="conn_id", key="password")``: a field of the Airflow Connection ``conn_id``:
  ``password``, ``login``, ``host``, ``schema``, ``port``, ``uri``, ``extra`` (the JSON) or
  any key of the connection's extras.

Exposed as Flyte does: the env var ``as_env_var``, by default ``KEY`` or ``GROUP_KEY``
upper-cased with ``-`` -> ``_``. ``mount="/etc/flyte/secrets"`` writes a file instead, into a
private folder named by ``$FLYTE_SECRETS_DEFAULT_DIR`` (``<dir>/<group>/<key>`` or ``<dir>/<key>``),
because a worker cannot write ``/etc``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: The only mount Flyte accepts; here it means "as a file in $FLYTE_SECRETS_DEFAULT_DIR".
FLYTE_SECRETS_MOUNT = "/etc/flyte/secrets"
SECRETS_DIR_ENV = "FLYTE_SECRETS_DEFAULT_DIR"
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CONN_FIELDS = ("password", "login", "host", "schema", "port", "uri", "extra")


@dataclass
class Secret:
    """A secret the task needs, as ``flyte.Secret``: ``key`` in an optional ``group``.

    :param key: the Variable (no group) or the connection field (with ``group``).
    :param group: an Airflow connection id.
    :param mount: ``"/etc/flyte/secrets"`` to get a file instead of an env var.
    :param as_env_var: the env var name (default ``KEY`` / ``GROUP_KEY``, upper-cased).
    """

    key: str
    group: str | None = None
    mount: Any = None
    as_env_var: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise FlyteConfigError("Secret.key", self.key, "the key must be a non-empty string",
                                   'name an Airflow Variable, e.g. Secret(key="api_token")')
        if self.group is not None and (not isinstance(self.group, str) or not self.group):
            raise FlyteConfigError("Secret.group", self.group, "the group must be an Airflow connection id",
                                   'e.g. Secret(group="my_api", key="password")')
        if self.mount is not None and str(self.mount) != FLYTE_SECRETS_MOUNT:
            raise FlyteConfigError("Secret.mount", self.mount,
                                   f"Only {FLYTE_SECRETS_MOUNT} is supported as secret mount path today.",
                                   f'use mount="{FLYTE_SECRETS_MOUNT}" (a file in ${SECRETS_DIR_ENV}) or as_env_var=')
        if not self.mount and not self.as_env_var:
            name = f"{self.group}_{self.key}" if self.group else self.key
            self.as_env_var = name.replace("-", "_").upper()
        if self.as_env_var is not None and not _ENV_RE.match(self.as_env_var):
            raise FlyteConfigError("Secret.as_env_var", self.as_env_var,
                                   f"Invalid environment variable name, must match {_ENV_RE.pattern}",
                                   'use upper-case letters, digits and "_", e.g. as_env_var="API_TOKEN"')

    def to_ref(self) -> dict[str, Any]:
        """The reference that travels in the task spec (never the value)."""
        return {"key": self.key, "group": self.group, "mount": str(self.mount) if self.mount else None,
                "as_env_var": self.as_env_var}

    @property
    def where(self) -> str:
        return f"connection {self.group!r} field {self.key!r}" if self.group else f"Variable or connection {self.key!r}"


def secrets_from_request(secrets: Any, field: str = "secrets") -> list[Secret]:
    """``"name"``, ``Secret(...)`` or a list of them -> ``[Secret, ...]`` (Flyte's ``SecretRequest``)."""
    if secrets is None:
        return []
    if isinstance(secrets, (str, Secret)):
        secrets = [secrets]
    if not isinstance(secrets, (list, tuple)):
        raise FlyteConfigError(field, secrets, "not a secret request",
                               'pass "name", Secret(key=..., group=...) or a list of them')
    out = []
    for item in secrets:
        if isinstance(item, str):
            out.append(Secret(key=item))
        elif isinstance(item, Secret):
            out.append(item)
        else:
            raise FlyteConfigError(field, item, "not a secret", 'use "name" or Secret(key=..., group=...)')
    return out


def from_ref(ref: Mapping[str, Any]) -> Secret:
    return Secret(key=ref["key"], group=ref.get("group"), mount=ref.get("mount"), as_env_var=ref.get("as_env_var"))


def resolve(secret: Secret) -> str:
    """The secret's value from Airflow's Variables / Connections (the configured secrets backends)."""
    if secret.group is None:
        value = _variable(secret.key)
        if value is None:
            conn = _connection(secret.key)
            if conn is None:
                raise FlyteConfigError(
                    "secrets", secret.key, "no Airflow Variable or Connection of that name",
                    f"create the Variable {secret.key!r} (or a connection {secret.key!r}), or use "
                    "Secret(group=<conn_id>, key=<field>)",
                )
            value = conn.password or conn.get_uri()
        return str(value)
    conn = _connection(secret.group)
    if conn is None:
        raise FlyteConfigError("secrets", secret.group, "no Airflow Connection of that id",
                               f"create the connection {secret.group!r} or fix Secret(group=...)")
    if secret.key == "uri":
        return str(conn.get_uri())
    if secret.key == "extra":
        return str(conn.extra or "")
    if secret.key in _CONN_FIELDS:
        value = getattr(conn, secret.key, None)
    else:
        value = (conn.extra_dejson or {}).get(secret.key)
    if value is None:
        raise FlyteConfigError("secrets", f"{secret.group}.{secret.key}", "the connection has no such field",
                               f"use one of {', '.join(_CONN_FIELDS)} or a key of the connection's extras")
    return str(value)


def mask(value: str, name: str | None = None) -> None:
    """Register ``value`` with Airflow's secrets masker (task process and supervisor)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # older task SDKs
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(value, name)


@contextlib.contextmanager
def exposed(refs: Sequence[Mapping[str, Any]], *, logger: Any = None) -> Iterator[list[str]]:
    """Resolve, mask and expose the secrets for the block; put the environment back afterwards.

    Yields the env var names set (for logs: names only, never values).
    """
    if not refs:
        yield []
        return
    undo: list[Callable[[], None]] = []
    names: list[str] = []
    folder: str | None = None
    try:
        for ref in refs:
            secret = from_ref(ref)
            value = _from_env(ref) if ref.get("from_env") else resolve(secret)
            mask(value, secret.as_env_var or secret.key)
            if secret.mount:
                if folder is None:
                    folder = tempfile.mkdtemp(prefix="flyte-secrets-")
                    os.chmod(folder, stat.S_IRWXU)
                    undo.append(_set_env(SECRETS_DIR_ENV, folder))
                path = os.path.join(folder, *([secret.group] if secret.group else []), secret.key)
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(value)
                names.append(f"${SECRETS_DIR_ENV}/{os.path.relpath(path, folder)}")
            if secret.as_env_var:
                undo.append(_set_env(secret.as_env_var, value))
                names.append(secret.as_env_var)
        if logger is not None:
            logger.info("Secrets exposed (values masked): %s", ", ".join(names))
        yield names
    finally:
        for step in reversed(undo):
            step()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _from_env(ref: Mapping[str, Any]) -> str:
    """In a Kubernetes pod: the value the job's Secret put in ``ref["from_env"]``."""
    name = str(ref["from_env"])
    value = os.environ.get(name)
    if value is None:
        raise FlyteConfigError("secrets", ref.get("key"), f"the pod has no env var {name} (the job's Secret)",
                               "keep the provider's env entries in pod templates; see docs/kubernetes.md, 'Secrets'")
    return value


def _set_env(key: str, value: str) -> Callable[[], None]:
    old = os.environ.get(key)
    os.environ[key] = value

    def restore() -> None:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old

    return restore


def _variable(key: str) -> Any:
    from airflow.sdk import Variable

    try:
        return Variable.get(key, default=None)
    except Exception:
        return None


def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        return None
