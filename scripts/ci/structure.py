"""Measure the package's structure against issue 22's targets; exit 1 on any breach.

Five measures, each printed with its number and limit:

a. loose modules at the package top (``*.py`` next to ``__init__.py``; ``__init__.py`` and ``__main__.py``, the
   package's command line, not counted): at most 10, the public face and Airflow's entry points;
b. the largest module, and every module over 400 lines: none over 400;
c. uses of another module's ``_private`` name (``scripts/ci/private_imports.py``'s rules): 0;
d. import cycles between modules, from grimp's import graph (import-linter's own graph library;
   lazy and ``TYPE_CHECKING`` imports count, as in import-linter's contracts): none but the
   ``ALLOWED_CYCLE`` below;
e. modules that read ``[flyte]`` options (``conf.get*("flyte", ...)``, or an ``AIRFLOW__FLYTE__*``
   environment variable read through ``os.environ`` / ``os.getenv``): exactly one,
   ``core/settings.py``.

Usage: python scripts/ci/structure.py [--report]
``--report`` prints the same numbers and always exits 0.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SRC = ROOT / "src"
PACKAGE = "airflow_provider_flyte"
PACKAGE_DIR = SRC / PACKAGE

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC))  # measure this checkout, not whatever the venv has installed

import private_imports  # noqa: E402  (scripts/ci/private_imports.py)

MAX_LOOSE_MODULES = 10
MAX_MODULE_LINES = 400
SETTINGS_MODULE = f"{PACKAGE}.core.settings"

#: The one import cycle allowed. Flyte's API has ``env.task(...)`` on ``TaskEnvironment``, which
#: builds an operator through the decorator, while the operator (and the decorator) take a
#: ``TaskEnvironment``: environment -> decorators.flyte -> operators.base -> environment. The edge
#: below closes it; it is a late-bound import inside ``TaskEnvironment.task``. Every other module in
#: the cycle must belong to the DAG author's face (``AUTHOR_FACE``); any other cycle is a breach.
ALLOWED_CYCLE_EDGE = (f"{PACKAGE}.environment", f"{PACKAGE}.decorators.flyte")
AUTHOR_FACE = (f"{PACKAGE}.environment", f"{PACKAGE}.decorators", f"{PACKAGE}.operators", f"{PACKAGE}.authoring")

CONF_METHODS = {"get", "getboolean", "getint", "getfloat", "getlist", "getjson", "getsection", "getimport",
                "getenum", "getenumlist", "has_option", "get_mandatory_value", "get_mandatory_list_value"}
ENV_PREFIX = "AIRFLOW__FLYTE__"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _short(module: str) -> str:
    return module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else module


# a. loose modules -------------------------------------------------------------------------------

def loose_modules() -> list[str]:
    return sorted(p.name for p in PACKAGE_DIR.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))


# b. module sizes --------------------------------------------------------------------------------

def line_counts(modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(lines, path) for every module, largest first; lines as ``wc -l`` counts them."""
    counts = [(path.read_bytes().count(b"\n"), str(path.relative_to(ROOT))) for path in modules.values()]
    return sorted(counts, reverse=True)


# c. _private names ------------------------------------------------------------------------------

def private_uses(modules: dict[str, Path]) -> list[str]:
    return [line for path in modules.values() for line in private_imports.uses(path)]


# d. import cycles -------------------------------------------------------------------------------

def import_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycle_groups(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return sorted(groups)


def shortest_cycle(edges: dict[str, set[str]], group: list[str]) -> list[str]:
    """One shortest cycle inside the group, through the allowed edge's importer where it is a member."""
    members = set(group)
    start = ALLOWED_CYCLE_EDGE[0] if ALLOWED_CYCLE_EDGE[0] in members else group[0]
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges.get(node, ())):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return group


def _in_author_face(module: str) -> bool:
    return any(module == face or module.startswith(face + ".") for face in AUTHOR_FACE)


def is_allowed(group: list[str]) -> bool:
    importer, imported = ALLOWED_CYCLE_EDGE
    return importer in group and imported in group and all(_in_author_face(m) for m in group)


# e. [flyte] readers -----------------------------------------------------------------------------

