"""Secret values of a Kubernetes task's config and env vars: through the job's ``Secret``, never in clear.

A plugin config or ``env_vars`` may hold a secret (``Spark(hadoop_conf={"fs.s3a.secret.key": ...})``,
``env_vars={"AWS_SECRET_ACCESS_KEY": ...}``): :func:`airflow_provider_flyte.core.masking.sensitive_values`
says which values are. On the worker, :class:`Sealed` takes them out of what is written down:

- the staged ``spec.json`` holds ``<flyte-sealed:FLYTE_SEALED_<i>>`` where value ``i`` was (inside a
  longer string too: a password in a URL);
- the job object (:func:`airflow_provider_flyte.manifests.pod_settings.seal_manifest`) holds no value:
  every pod gets ``FLYTE_SEALED_<i>`` from the job's ``Secret`` (``secretKeyRef``), a container env var
  holding a value is read from the ``Secret`` too, and Spark properties holding one are left out of the
  ``SparkApplication`` (the driver sets them on its session from the spec).

In the pod, :func:`unseal` puts the values back into the spec before the runner starts (and registers
them with the masker), so the task sees exactly what it was given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.exceptions import FlyteConfigError

if TYPE_CHECKING:
    from airflow_provider_flyte.core.spec import TaskSpec

#: Env var (in every pod of the job) holding sealed value ``i``.
ENV_PREFIX = "FLYTE_SEALED_"
_PLACEHOLDER = re.compile(r"<flyte-sealed:(" + ENV_PREFIX + r"\d+)>")
#: A value shorter than this is replaced only where it is a whole string, not inside other strings.
_MIN_INSIDE = 4
#: Sections of spec.json that are sealed: those that can hold the user's values.
SEALED_SECTIONS = ("config", "env_vars", "pod_template")


@dataclass(frozen=True)
class Sealed:
    """The secret values of one task's spec, longest first: value ``i`` travels as env var ``FLYTE_SEALED_<i>``."""

    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: TaskSpec) -> Sealed:
        from airflow_provider_flyte.core.masking import sensitive_values

        found = set(sensitive_values({name: getattr(spec, name) for name in SEALED_SECTIONS}))
        return cls(tuple(sorted(found, key=lambda value: (-len(value), value))))

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def env(self) -> dict[str, str]:
        """``FLYTE_SEALED_<i>`` -> value ``i``."""
        return {f"{ENV_PREFIX}{i}": value for i, value in enumerate(self.values)}

    def holds(self, text: str) -> bool:
        """Whether ``text`` is or holds a sealed value."""
        return any(_found_in(value, text) for value in self.values)

    def seal_text(self, text: str) -> str:
        for name, value in self.env.items():
            if _found_in(value, text):
                text = text.replace(value, f"<flyte-sealed:{name}>")
        return text

    def seal_document(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A spec's JSON form with every sealed value replaced by its placeholder."""
        out = dict(document)
        for name in SEALED_SECTIONS:
            if name in out:
                out[name] = map_strings(out[name], self.seal_text)
        return out


def unseal(document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """In the pod: the spec with each placeholder replaced by its value (from the job's ``Secret``), masked.

    :raises FlyteConfigError: the pod lacks one of the env vars (a pod template dropped them).
    """
    from airflow_provider_flyte.core.masking import register

    env = os.environ if environ is None else environ
    used: set[str] = set()

    def put_back(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise FlyteConfigError(
                "a secret value of env_vars or the plugin config", match.group(0),
                f"the pod has no env var {name}, which brings that value from the job's Secret",
                f"keep the provider's env entries ({ENV_PREFIX}*) in pod templates; see docs/kubernetes.md, 'Secrets'")
        used.add(name)
        return env[name]

    out = dict(document)
    for section in SEALED_SECTIONS:
        if section in out:
            out[section] = map_strings(out[section], lambda text: _PLACEHOLDER.sub(put_back, text))
    for name in sorted(used):
        register(env[name], name)
    return out


def _found_in(value: str, text: str) -> bool:
    return text == value or (len(value) >= _MIN_INSIDE and value in text)


def map_strings(value: Any, fn: Any) -> Any:
    """``value`` (JSON data) with ``fn`` applied to every string, dict keys excepted."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {key: map_strings(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, fn) for item in value]
    return value
