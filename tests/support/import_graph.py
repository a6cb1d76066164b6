"""The import graph of the `nons` package, read from the source with `ast`.

Every kind of import counts: module level, inside functions, under `TYPE_CHECKING`,
and `importlib.import_module("nons....")` string literals, which layering tools that
only read import statements miss.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import nons

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(nons.__file__).parent
"""The `nons` package directory."""

_MODULE_NAME = re.compile(r"nons(\.[a-z_][a-z0-9_]*)+(:[A-Za-z_][A-Za-z0-9_]*)?")
"""A string that names a module of the package (optionally `module:attribute`)."""


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (packages under their own name)."""
    modules: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the package that `name` names (`nons.a.b.func` -> `nons.a.b`)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, bool]]:
    """Each name imported, and whether it must name a module exactly (a string must).

    A string counts only when it is exactly a module's name (`nons.exec` is a NATS
    subject, not the package); an import statement names a module or something in it.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, False) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c`: the submodule `a.b.c` when there is one, else `a.b`.
            yield from ((f"{base}.{alias.name}", False) for alias in node.names)
    for value in _module_strings(tree):
        yield value.partition(":")[0], True


def _module_strings(tree: ast.AST) -> Iterator[str]:
    """Strings that name a module to load: `import_module` arguments, and constants
    (a string, or a tuple or list of them) assigned to a name, which is how a module
    to import later is usually kept (`DEFAULT_RUNTIME_MODULE = "nons..."`).
    Logger names and NATS subjects look alike but are neither."""
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "import_module":
                values = [node.args[0]]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            value = node.value
            values = list(value.elts) if isinstance(value, ast.Tuple | ast.List) else [value]
        for value in values:
            if (
                isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and _MODULE_NAME.fullmatch(value.value)
            ):
                yield value.value


def edges() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, in any way (itself excluded)."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for name, exact in _imported(tree, module, path.name == "__init__.py"):
            if name == "nons" or name.startswith("nons."):
                target = (name if name in modules else None) if exact else _resolve(name, modules)
                # `from nons.x import y` names the package too; a package's own
                # `__init__` is only an edge when it is imported by name alone.
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def module_strings(module: str) -> list[str]:
    """The strings of one module that name a `nons` module it may load by name."""
    modules = module_names()
    tree = ast.parse(modules[module].read_text(encoding="utf-8"))
    return [name for name in _module_strings(tree) if name.partition(":")[0] in modules]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), set()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected, more than one).

    Quadratic, which is nothing for a package of a hundred modules.
    """
    reach = {module: _reachable(graph, module) for module in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for module in sorted(graph):
        if module in placed:
            continue
        group = sorted(
            {module} | {other for other in reach[module] if module in reach.get(other, set())}
        )
        placed.update(group)
        if len(group) > 1:
            found.append(group)
    return found
