"""What a wheel install leaves that a source checkout may not: byte-compiled modules.

``pip install`` compiles a wheel's modules; a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on
the development machines) has none, and every fresh process would compile the provider from source,
which no deployment does. Benchmarks that time fresh processes call this first.
"""

from __future__ import annotations

import compileall
from pathlib import Path


def compile_like_an_install(*folders: Path) -> None:
    """Byte-compile ``folders`` (``pip install`` compiles a wheel's modules; a checkout may not have them)."""
    for folder in folders:
        if not compileall.compile_dir(str(folder), quiet=1):
            raise SystemExit(f"byte-compiling {folder} failed")
