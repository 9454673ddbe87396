"""Runs inside a Spark executor's Python worker: reports where it was imported from."""

from __future__ import annotations

import os


def tag(value: int) -> dict[str, object]:
    return {"value": value * 10, "file": __file__, "cwd": os.getcwd(), "pid": os.getpid()}
