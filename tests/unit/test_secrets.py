"""``Secret``: Flyte's fields and env-var names, references without values, and where values come from."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_flyte import secrets
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.secrets import (
    FLYTE_SECRETS_MOUNT,
    Secret,
    from_ref,
    resolve,
    secrets_from_request,
)


def test_the_env_var_name_follows_flytes_rule() -> None:
    assert Secret(key="api-token").as_env_var == "API_TOKEN"
    assert Secret(key="password", group="my_db").as_env_var == "MY_DB_PASSWORD"
    assert Secret(key="k", as_env_var="MINE").as_env_var == "MINE"
    assert Secret(key="k", mount=FLYTE_SECRETS_MOUNT).as_env_var is None


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"key": ""}, "Secret.key"),
    ({"key": "k", "group": ""}, "Secret.group"),
    ({"key": "k", "mount": "/elsewhere"}, "Secret.mount"),
    ({"key": "k", "as_env_var": "lower-case"}, "Secret.as_env_var"),
])
def test_bad_fields_are_refused_naming_the_field(kwargs, field) -> None:
    with pytest.raises(FlyteConfigError) as err:
        Secret(**kwargs)
    assert err.value.field == field


def test_a_reference_carries_no_value_and_rebuilds_the_secret() -> None:
    secret = Secret(key="password", group="my_db")
    ref = secret.to_ref()
    assert ref == {"key": "password", "group": "my_db", "mount": None, "as_env_var": "MY_DB_PASSWORD"}
    assert from_ref(ref) == secret


def test_requests_accept_names_secrets_and_lists_only() -> None:
    assert secrets_from_request(None) == []
    assert secrets_from_request("token") == [Secret(key="token")]
    assert secrets_from_request(["a", Secret(key="b", group="c")]) == [Secret(key="a"), Secret(key="b", group="c")]
    with pytest.raises(FlyteConfigError, match="env.secrets: not a secret"):
        secrets_from_request([42], field="env.secrets")
    with pytest.raises(FlyteConfigError, match="not a secret request"):
        secrets_from_request({"key": "a"})


def test_values_come_from_variables_then_connections(monkeypatch) -> None:
    conn = SimpleNamespace(password="pw", login="me", host="db", schema=None, port=5432, extra='{"region": "eu"}',
                           extra_dejson={"region": "eu"}, get_uri=lambda: "postgres://me:pw@db:5432")
    monkeypatch.setattr(secrets, "_variable", lambda key: {"token": "t0k3n"}.get(key))
    monkeypatch.setattr(secrets, "_connection", lambda conn_id: conn if conn_id == "my_db" else None)
    assert resolve(Secret(key="token")) == "t0k3n"
    assert resolve(Secret(key="my_db")) == "pw"  # no Variable of that name: the connection's password
    assert resolve(Secret(key="port", group="my_db")) == "5432"
    assert resolve(Secret(key="region", group="my_db")) == "eu"
    assert resolve(Secret(key="uri", group="my_db")) == "postgres://me:pw@db:5432"
    with pytest.raises(FlyteConfigError, match="no Airflow Variable or Connection of that name"):
        resolve(Secret(key="missing"))
    with pytest.raises(FlyteConfigError, match="the connection has no such field"):
        resolve(Secret(key="nope", group="my_db"))
