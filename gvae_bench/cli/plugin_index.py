"""The registered names and one-line descriptions, read from the plugins' source without importing them.

``runner.py list``, ``--help`` and the checks of names on the command line need only the names and
descriptions of the registered models, benchmarks and metrics; importing the plugins to learn them
costs the import of torch, torchvision, SimpleITK, pydicom and friends (seconds). The built-in
plugins register themselves with a class decorator whose arguments are literals,

    @METRICS.register("fid")
    class FID(Metric):
        \"\"\"First paragraph: the one-line description.\"\"\"

so this module reads them from each module's syntax tree (``ast``), in the way the decorator itself
would: the name from the decorator's first argument, the description from its ``description=``
argument or else the first paragraph of the class docstring on one line (``Registry.register``).
The index is static discovery in the manner of entry points: nothing is executed.

When the static reading cannot give the same answer as the import, :func:`listing` imports the
plugins after all (``gvae_bench.registry.load_plugins``): when a
plugin module calls ``register`` in a form the reader does not understand (a computed name, a
registration that is not a class decorator), when an outside package declares plugins under the
entry-point groups, or when plugins are already imported (``--plugin FILE``). A test
(tests/test_plugin_index.py) checks the static index against the imported registry.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

#: the registry kinds, their built-in packages (one module per plugin) and their entry-point groups
KINDS = ("models", "benchmarks", "metrics")
_PACKAGES = {kind: f"gvae_bench.{kind}" for kind in KINDS}
_REGISTRY_NAMES = {"MODELS": "models", "BENCHMARKS": "benchmarks", "METRICS": "metrics"}


@dataclass(frozen=True)
class IndexEntry:
    """One registration read from source: the kind, the registered name, the module and class that
    register it, and its one-line description."""

    kind: str
    name: str
    module: str
    qualname: str
    description: str


class UnreadableRegistration(Exception):
    """A plugin module registers something in a form the static reader cannot follow."""


def _description(paragraph_source: str) -> str:
    """``Registry.register``'s description: the first paragraph of the docstring, on one line."""
    paragraph = (paragraph_source or "").strip().split("\n\n")[0]
    return " ".join(part.strip() for part in paragraph.splitlines()).strip()


def _registry_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to the registries by ``from gvae_bench.registry import METRICS [as M]``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "gvae_bench.registry":
            for alias in node.names:
                if alias.name in _REGISTRY_NAMES:
                    aliases[alias.asname or alias.name] = _REGISTRY_NAMES[alias.name]
    return aliases


def _register_call(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The kind when ``node`` is a call ``<REGISTRY>.register(...)``, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register":
        target = node.func.value
        if isinstance(target, ast.Name) and target.id in aliases:
            return aliases[target.id]
        if isinstance(target, ast.Attribute) and target.attr in _REGISTRY_NAMES:  # registry.METRICS.register
            return _REGISTRY_NAMES[target.attr]
    return None


def read_module(source: str, module: str) -> list[IndexEntry]:
    """The registrations of one plugin module's source; ``UnreadableRegistration`` when it registers
    anything other than by a top-level class decorator with literal arguments."""
    tree = ast.parse(source)
    aliases = _registry_aliases(tree)
    found: list[IndexEntry] = []
    readable: set[int] = set()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            kind = _register_call(decorator, aliases)
            if kind is None:
                continue
            args = decorator.args
            keywords = {k.arg: k.value for k in decorator.keywords}
            if (not args or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str)
                    or len(args) > 2 or set(keywords) - {"description"}):
                raise UnreadableRegistration(f"{module}: {ast.unparse(decorator)}")
            given = args[1] if len(args) == 2 else keywords.get("description")
            if given is not None and not (isinstance(given, ast.Constant) and isinstance(given.value, (str, type(None)))):
                raise UnreadableRegistration(f"{module}: {ast.unparse(decorator)}")
            text = given.value if given is not None else None
            description = text.strip() if text else _description(ast.get_docstring(node, clean=False) or "")
            found.append(IndexEntry(kind, args[0].value, module, node.name, description))
            readable.add(id(decorator))
    for node in ast.walk(tree):  # any other register call: a form this reader does not follow
        if _register_call(node, aliases) is not None and id(node) not in readable:
            raise UnreadableRegistration(f"{module}: {ast.unparse(node)}")
    return found


def _package_paths(package: str) -> list[str]:
    """The folders of a plugin package, found without importing the package itself."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UnreadableRegistration(f"package {package} not found")
    return list(spec.submodule_search_locations)


def builtin_index() -> dict[str, list[IndexEntry]]:
    """Every built-in registration, by kind, sorted by name (as ``Registry.entries`` yields them);
    ``UnreadableRegistration`` when a module cannot be read statically."""
    index: dict[str, list[IndexEntry]] = {kind: [] for kind in KINDS}
    for kind, package in _PACKAGES.items():
        for info in pkgutil.iter_modules(_package_paths(package)):
            if info.name.startswith("_"):
                continue
            module = f"{package}.{info.name}"
            if info.ispkg:
                raise UnreadableRegistration(f"{module} is a package")
            path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[union-attr]
            if not path.is_file():
                raise UnreadableRegistration(f"{module}: no source file {path}")
            for entry in read_module(path.read_text(encoding="utf-8"), module):
                index[entry.kind].append(entry)
    for entries in index.values():
        entries.sort(key=lambda entry: entry.name)
    return index


def _outside_plugins_declared() -> bool:
    """Whether an installed package declares plugins under the entry-point groups."""
    return any(entry_points(group=_PACKAGES[kind]) for kind in KINDS)


def _imports_needed() -> bool:
    """Whether only importing the plugins gives the true registry: plugins already imported (their
    registry is then the answer) or outside plugins declared."""
    registry = sys.modules.get("gvae_bench.registry")
    return bool(registry is not None and getattr(registry, "_loaded", False)) or _outside_plugins_declared()


def listing() -> dict[str, list[tuple[str, str]]]:
    """(name, description) of every registered model, benchmark and metric, by kind and sorted by
    name: from the source when that suffices, else from the imported registries."""
    if not _imports_needed():
        try:
            return {kind: [(e.name, e.description) for e in entries] for kind, entries in builtin_index().items()}
        except UnreadableRegistration:
            pass
    from gvae_bench.registry import BENCHMARKS, METRICS, MODELS

    registries = {"models": MODELS, "benchmarks": BENCHMARKS, "metrics": METRICS}
    return {kind: [(e.name, e.description) for e in registries[kind].entries()] for kind in KINDS}

