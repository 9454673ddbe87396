"""``raises_config_error``: a FlyteConfigError whose *message* names the field, the value and the fix.

The checks read ``str(error)`` (what the DAG author sees), not the exception's attributes, so a
message that loses its value or its fix fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError, _short_repr


@contextmanager
def raises_config_error(field: str, value: Any, fix: str, problem: str = "") -> Iterator[pytest.ExceptionInfo[Any]]:
    """Expect ``<field>: <problem> (got <repr(value)>). Fix: <... fix ...>``; ``problem``/``fix`` are substrings."""
    with pytest.raises(FlyteConfigError) as info:
        yield info
    message = str(info.value)
    assert message.startswith(f"{field}: "), f"the message does not start with the field {field!r}: {message}"
    check_message(message, field, value, fix, problem)


def check_message(message: str, field: str, value: Any, fix: str, problem: str = "") -> None:
    """``message`` (or its line that starts with ``field``, e.g. in a DAG import error) names field, value and fix."""
    lines = [line.strip() for line in message.splitlines() if f"{field}: " in line]
    assert lines, f"no line names the field {field!r}: {message}"
    message = lines[-1][lines[-1].index(f"{field}: "):]
    head, sep, tail = message.partition(". Fix: ")
    assert sep, f"the message has no fix: {message}"
    assert fix in tail, f"the fix does not say {fix!r}: {message}"
    assert head.endswith(f"(got {_short_repr(value)})"), f"the message does not show the value {value!r}: {message}"
    assert problem in head, f"the message does not say {problem!r}: {message}"
