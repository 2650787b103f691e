"""Executors: how a sweep's independent runs are carried out.

The runner turns the command line into a list of ``RunSpec`` and hands it to an executor it looks
up by name in ``EXECUTORS``. A run writes only its own folder, so any executor may run them in any
order and the leaderboard comes out the same.

- ``local`` (the default) runs them one after another in this process, or with ``workers`` above
  one several at once in child processes (``gvae_bench.execution.parallel``).
- ``ray`` runs each as one Ray task with declared resources (CPUs, and one GPU on ``cuda``):
  on a Ray instance it starts on this machine, or on an existing cluster it joins by address.
  Ray is an optional extra (``pip install 'gvae-bench[ray]'``); see ``docs/scaling.md``.

An executor is used as a context manager (``with get_executor(name, options) as ex: ex.run(specs)``):
leaving the block, normally or by an exception such as Ctrl-C, releases what it holds (for Ray:
outstanding tasks are cancelled and a Ray instance it started is shut down). Records of runs that
finished are never touched; a cancelled run keeps its last checkpoint and resumes next time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator

from gvae_bench.errors import UserError
from gvae_bench.execution.executor_options import Executor, ExecutorOptions
from gvae_bench.execution.ray_executor import RayExecutor
from gvae_bench.execution.records import Outcome, RunRecord
from gvae_bench.execution.run import execute_run
from gvae_bench.execution.runs import ResolvedRun, RunSpec, spec_of

__all__ = ["EXECUTORS", "Executor", "ExecutorOptions", "LocalExecutor", "RayExecutor", "check_executor",
           "executor_names", "get_executor"]

log = logging.getLogger(__name__)


class LocalExecutor:
    """The runs on this machine: with one worker one after another in this process (each run shows
    its own training bar); with more, up to ``workers`` at once in child processes that share the
    CPUs (``gvae_bench.execution.parallel``), with one progress line for the sweep."""

    def __init__(self, run_fn: Callable[[RunSpec], tuple[RunRecord, Outcome]] = execute_run,
                 workers: int | None = 1, plugins: tuple[Path, ...] = ()) -> None:
        self.run_fn, self.workers, self.plugins = run_fn, workers, plugins
        self._parallel: Any = None
        self.on_progress: Callable[[Any], None] | None = None

    @property
    def progress_bar(self) -> bool:
        """True when the runs work in child processes (their training bars are not shown)."""
        return self._parallel is not None

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> "LocalExecutor":
        """The local executor takes ``workers``; cluster options given with it are a mistake."""
        given = [flag for flag, value in (("--ray-address", options.address), ("--cpus-per-run", options.cpus_per_run))
                 if value is not None]
        if given:
            raise UserError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --executor ray; the "
                            "local executor takes --workers N (runs at once on this machine)")
        return cls(workers=options.workers, plugins=options.plugins)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._parallel is not None:
            self._parallel.__exit__(exc_type, exc, tb)
            self._parallel = None

    def run(self, specs: Iterable[RunSpec | ResolvedRun]) -> Iterator[tuple[RunRecord, Outcome]]:
        from gvae_bench.execution.parallel import ParallelLocalExecutor, split_threads

        specs = list(specs)
        workers, threads = split_threads(self.workers, len(specs))
        if workers == 1:  # in this process: a resolved run from the plan is used as it is
            return (self.run_fn(spec) for spec in specs)
        specs = [spec_of(spec) for spec in specs]  # child processes resolve their own
        log.info("running up to %d runs at once, %d torch thread(s) each", workers, threads)
        self._parallel = ParallelLocalExecutor(workers, threads, self.plugins).__enter__()
        self._parallel.on_progress = lambda progress: self.on_progress and self.on_progress(progress)
        return self._parallel.run(specs)


EXECUTORS: dict[str, Callable[[ExecutorOptions], Executor]] = {
    "local": LocalExecutor.from_options,
    "ray": RayExecutor.from_options,
}


def executor_names() -> list[str]:
    """The registered executor names."""
    return list(EXECUTORS)


def check_executor(name: str) -> None:
    """A one-line error listing the registered executors when ``name`` is not one of them."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")


def get_executor(name: str, options: ExecutorOptions = ExecutorOptions()) -> Executor:
    """The executor registered as ``name``, built from ``options`` (not yet started: use it in ``with``)."""
    check_executor(name)
    return EXECUTORS[name](options)
