"""The package's shape, checked from its source: no import cycles between its modules.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a cycle that only lazy
imports keep from failing is still two modules that cannot be read, tested or moved apart.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "martingale_harness"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement may refer to (a module, or a name inside one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    return [target, *(f"{target}.{alias.name}" for alias in node.names)]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                deps.update(name for name in _imported(module, path.name == "__init__.py", node)
                            if name in files and name != module)
        graph[module] = deps
    return graph


def test_the_import_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    # a module-level import, a relative-free lazy import and a TYPE_CHECKING import are all edges
    assert "martingale_harness.stats" in graph["martingale_harness.training.reward"]
    assert "martingale_harness.training.grpo" in graph["martingale_harness.training.run"]
    assert "martingale_harness.training.reward_records" in graph["martingale_harness.training.diagnostics"]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        return list(e.args[1])
    return None


def test_no_import_cycle_between_modules() -> None:
    graph = import_graph()
    assert len(graph) > 50
    cycle = _cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_a_cycle_through_a_lazy_or_type_checking_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .c import g\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert set(_cycle(graph) or []) == {"pkg.a", "pkg.sub.b", "pkg.sub.c"}
    (pkg / "sub" / "c.py").write_text("import os\n")
    assert _cycle(import_graph(pkg)) is None
