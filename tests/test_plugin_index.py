"""The command line starts at once: names and descriptions read from source match the imported
registry, and `--help`, `list` and a bad-input error import none of the heavy libraries."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from gvae_bench.cli.plugin_index import UnreadableRegistration, builtin_index, listing, read_module
from tests.conftest import REPO

#: what `--help`, `list` and a bad-input error must not import (seconds of import time between them)
HEAVY = ("torch", "torchvision", "ray", "SimpleITK", "pydicom", "nibabel", "radiomics", "pandas", "scipy", "optuna",
         "matplotlib")


def _builtin_entries(registry) -> list:
    """The registry's built-in entries: other test modules of this process may have registered their own."""
    return [e for e in registry.entries() if e.obj.__module__.startswith("gvae_bench.")]


def test_the_static_index_is_the_imported_registry():
    """Every built-in registration: the same names, descriptions, modules and classes as importing them gives."""
    from gvae_bench.registry import BENCHMARKS, METRICS, MODELS

    index = builtin_index()
    for kind, registry in (("models", MODELS), ("benchmarks", BENCHMARKS), ("metrics", METRICS)):
        imported = [(e.name, e.description, e.obj.__module__, e.obj.__qualname__) for e in _builtin_entries(registry)]
        read = [(e.name, e.description, e.module, e.qualname) for e in index[kind]]
        assert read == imported, kind


def test_read_module_takes_the_decorator_and_the_docstring_as_register_does():
    source = '''
from gvae_bench.registry import METRICS as M, MODELS

@MODELS.register("plain")
class Plain:
    """First line
    goes on.

    Second paragraph."""

@M.register("given", description="Said outright.")
class Given:
    """Not this."""

@MODELS.register("bare")
class Bare:
    pass
'''
    entries = read_module(source, "x.y")
    assert [(e.kind, e.name, e.qualname, e.description) for e in entries] == [
        ("models", "plain", "Plain", "First line goes on."),
        ("metrics", "given", "Given", "Said outright."),
        ("models", "bare", "Bare", ""),
    ]


@pytest.mark.parametrize("source", [
    "from gvae_bench.registry import MODELS\nNAME = 'a'\n@MODELS.register(NAME)\nclass A: pass\n",
    "from gvae_bench.registry import MODELS\nclass A: pass\nMODELS.register('a')(A)\n",
    "from gvae_bench.registry import MODELS\ndef make():\n    @MODELS.register('a')\n    class A: pass\n",
    "from gvae_bench.registry import MODELS\nD = 'x'\n@MODELS.register('a', description=D)\nclass A: pass\n",
])
def test_registrations_the_reader_cannot_follow_are_refused(source):
    with pytest.raises(UnreadableRegistration):
        read_module(source, "x.y")


def test_listing_uses_the_imported_registry_once_plugins_are_loaded(monkeypatch):
    """After a --plugin file is imported, its names are listed too: the listing is then the registry's."""
    import gvae_bench.registry as registry

    monkeypatch.setattr(registry, "_loaded", True)
    monkeypatch.setattr(registry, "load_plugins", lambda: None)
    fake = registry.Entry(name="zz_fake", obj=object, description="only in the registry")
    monkeypatch.setitem(registry.MODELS._entries, "zz_fake", fake)
    assert ("zz_fake", "only in the registry") in listing()["models"]


def _imported(args: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run runner.py ARGS in a fresh interpreter under -X importtime; the top-level packages it imported."""
    env = {**os.environ, "GVAE_BENCH_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-X", "importtime", str(REPO / "runner.py"), *args], cwd=REPO,
                            capture_output=True, text=True, env=env, timeout=300)
    names = set()
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", line)
        if match:
            names.add(match.group(1).split(".")[0])
    return result, names


@pytest.mark.subprocess
@pytest.mark.parametrize("args", [["--help"], ["list"], ["--models", "gan9000", "--dataset", "ring8"],
                                  ["--models", "vae", "--dataset", "ring8", "--seeds", "x"]])
def test_help_list_and_bad_input_import_no_heavy_library(args):
    result, names = _imported(args)
    assert result.returncode in (0, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "gvae_bench" in names and "click" in names  # the parse saw the imports
    heavy = sorted(set(HEAVY) & names)
    assert not heavy, f"runner.py {' '.join(args)} imported {heavy}"


@pytest.mark.subprocess
def test_list_prints_what_the_registry_holds():
    """`runner.py list` from source says what importing every plugin would: each name and description."""
    from gvae_bench.registry import BENCHMARKS, METRICS, MODELS

    result, _ = _imported(["list"])
    assert result.returncode == 0, result.stderr[-2000:]
    expected = []
    for title, registry in (("models", MODELS), ("benchmarks", BENCHMARKS), ("metrics", METRICS)):
        expected.append(f"{title}:")
        expected += [f"  {e.name:<16} {e.description}" for e in _builtin_entries(registry)]
    lines = result.stdout.splitlines()
    assert lines[:len(expected)] == expected
    assert lines[len(expected)] == "profiles:"
