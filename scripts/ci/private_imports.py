"""List every use of another module's ``_private`` name inside the package; exit 1 if there is one.

A name is private when it starts with one underscore (dunders such as ``__version__`` are not).
Counted: ``from airflow_provider_flyte.x import _name`` and ``module._name`` where ``module`` was
bound by importing a provider module. A module's own private names are its business.
Usage: python scripts/ci/private_imports.py [FILES...]   (default: every file under src/)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "airflow_provider_flyte"
SRC = Path(__file__).resolve().parents[2] / "src"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_of(path: Path) -> str:
    parts = list(path.resolve().relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    here = _module_of(path)
    bound: set[str] = set()  # local names bound to provider modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            for alias in node.names:
                if _private(alias.name) and node.module != here:
                    found.append(f"{path}:{node.lineno}: from {node.module} import {alias.name}")
                elif not alias.name[:1].isupper():
                    bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and alias.asname:
                    bound.add(alias.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in bound):
            found.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted((SRC / PACKAGE).rglob("*.py"))
    found = [line for f in files if f.suffix == ".py" for line in uses(f)]
    print("\n".join(found))
    print(f"{len(found)} use(s) of another module's _private name")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
