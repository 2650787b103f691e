"""What an executor is given (``ExecutorOptions``) and what it must do (``Executor``); the executors
themselves are ``LocalExecutor`` (``executors``) and ``RayExecutor`` (``ray_executor``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import TracebackType
from typing import Iterator, Protocol

from gvae_bench.execution.records import Outcome, RunRecord
from gvae_bench.execution.runs import RunSpec


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """What the command line says about execution, beyond the executor's name.

    ``address``: a Ray cluster to join (``auto`` or ``HOST:PORT``); None starts Ray on this machine.
    ``cpus_per_run``: CPUs each run declares (None: as many as the threads it uses).
    ``plugins``: plugin files given with ``--plugin``, loaded again wherever a run executes.
    """

    address: str | None = None
    cpus_per_run: float | None = None
    plugins: tuple[Path, ...] = ()
    #: local executor: runs at once, each in a process of its own (None: one per CPU); 1: one after
    #: another in this process
    workers: int | None = 1


class Executor(Protocol):
    """Runs a sweep's runs and yields their records. ``progress_bar`` says whether the driver should
    draw one overall bar (True where runs work out of sight, e.g. on Ray workers)."""

    progress_bar: bool

    def __enter__(self) -> "Executor": ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def run(self, specs: list[RunSpec]) -> Iterator[tuple[RunRecord, Outcome]]:
        """Execute ``specs``, yielding each run's record and outcome as it completes."""
