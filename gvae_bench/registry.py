"""Name -> plugin registries for models, benchmarks and metrics.

Plugins register themselves with a decorator (``@MODELS.register("vae")``), in the style of
lm-evaluation-harness; the runner resolves names through these registries and never imports a
concrete plugin. Built-in plugins are every public module of the packages ``gvae_bench.models``,
``gvae_bench.benchmarks`` and ``gvae_bench.metrics``; outside ones come from the entry-point groups
of the same names or from files passed with ``--plugin``.

A registry checks what it is given against its contract (``gvae_bench.contracts``): a model must be
a concrete ``GenerativeModel`` whose ``Config`` is a ``ModelConfig``, a benchmark a concrete
``Benchmark``, a metric a concrete ``Metric``; anything else is a ``PluginError`` naming the class
and the module it came from.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import pkgutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, entry_points, packages_distributions, version
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

from gvae_bench.contracts.benchmark import Benchmark, BenchmarkConfig
from gvae_bench.contracts.metric import Metric
from gvae_bench.contracts.model import GenerativeModel, ModelConfig
from gvae_bench.errors import PluginError, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PluginOrigin:
    """Where an outside plugin's code came from: its module, the file (and, for an installed
    package, the distribution and version) and the SHA-256 of the module's source file."""

    module: str
    path: str
    sha256: str
    package: str | None = None

    def identity(self) -> dict[str, str]:
        """What makes a run's results this code's: the module and its source hash (not its path)."""
        return {"module": self.module, "sha256": self.sha256}

    def to_dict(self) -> dict[str, str | None]:
        return {"module": self.module, "path": self.path, "sha256": self.sha256, "package": self.package}


def plugin_origin(obj: object) -> PluginOrigin | None:
    """The origin of an outside plugin class; None for the harness's own (``gvae_bench.*``), whose
    code the run record's commit already names."""
    module = getattr(obj, "__module__", "") or ""
    if module == "gvae_bench" or module.startswith("gvae_bench."):
        return None
    source = getattr(sys.modules.get(module), "__file__", None)
    if source is None or not Path(source).is_file():
        return PluginOrigin(module=module, path=str(source), sha256="unknown")
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    package = None
    top = module.split(".")[0]
    distributions = packages_distributions().get(top)
    if distributions:
        try:
            package = f"{distributions[0]}=={version(distributions[0])}"
        except PackageNotFoundError:
            package = distributions[0]
    return PluginOrigin(module=module, path=str(Path(source).resolve()), sha256=digest, package=package)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plugin: its name, the object (a class), a one-line description and, for an
    outside plugin, where its code came from."""

    name: str
    obj: T
    description: str
    origin: PluginOrigin | None = None


class Registry(Generic[T]):
    """A mapping from names to plugin classes of one kind ("model", "benchmark" or "metric"), each
    a concrete subclass of ``contract`` (and, where the kind has one, whose ``Config`` is a subclass
    of ``config_contract``)."""

    def __init__(self, kind: str, contract: type, config_contract: type | None = None) -> None:
        self.kind = kind
        self.contract = contract
        self.config_contract = config_contract
        self._entries: dict[str, Entry[T]] = {}

    def check(self, name: str, obj: object) -> None:
        """Raise ``PluginError`` unless ``obj`` implements this registry's contract."""
        module = getattr(obj, "__module__", "?")
        source = getattr(sys.modules.get(module), "__file__", None)
        where = f"{module}.{getattr(obj, '__name__', obj)}" + (f" in {source}" if source else "")
        contract = f"{self.contract.__module__}.{self.contract.__name__}"
        if not (inspect.isclass(obj) and issubclass(obj, self.contract)):
            raise PluginError(f"{self.kind} {name!r} ({where}) is not a subclass of {contract}; "
                              f"a {self.kind} plugin subclasses it")
        abstract = sorted(getattr(obj, "__abstractmethods__", ()))
        if abstract:
            raise PluginError(f"{self.kind} {name!r} ({where}) does not implement {', '.join(abstract)} "
                              f"of {contract}")
        if self.config_contract is not None:
            config = getattr(obj, "Config", None)
            if not (inspect.isclass(config) and issubclass(config, self.config_contract)):
                raise PluginError(f"{self.kind} {name!r} ({where}): its Config must be a dataclass subclassing "
                                  f"{self.config_contract.__module__}.{self.config_contract.__name__}, got {config!r}")

    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Class decorator: register ``obj`` under ``name``.

        The description defaults to the first paragraph of the class docstring, on one line.
        """

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                existing = self._entries[name].obj
                raise PluginError(
                    f"{self.kind} name {name!r} is registered twice: by "
                    f"{getattr(existing, '__module__', existing)} and {getattr(obj, '__module__', obj)}; "
                    "rename one of them"
                )
            self.check(name, obj)
            paragraph = (obj.__doc__ or "").strip().split("\n\n")[0]
            line = description or " ".join(part.strip() for part in paragraph.splitlines())
            setattr(obj, "registered_name", name)
            self._entries[name] = Entry(name=name, obj=obj, description=line.strip(), origin=plugin_origin(obj))
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The plugin registered as ``name``; a ``UserError`` listing the valid names otherwise."""
        load_plugins()
        try:
            return self._entries[name].obj
        except KeyError:
            raise UserError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names())}"
            ) from None

    def entry(self, name: str) -> Entry[T]:
        """The registry entry of ``name`` (as ``get``, with the description and origin)."""
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        load_plugins()
        for name in sorted(self._entries):
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries


MODELS: Registry = Registry("model", GenerativeModel, ModelConfig)
BENCHMARKS: Registry = Registry("benchmark", Benchmark, BenchmarkConfig)
METRICS: Registry = Registry("metric", Metric)

_BUILTIN_PACKAGES = ("gvae_bench.models", "gvae_bench.benchmarks", "gvae_bench.metrics")
_ENTRY_POINT_GROUPS = ("gvae_bench.models", "gvae_bench.benchmarks", "gvae_bench.metrics")
_loaded = False


def load_plugins() -> None:
    """Import every built-in plugin module and every installed entry point, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in _BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
    for group in _ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not take the built-ins down
                log.error("plugin %s (entry point %s in %s) failed to import: %s", ep.name, ep.value, group, exc)


def load_plugin_file(path: Path) -> None:
    """Import a plugin from a Python file; its decorators register what it defines."""
    load_plugins()
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"plugin file {path} does not exist; pass the path of a .py file")
    module_name = f"gvae_bench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path} cannot be imported; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
