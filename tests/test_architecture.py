"""The package's shape, checked from its source: no import cycles between its modules.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a cycle that only lazy
imports keep from failing is still two modules that cannot be read, tested or moved apart.
"""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
import sys
import zipfile
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
    assert "martingale_harness.stats.martingale" in graph["martingale_harness.training.reward"]
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


# --- private inspect names: only in _inspect_compat ---------------------------------------------------

ROOT = PACKAGE.parent
SOURCES = ("martingale_harness", "martingale", "plugins", "benchmarks")
COMPAT = PACKAGE / "_inspect_compat.py"


def _private_inspect_imports(path: Path) -> list[str]:
    """The private inspect modules or names ``path`` imports (a dotted part starting with ``_``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found += [n for n in names if n.split(".")[0] == "inspect_ai" and any(p.startswith("_") for p in n.split("."))]
    return found


def test_private_inspect_names_are_imported_only_by_the_compat_module() -> None:
    offenders = {str(p.relative_to(ROOT)): names for source in SOURCES for p in (ROOT / source).rglob("*.py")
                 if p != COMPAT and (names := _private_inspect_imports(p))}
    assert offenders == {}
    assert _private_inspect_imports(COMPAT), "the compat module is where they are"


def test_a_private_inspect_import_is_recognised(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from inspect_ai.model import get_model\nimport inspect_ai.log\n"
                      "def f():\n    from inspect_ai.model._openai import messages_to_openai\n"
                      "from inspect_ai._util.error import PrerequisiteError\n")
    assert sorted(_private_inspect_imports(source)) == [
        "inspect_ai._util.error", "inspect_ai._util.error.PrerequisiteError",
        "inspect_ai.model._openai", "inspect_ai.model._openai.messages_to_openai"]


def test_the_compat_module_resolves_every_name_on_the_supported_inspect() -> None:
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    from martingale_harness import _inspect_compat

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (spec,) = [Requirement(r) for r in pyproject["project"]["dependencies"] if Requirement(r).name == "inspect-ai"]
    installed = importlib.metadata.version("inspect-ai")
    assert spec.specifier.contains(installed), f"inspect {installed} is outside the supported {spec.specifier}"
    for name in _inspect_compat.__all__:
        assert getattr(_inspect_compat, name) is not None, name
    # the names imported on first use exist too
    import inspect_ai.model._openai as converters
    import inspect_ai.model._reasoning as reasoning

    for name in ("chat_choices_from_openai", "model_output_from_openai", "messages_to_openai"):
        assert callable(getattr(converters, name)), name
    assert callable(reasoning.parse_content_with_reasoning)
    assert _inspect_compat.parse_content_with_reasoning("<think>a</think>b")[0] == "b"
    # the live display's metric computation still has the qualified name the scorer recognises it by
    from inspect_ai._eval.task.run import update_metrics_display_fn

    assert update_metrics_display_fn(lambda metrics: None).__qualname__ == _inspect_compat.LIVE_DISPLAY_FUNCTION


# --- built-in plugins use the API they publish --------------------------------------------------------


def _harness_imports(path: Path) -> set[str]:
    """The modules of the harness and of the built-in plugins that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add("." * node.level + node.module)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level)
    return {n for n in found if n.split(".")[0] in ("martingale_harness", "martingale_plugins", "") or
            n.startswith(".")}


def test_builtin_plugins_import_only_the_published_plugin_api() -> None:
    plugins = sorted((ROOT / "plugins" / "martingale_plugins").glob("*.py"))
    assert len(plugins) >= 7
    imports = {p.name: _harness_imports(p) for p in plugins}
    assert {name: found - {"martingale_harness.plugin_api"} for name, found in imports.items()} == {
        p.name: set() for p in plugins}


def test_the_plugin_api_imports_no_inspect_and_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, martingale_harness.plugin_api, martingale_plugins.self_report, martingale_plugins.answer_line;"
            "print(sorted(m for m in ('inspect_ai', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


TOP_MODULES = {"__init__", "_inspect_compat", "cli", "errors", "plugin_api", "project_files"}
"""The package top: the facade a user or plugin imports, and what every sub-package shares."""


def test_the_package_top_holds_only_a_handful_of_modules() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_MODULES, f"new top-level module(s) {sorted(top - TOP_MODULES)}: put them in a sub-package by job"
    assert all((d / "__init__.py").exists() for d in PACKAGE.iterdir() if d.is_dir() and d.name != "__pycache__"
               and any(d.rglob("*.py")))


def test_the_wheel_holds_no_test_fakes_and_every_eval_folder(tmp_path: Path) -> None:
    """Built the way pip builds it (hatchling); the stand-in servers stay in tests/fakes/."""
    root = PACKAGE.parent
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
                   cwd=root, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    fakes = [n for n in names if re.search(r"(^|/)(fakes|tests)/|openai_server|sglang_server|http_base", n)]
    assert fakes == [], fakes
    for task in ("forecast", "cmv", "openreview", "bayes"):
        assert f"martingale_harness/tasks/{task}/{task}.yaml" in names
        assert f"martingale_harness/tasks/{task}/dataset.py" in names
    assert "martingale_harness/_data/registry.yaml" in names
    assert "martingale_harness/testing/plugins.py" in names  # the plugin authors' helpers do ship
