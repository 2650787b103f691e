"""The package's own import graph, read with ``ast`` (issue 31, item 2).

Every ``import`` and ``from ... import`` in ``gvae_bench/`` counts, the function-local ones included
(a lazy import is still an arrow). The graph's nodes are the modules; its *units* are the
subpackages (``gvae_bench.execution``, ``gvae_bench.results``, ...) and the top-level modules
(``gvae_bench.registry``, ...). The tests fail on

- a circle between modules (a strongly connected component of more than one module),
- a circle between units (``execution`` -> ``results`` -> ``execution`` is one even when no two
  modules import each other),
- an import of another unit's private name (a leading underscore, dunders aside) or private module.

Importing ``gvae_bench.a.b`` also runs ``gvae_bench/__init__.py`` and ``gvae_bench/a/__init__.py``;
those implicit arrows are left out, as each package's ``__init__`` is either empty or re-exports its
own submodules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import gvae_bench

PACKAGE_DIR = Path(gvae_bench.__file__).resolve().parent
# Plugins mapped into the namespace from the checkout's top-level folders; they are not the core.
PLUGIN_PACKAGES = ("gvae_bench.models", "gvae_bench.benchmarks", "gvae_bench.metrics")


@dataclass
class ImportGraph:
    """The core's modules, the arrows between them and the names each arrow carries."""

    modules: dict[str, Path] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    private: list[str] = field(default_factory=list)
    local_imports: list[str] = field(default_factory=list)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit(module: str) -> str:
    """The subpackage a module belongs to, or the top-level module itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return module
    candidate = ".".join(parts[:2])
    return candidate


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _function_scopes(tree: ast.AST) -> set[int]:
    """ids of import nodes nested inside a function body."""
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    inside.add(id(node))
    return inside


def build_graph() -> ImportGraph:
    graph = ImportGraph()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        graph.modules[name] = path
        if path.name == "__init__.py":
            graph.packages.add(name)
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        local = _function_scopes(tree)
        for node in ast.walk(tree):
            targets: list[tuple[str, str | None]] = []
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, name, name in graph.packages)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.append((submodule, None) if submodule in graph.modules else (source, alias.name))
            for target, imported in targets:
                if not target.startswith("gvae_bench") or target.startswith(PLUGIN_PACKAGES):
                    continue
                while target not in graph.modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target == name:
                    continue
                graph.edges[name].add(target)
                if id(node) in local:
                    graph.local_imports.append(f"{name} -> {target}")
                if unit(target) != unit(name):
                    leaf = target.rsplit(".", 1)[-1]
                    if _is_private(leaf) or (imported is not None and _is_private(imported)):
                        graph.private.append(f"{name} imports {target}{'.' + imported if imported else ''}")
    return graph


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return components


def unit_edges(graph: ImportGraph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.edges.items():
        for target in targets:
            if unit(source) != unit(target) and unit(target) != "gvae_bench":
                edges[unit(source)].add(unit(target))
    return edges


def test_the_walk_sees_the_package() -> None:
    graph = build_graph()
    assert "gvae_bench.execution.run" in graph.modules
    assert "gvae_bench.execution.records" in graph.edges["gvae_bench.execution.run"]
    # a function-local import is an arrow too
    assert any(edge.startswith("gvae_bench.cli ->") for edge in graph.local_imports)


def test_the_cycle_finder_finds_a_known_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(set(edges), edges) == [["a", "b", "c"]]
    assert strongly_connected({"a", "b"}, {"a": {"b"}}) == []


def test_no_circle_between_modules() -> None:
    graph = build_graph()
    assert strongly_connected(set(graph.modules), graph.edges) == []


def test_no_circle_between_subpackages() -> None:
    graph = build_graph()
    edges = unit_edges(graph)
    units = {unit(name) for name in graph.modules} - {"gvae_bench"}
    assert strongly_connected(units, edges) == []


def test_no_private_name_crosses_a_subpackage() -> None:
    assert build_graph().private == []


def test_the_plugin_contracts_import_only_the_base() -> None:
    """contracts/ sits under the registry: it reaches no plugin and nothing above the base modules."""
    graph = build_graph()
    base = {"gvae_bench.config", "gvae_bench.errors", "gvae_bench.profiles", "gvae_bench.atomic", "gvae_bench.paths"}
    for name, targets in graph.edges.items():
        if unit(name) == "gvae_bench.contracts":
            outside = {t for t in targets if unit(t) != "gvae_bench.contracts"}
            assert outside <= base, (name, outside - base)
