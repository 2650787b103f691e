"""Shared fixtures: the data root (``$GVAE_BENCH_DATA``, else ../shared/data beside the repo), the command
line run in this process (``invoke_cli``) or in a fresh one (``run_cli``), and runs trained once per test
session and shared by the tests that only read them (``smoke_vae_wgan_mnist``, ``smoke_vae_ring8``)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    return Path(os.environ.get("GVAE_BENCH_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _classifier_cache(tmp_path_factory) -> None:
    """Domain classifiers trained by tests go to a temporary cache, never to the user's; under pytest-xdist
    one cache for all the workers of the test run (writes are atomic, and a cached classifier is checked
    against its SHA-256 before use), so that each classifier is trained once, not once per worker."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "classifier-cache"  # the run's folder, above the workers'
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("classifier-cache")
    os.environ["GVAE_BENCH_CACHE"] = str(folder)


@pytest.fixture(autouse=True, scope="session")
def _threads_per_worker() -> None:
    """Under pytest-xdist (``-n N``) each worker's torch threads, and its child processes', are its share
    of the CPUs, so that N workers do not each start one thread per core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    import torch

    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"no MNIST under {root}; set GVAE_BENCH_DATA to a folder holding MNIST/raw")
    return root


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts: SIGINT at its default disposition, as a
    terminal starts a command, even when the tests run with SIGINT ignored (a background job of a
    non-interactive shell inherits it ignored, and Python then installs no KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: what every command line a test starts sees: no downloads, and the runs of a sweep one after another in
#: the process that runs the sweep (tests of parallel runs give --workers themselves)
CLI_ENV = {"GVAE_BENCH_OFFLINE": "1", "GVAE_BENCH_WORKERS": "1"}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python runner.py ARGS`` in a fresh process, as a user would; returns the completed process.
    For tests of what only a separate process shows (signals, exit status, a fresh interpreter's
    imports); the others use ``invoke_cli`` (the same command line in this process, without the
    second or so of importing torch again)."""
    full_env = {**os.environ, **CLI_ENV, **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "runner.py"), *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)


@dataclass
class CliOutcome:
    """What ``invoke_cli`` gives back: the fields of ``subprocess.CompletedProcess`` the tests read."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _process_state(cwd: Path) -> Iterator[None]:
    """Put back after an in-process command what a process of its own would have thrown away: the
    working folder, the logging set-up (the command's ``logging.basicConfig`` writes to its captured
    stderr), the plugins a ``--plugin`` file registered and the plugin files it imported."""
    from gvae_bench import registry
    from gvae_bench.contracts import family

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = {name: logging.getLogger(name).level for name in ("gvae_bench", "gvae_bench.progress")}
    entries = {reg: dict(reg._entries) for reg in (registry.MODELS, registry.BENCHMARKS, registry.METRICS)}
    families = dict(family._FAMILIES)
    modules = set(sys.modules)
    before = Path.cwd()
    root.handlers = []  # so that the command's basicConfig adds its handler, on its stderr, as in a fresh process
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)
        root.handlers, root.level = handlers, level
        for name, value in loggers.items():
            logging.getLogger(name).setLevel(value)
        for reg, saved in entries.items():
            reg._entries.clear()
            reg._entries.update(saved)
        family._FAMILIES.clear()
        family._FAMILIES.update(families)
        for name in set(sys.modules) - modules:
            if name.startswith("gvae_bench_plugin_"):
                del sys.modules[name]
        with contextlib.suppress(ImportError):
            from gvae_bench.execution import ray_executor

            ray_executor._loaded_plugin_files.clear()


def invoke_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> CliOutcome:
    """Run the command line ``runner.py ARGS`` in this process (click's ``CliRunner``) with its stdout
    and stderr captured apart, the environment ``env`` on top of ``CLI_ENV`` and the working folder
    ``cwd``; the exit status is the one ``runner.py`` would give (an uncaught exception: 1, with its
    traceback on stderr, as Python prints it)."""
    from click.testing import CliRunner

    from gvae_bench import registry
    from gvae_bench.cli import cli

    registry.load_plugins()  # before the snapshot of the registries, so that only --plugin files are undone
    runner = CliRunner()
    with _process_state(cwd):
        result = runner.invoke(cli, list(args), prog_name="runner.py", env={**CLI_ENV, **(env or {})})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliOutcome(args=args, returncode=result.exit_code, stdout=result.stdout, stderr=stderr)


@dataclass(frozen=True)
class SharedSweep:
    """A sweep trained once per test session: its results folder, its arguments and what the first call printed.
    Tests that read it must not change it (copy it first to change it)."""

    out: Path
    args: tuple[str, ...]
    first: CliOutcome


@pytest.fixture(scope="session")
def smoke_vae_wgan_mnist(tmp_path_factory, data_root) -> SharedSweep:
    """``--models vae,wgan_gp --dataset mnist --profile smoke --seeds 0,1``: four runs with records,
    pictures and the MNIST leaderboards (the classifier-feature metrics included)."""
    out = tmp_path_factory.mktemp("smoke-vae-wgan-mnist") / "results"
    args = ("--models", "vae,wgan_gp", "--dataset", "mnist", "--profile", "smoke", "--seeds", "0,1",
            "--data-root", str(data_root), "--out", str(out))
    first = invoke_cli(*args)
    assert first.returncode == 0, first.stderr
    return SharedSweep(out=out, args=args, first=first)
