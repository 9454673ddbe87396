"""Calling the user's function: ``async def`` support, and the call as bytes for another process.

A call that leaves this process (Elastic workers, a pod) is pickled with cloudpickle, with the
modules other processes cannot import by name (the DAG file's) pickled by value.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from airflow_provider_flyte.bundle.user_code import register_by_value
from airflow_provider_flyte.exceptions import FlyteConfigError


def call_maybe_async(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Call ``fn``; run it to completion on an event loop when it is ``async def``."""
    result = fn(*args, **kwargs)
    if not inspect.isawaitable(result):
        return result
    coro = _as_coroutine(result)
    if not _loop_running():
        # Outside the ``except RuntimeError`` that found no loop: a failing task's exception must
        # not be chained to "no running event loop" (issue 27).
        return asyncio.run(coro)
    # Already inside a loop (an async operator path): run on a private loop in a thread.
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def runner() -> None:
        try:
            box["result"] = context.run(asyncio.run, coro)  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="flyte-async-task")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _loop_running() -> bool:
    """Whether this thread is inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class _NotRankZero:
    """What a node of a multi-node job returns when global rank 0 (the task's result) runs elsewhere."""

    def __repr__(self) -> str:
        return "NOT_RANK_ZERO"


#: Returned by a run on a node that does not hold the task's result; the entrypoint writes none.
NOT_RANK_ZERO = _NotRankZero()


def dumps_call(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], *,
               where: str, **extra: Any) -> bytes:
    """``{"fn", "args", "kwargs", **extra}`` as cloudpickle bytes, for ``where`` ("the PyTorch workers").

    A value that cannot be pickled is a :class:`FlyteConfigError` naming it, with the fix.
    """
    import cloudpickle

    undo = register_by_value(fn, cloudpickle)
    call = {"fn": fn, "args": list(args), "kwargs": dict(kwargs), **extra}
    try:
        return cloudpickle.dumps(call)  # type: ignore[no-any-return]
    except Exception as exc:
        name, value = _unpicklable(call, cloudpickle)
        raise FlyteConfigError(
            f"{getattr(fn, '__name__', 'task')}: {name}", value, f"cannot be sent to {where} ({exc})",
            "define the function in a module (or the DAG file) rather than as a closure over live objects, "
            "and pass plain values (numbers, strings, lists, dicts, arrays) as task arguments",
        ) from exc
    finally:
        undo()


def loads_call(payload: bytes) -> dict[str, Any]:
    """The call :func:`dumps_call` made."""
    import cloudpickle

    return cloudpickle.loads(payload)  # type: ignore[no-any-return]


def _unpicklable(call: Mapping[str, Any], cloudpickle: Any) -> tuple[str, Any]:
    candidates: list[tuple[str, Any]] = [("python_callable", call["fn"])]
    candidates += [(f"argument {i}", v) for i, v in enumerate(call["args"])]
    candidates += [(f"argument {k!r}", v) for k, v in call["kwargs"].items()]
    for name, value in candidates:
        try:
            cloudpickle.dumps(value)
        except Exception:
            return name, value
    return "task arguments", call
