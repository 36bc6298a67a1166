"""The package structure stays as ARCHITECTURE.md describes it: no import cycle
inside gandata or gantrain (function-local and TYPE_CHECKING imports count),
gantrain depends on gandata and never the reverse, and gandata's top level
holds only a few modules beside its stage packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_TOP_LEVEL_MODULES = 8


def _modules(package: str, root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(packages: tuple[str, ...], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules it imports anywhere in its file (every import
    statement counts, wherever it stands)."""
    modules: dict[str, Path] = {}
    for package in packages:
        modules.update(_modules(package, root))
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".") if is_package else module.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                resolved = _resolve(target, modules)
                # A package importing its own submodules (re-exports), or a
                # module its parent package, is not a cycle of design.
                if resolved and resolved != module and not (is_package and resolved.startswith(module + ".")) \
                        and not module.startswith(resolved + "."):
                    graph[module].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph(("gandata", "gantrain"))) == []


def test_cycle_check_sees_function_local_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\ndef g():\n    pass\n")
    assert cycles(import_graph(("pkg",), tmp_path)) == [["pkg.a", "pkg.b"]]
    (package / "b.py").write_text("def g():\n    pass\n")
    assert cycles(import_graph(("pkg",), tmp_path)) == []


def test_gandata_never_imports_gantrain() -> None:
    graph = import_graph(("gandata", "gantrain"))
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith("gandata") for t in targets
                   if t.startswith("gantrain"))
    assert wrong == []


@pytest.mark.parametrize("layer, forbidden", [
    # Stage packages and the format never reach up to the orchestration or the CLI.
    (("gandata.sources", "gandata.image", "gandata.ingest", "gandata.plan", "gandata.clean", "gandata.write",
      "gandata.dataset", "gandata.stats", "gandata.util", "gandata.config"), ("gandata.pipeline", "gandata.cli")),
    (("gandata.pipeline",), ("gandata.cli",)),
    (("gandata.image", "gandata.util", "gandata.dataset"), ("gandata.ingest", "gandata.plan", "gandata.write")),
])
def test_imports_point_one_way(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    graph = import_graph(("gandata",))
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith(layer) for t in targets
                   if t.startswith(forbidden))
    assert wrong == []


def test_top_level_holds_few_modules() -> None:
    top = sorted(p.name for p in (ROOT / "gandata").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    for package in sorted(p for p in (ROOT / "gandata").iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"{package.name}/__init__.py has no docstring saying the package's job"