def _flyte_env_constants(modules: dict[str, Path]) -> set[str]:
    """Names bound anywhere in the package to an ``AIRFLOW__FLYTE__*`` string."""
    names: set[str] = set()
    for path in modules.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_flyte_env(node.value, set()):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _is_flyte_env(node: ast.AST | None, constants: set[str]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.startswith(ENV_PREFIX)
    if isinstance(node, ast.JoinedStr) and node.values:
        return _is_flyte_env(node.values[0], constants)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.Attribute):
        return node.attr in constants
    if isinstance(node, ast.Call):  # settings.env_name("option") and the like
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name == "env_name"
    return False


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def flyte_reads(path: Path, constants: set[str]) -> list[str]:
    """Where this file reads a ``[flyte]`` option itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func, first = node.func, node.args[0]
            receiver = func.value
            receiver_name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if (func.attr in CONF_METHODS and receiver_name.endswith("conf") and isinstance(first, ast.Constant)
                    and first.value == "flyte"):
                found.append(f"{where}: {receiver_name}.{func.attr}(\"flyte\", ...)")
            elif func.attr in ("get", "pop", "setdefault") and _is_environ(receiver) and _is_flyte_env(first, constants):
                found.append(f"{where}: os.environ.{func.attr}({ast.unparse(first)})")
            elif func.attr == "getenv" and _is_flyte_env(first, constants):
                found.append(f"{where}: os.getenv({ast.unparse(first)})")
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value)
              and _is_flyte_env(node.slice, constants)):
            found.append(f"{where}: os.environ[{ast.unparse(node.slice)}]")
        elif (isinstance(node, ast.Compare) and len(node.comparators) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
              and _is_environ(node.comparators[0]) and _is_flyte_env(node.left, constants)):
            found.append(f"{where}: {ast.unparse(node.left)} in os.environ")
    return found


def flyte_readers(modules: dict[str, Path]) -> dict[str, list[str]]:
    constants = _flyte_env_constants(modules)
    readers = {}
    for name, path in modules.items():
        reads = flyte_reads(path, constants)
        if reads:
            readers[name] = reads
    return readers


# report -----------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print the numbers; never fail")
    args = parser.parse_args(argv)
    modules = _modules()
    breaches = []

    loose = loose_modules()
    print(f"a. loose modules at the package top (excluding __init__.py, __main__.py): {len(loose)} (limit {MAX_LOOSE_MODULES})")
    print("   " + " ".join(loose))
    if len(loose) > MAX_LOOSE_MODULES:
        breaches.append(f"{len(loose)} loose modules at the package top, over {MAX_LOOSE_MODULES}: move internals "
                        f"into a subpackage")

    counts = line_counts(modules)
    over = [(n, p) for n, p in counts if n > MAX_MODULE_LINES]
    print(f"b. largest module: {counts[0][1]} {counts[0][0]} lines; modules over {MAX_MODULE_LINES} lines: {len(over)}")
    for n, p in over:
        print(f"   {n:5d} {p}")
    if over:
        breaches.append(f"{len(over)} module(s) over {MAX_MODULE_LINES} lines: " + ", ".join(p for _, p in over))

    private = private_uses(modules)
    print(f"c. uses of another module's _private name: {len(private)} (limit 0)")
    for line in private:
        print(f"   {Path(line).relative_to(ROOT) if line.startswith(str(ROOT)) else line}")
    if private:
        breaches.append(f"{len(private)} use(s) of another module's _private name: make the name public where it "
                        f"belongs (scripts/ci/private_imports.py lists them)")

    edges = import_graph()
    groups = cycle_groups(edges)
    forbidden = [g for g in groups if not is_allowed(g)]
    print(f"d. import cycles between modules: {len(groups)} group(s), {len(forbidden)} not allowed "
          f"(allowed: the one closed by {_short(ALLOWED_CYCLE_EDGE[0])} -> {_short(ALLOWED_CYCLE_EDGE[1])})")
    for group in groups:
        label = "allowed" if group not in forbidden else "NOT ALLOWED"
        print(f"   {label}: " + " -> ".join(_short(m) for m in shortest_cycle(edges, group))
              + f"   ({len(group)} modules: {', '.join(_short(m) for m in group)})")
    if forbidden:
        breaches.append(f"{len(forbidden)} import cycle(s) besides {_short(ALLOWED_CYCLE_EDGE[0])} -> "
                        f"{_short(ALLOWED_CYCLE_EDGE[1])} -> operators -> environment")

    readers = flyte_readers(modules)
    print(f"e. modules that read [flyte] options: {len(readers)} (must be 1: core/settings.py)")
    for _, reads in sorted(readers.items()):
        for read in reads:
            print(f"   {read}")
    wrong = sorted(set(readers) - {SETTINGS_MODULE})
    if wrong or SETTINGS_MODULE not in readers:
        breaches.append(("[flyte] options read outside core/settings.py: " + ", ".join(_short(m) for m in wrong)
                         + ": call core.settings.value/text/flag/number") if wrong else
                        "core/settings.py reads no [flyte] option: this check no longer finds the reader")

    if breaches:
        print("\nstructure targets not met (report only):" if args.report else "\nstructure check FAILED:")
        for breach in breaches:
            print(f"  - {breach}")
        return 0 if args.report else 1
    print("\nstructure targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
