"""Errors raised for bad user input, each naming the field, the value and the fix."""

from __future__ import annotations

from typing import Any


class FlyteConfigError(ValueError):
    """A plugin config, environment or operator argument is invalid.

    The message always has the form ``<where>: <what is wrong> (got <value>). Fix: <how>``
    so that it reads well as a DAG import error in the Airflow UI.
    """

    def __init__(self, field: str, value: Any, problem: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem} (got {_short_repr(value)}). Fix: {fix}")


class FlyteEngineError(RuntimeError):
    """An engine could not be started, reached or torn down."""


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
