"""Errors raised for bad user input, each naming the field, the value and the fix."""

from __future__ import annotations

from typing import Any


class FlyteConfigError(ValueError):
    """A plugin config, environment or operator argument is invalid.

    The message always has the form ``<where>: <what is wrong> (got <value>). Fix: <how>``
    so that it reads well as a DAG import error in the Airflow UI. The formatter never
    raises, whatever the value (an object whose ``repr`` fails is shown by its type).
    """

    def __init__(self, field: Any, value: Any, problem: Any, fix: Any) -> None:
        self.field = str(field)
        self.value = value
        self.problem = str(problem)
        self.fix = str(fix)
        super().__init__(f"{self.field}: {self.problem} (got {_short_repr(value)}). Fix: {self.fix}")


class FlyteEngineError(RuntimeError):
    """An engine could not be started, reached or torn down."""


class TaskKilledError(FlyteEngineError):
    """Airflow stopped the task (SIGTERM: marked failed, cleared, or the worker shutting down)."""


def _short_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
