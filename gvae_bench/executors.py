"""Executors: how a sweep's independent runs are carried out.

The runner turns the command line into a list of ``RunSpec`` and hands it to an executor. A run
writes only its own folder, so any executor may run them in any order and the leaderboard comes
out the same. ``local`` runs them one after another in this process; more (e.g. Ray) register
here under their own names.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Protocol

from gvae_bench.errors import UserError
from gvae_bench.run import execute_run
from gvae_bench.runs import RunSpec


class Executor(Protocol):
    def run(self, specs: list[RunSpec]) -> Iterator[dict[str, Any]]:
        """Execute ``specs``, yielding each run's record as it completes."""


class LocalExecutor:
    """One run after another in this process (the default)."""

    def __init__(self, run_fn: Callable[[RunSpec], dict[str, Any]] = execute_run) -> None:
        self.run_fn = run_fn

    def run(self, specs: Iterable[RunSpec]) -> Iterator[dict[str, Any]]:
        for spec in specs:
            yield self.run_fn(spec)


EXECUTORS: dict[str, Callable[[], Executor]] = {"local": LocalExecutor}


def get_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    return EXECUTORS[name]()
