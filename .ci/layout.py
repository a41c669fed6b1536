"""The code's shape, checked by `make lint`: no import circle, no module over 400 lines, no function over 60, and
no throwaway `_` in bot/, where `_` is the translator."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FOLDERS = ("bot", "indexing", "benchmarks", "testbed", "tests")
MODULE_LINES, FUNCTION_LINES = 400, 60


def modules(root: Path) -> dict[str, tuple[ast.Module, int]]:
    """Each module by its dotted name: its syntax tree and its length in lines."""
    found = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            text = path.read_text("utf-8")
            found[name] = (ast.parse(text, str(path)), len(text.splitlines()))
    return found


def imports(tree: ast.Module) -> set[str]:
    """Every module named in an import, deferred and TYPE_CHECKING ones included: each is a dependency."""
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            named.add(node.module)
        elif isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
    return named


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            part = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(10_000)
    for module in graph:
        if module not in order:
            visit(module)
    return found


def rebinds_translator(tree: ast.Module) -> list[int]:
    """Lines where the bot's translator `_` is bound as a throwaway (a tuple unpacked, a loop, a with): in a
    handler that then says something, `_(...)` calls whatever was unpacked, which is how a reply crashed once."""
    targets: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets += [t for t in node.targets if isinstance(t, ast.Tuple | ast.List)]
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            targets.append(node.target)
        elif isinstance(node, ast.With | ast.AsyncWith):
            targets += [item.optional_vars for item in node.items if item.optional_vars is not None]
    return sorted({name.lineno for target in targets for name in ast.walk(target)
                   if isinstance(name, ast.Name) and name.id == "_"})


def problems(root: Path) -> list[str]:
    read = modules(root)
    graph = {name: {m for m in imports(tree) if m in read and m != name} for name, (tree, _) in read.items()}
    found = [f"import circle: {' -> '.join(part)}" for part in circles(graph)]
    for name, (tree, lines) in read.items():
        if lines > MODULE_LINES:
            found.append(f"{name}: {lines} lines (at most {MODULE_LINES})")
        if name.startswith("bot."):
            found += [f"{name}:{line}: `_` is the translator in bot/: name what is thrown away (_row, _action)"
                      for line in rebinds_translator(tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    found.append(f"{name}.{node.name}: {length} lines (at most {FUNCTION_LINES})")
    return found


if __name__ == "__main__":
    reported = problems(Path(__file__).resolve().parents[1])
    print("\n".join(reported) or "layout: no import circle, no module or function too long")
    sys.exit(1 if reported else 0)
