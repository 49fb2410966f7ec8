"""The import rules of docs/architecture.md (section 1), checked on every module.

Every `import` and `from ... import` counts, at module level, under `if TYPE_CHECKING`
and inside functions alike: a lazy import still loads the layer when it runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import of the others (a dotted prefix allows that module and
# everything under it). Anything internal not listed is refused.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "engine": (),
    "storage": ("engine.types", "engine.settings"),
    "tasks": ("engine", "storage"),
    "bots": ("engine", "storage", "tasks"),
    "review": ("engine", "storage", "tasks", "bots"),
    "training": ("engine", "storage"),
}
# Imports allowed only inside a function of one module: the cpu queue's jobs run
# training code, and a reply worker that imports tasks/ must not load it.
LAZY_ONLY: dict[str, tuple[str, ...]] = {
    "tasks/jobs.py": ("training",),
}
# The top: tools that may import every package, and that no package imports.
TOP = ("bench", "settings", "stickerbot", "tests")
INTERNAL = (*MAY_IMPORT, *TOP)


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def imports_of(tree: ast.Module) -> list[tuple[int, str, bool]]:
    """(line, absolute module, inside a function) for every import in the tree."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def violations(package: str) -> list[str]:
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), rel)
        for line, module, in_function in imports_of(tree):
            top = module.split(".")[0]
            if top not in INTERNAL or top == package:
                continue
            if _allowed(module, MAY_IMPORT[package]):
                continue
            if in_function and _allowed(module, LAZY_ONLY.get(rel, ())):
                continue
            problems.append(f"{rel}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("package", list(MAY_IMPORT))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    problems = violations(package)
    assert not problems, (f"{package}/ may import only {MAY_IMPORT[package] or 'nothing'} "
                          "(docs/architecture.md):\n" + "\n".join(problems))


def test_every_package_and_top_module_has_a_rule() -> None:
    names = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    names |= {p.stem for p in ROOT.glob("*.py")}
    assert names - set(INTERNAL) == set(), "add it to MAY_IMPORT or TOP, and to the map"


def test_the_checker_sees_lazy_and_type_checking_imports() -> None:
    tree = ast.parse("import os\n"
                     "if TYPE_CHECKING:\n    from bots.serve import serve\n"
                     "def f():\n    from training.pipeline import train\n")
    assert imports_of(tree) == [(1, "os", False), (3, "bots.serve", False),
                                (5, "training.pipeline", True)]
