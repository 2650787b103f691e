"""The Ray executor: each run of a sweep is one Ray task with declared resources (CPUs, and one GPU on
``cuda``), on a Ray instance started on this machine or on a cluster joined by address. Ray is an
optional extra (``pip install 'gvae-bench[ray]'``); see ``docs/scaling.md``."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Iterator

from gvae_bench.errors import UserError
from gvae_bench.execution.executor_options import ExecutorOptions
from gvae_bench.execution.records import Outcome, RunRecord
from gvae_bench.execution.run import execute_run, record_lost_run
from gvae_bench.execution.runs import ResolvedRun, RunSpec, resolve, spec_of

log = logging.getLogger(__name__)

RAY_EXTRA_HINT = "install it with pip install 'gvae-bench[ray]' (or pip install 'ray>=2.60')"
_CANCEL_GRACE_SECONDS = 5.0
_INTERRUPT_GRACE_SECONDS = 15.0  # after Ctrl-C, how long the driver may take to stop before it is ended
_WAIT_POLL_SECONDS = 0.5
_FORWARDED_ENV_PREFIX = "GVAE_BENCH_"
_loaded_plugin_files: set[str] = set()


def _ray_task(spec: RunSpec, threads: int, plugins: tuple[str, ...], log_level: int) -> tuple[str, Any]:
    """The body of one Ray task: one run, on a Ray worker.

    Sets torch's thread count first: a Ray worker's default (its OMP_NUM_THREADS, fixed when the
    worker process started and reused across tasks) says nothing about this run, and CPU sums
    depend on the thread count. The run's own config (``train.threads``) still wins where it pins
    one (``execute_run`` applies it). Returns ``("record", record)`` or, for bad input that stops
    the sweep, ``("user_error", message)``.
    """
    import torch

    from gvae_bench.registry import load_plugin_file

    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(log_level)
    torch.set_num_threads(threads)
    try:
        for path in plugins:
            if path not in _loaded_plugin_files:  # a worker process serves many tasks; load each file once
                load_plugin_file(Path(path))
                _loaded_plugin_files.add(path)
        return "record", execute_run(spec)
    except UserError as exc:
        return "user_error", str(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_address_answers(address: str, timeout: float = 5.0) -> None:
    """A quick TCP look at HOST:PORT, so that an address where nothing listens is a one-line error
    instead of Ray's minutes of reconnecting."""
    target = address.removeprefix("ray://")
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UserError(f"--ray-address takes auto or HOST:PORT (e.g. 10.0.0.5:6379); got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout):
            pass
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one there with "
                        "`ray start --head`, or leave out --ray-address to run Ray on this machine") from None


class RayExecutor:
    """Each run is one Ray task with declared resources; the driver (this process) only waits.

    Without an address Ray starts on this machine for the sweep and stops after it; with ``auto``
    or ``HOST:PORT`` the sweep joins that cluster (``out`` and the data root must then be storage
    every node sees). Each task declares its CPUs, and one GPU when the run's device is CUDA, and
    sets torch's thread count before the run starts (see ``resources``), so a run computes the
    same sums whichever executor and worker process runs it.
    """

    progress_bar = True

    def __init__(self, options: ExecutorOptions = ExecutorOptions()) -> None:
        try:
            import ray  # noqa: F401  (an optional extra)
        except ImportError:
            raise UserError(f"--executor ray needs Ray, which is not installed; {RAY_EXTRA_HINT}") from None
        if options.cpus_per_run is not None and options.cpus_per_run <= 0:
            raise UserError(f"--cpus-per-run takes a positive number, e.g. 1 or 0.5; got {options.cpus_per_run}")
        self.options = options
        self._owns_instance = False
        self._connected = False
        self._entered = False
        self._pending: dict[Any, RunSpec] = {}
        self._submitted, self._yielded = 0, 0
        self._watchdog = None

    @classmethod
    def from_options(cls, options: ExecutorOptions) -> "RayExecutor":
        return cls(options)

    # lifecycle

    def __enter__(self) -> "RayExecutor":
        from gvae_bench.execution.interrupt import InterruptWatchdog

        self._entered = True
        self._watchdog = InterruptWatchdog(_INTERRUPT_GRACE_SECONDS, lambda: (
            f"interrupted after {self._yielded} of {self._submitted} run(s); finished runs are kept, and the same "
            "command resumes the rest (Ray did not stop in time)"))
        self._watchdog.start()
        self._connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _connect(self) -> None:
        """Start Ray on this machine, or join the cluster at ``options.address``; UserError if none answers."""
        import ray

        if self._connected:
            return
        if ray.is_initialized():  # the caller (a notebook, a script) already holds a Ray connection: use it
            self._connected = True
            return
        address = self.options.address
        verbose = logging.getLogger("gvae_bench").getEffectiveLevel() <= logging.INFO
        common = dict(include_dashboard=False, logging_level=logging.INFO if verbose else logging.ERROR,
                      log_to_driver=True)
        if address is None:
            log.info("starting Ray on this machine")
            try:
                ray.init(address="local", **common)
            except Exception as exc:
                raise UserError(f"Ray could not start on this machine: {_first_line(exc)}") from None
            self._owns_instance = True
        else:
            if address != "auto":
                _check_address_answers(address)
            env = {key: value for key, value in os.environ.items() if key.startswith(_FORWARDED_ENV_PREFIX)}
            log.info("joining the Ray cluster at %s", address)
            try:
                ray.init(address=address, runtime_env={"env_vars": env} if env else None, **common)
            except Exception as exc:
                raise UserError(f"no Ray cluster to join at --ray-address {address}: {_first_line(exc)}") from None
        self._connected = True

    def close(self) -> None:
        """Cancel the runs still outstanding (they keep their last checkpoint; finished records are not
        touched) and shut down a Ray instance this executor started."""
        import ray

        if self._pending and ray.is_initialized():
            refs = list(self._pending)
            log.warning("cancelling %d outstanding run(s)", len(refs))
            for ref in refs:
                try:
                    ray.cancel(ref, recursive=True)
                except Exception as exc:  # already done, or the cluster went away
                    log.info("cancel: %s", _first_line(exc))
            try:  # let the cancelled runs leave their files tidy, but not for long
                ray.wait(refs, num_returns=len(refs), timeout=_CANCEL_GRACE_SECONDS)
            except Exception as exc:
                log.info("waiting for cancelled runs: %s", _first_line(exc))
        self._pending.clear()
        if self._owns_instance and ray.is_initialized():
            ray.shutdown()
        self._owns_instance = False
        self._connected = False
        if getattr(self, "_watchdog", None) is not None:
            self._watchdog.stop()

    # running

    def resources(self, spec: RunSpec, default_threads: int, largest_node_cpus: float | None = None,
                  ) -> tuple[int, float, float]:
        """``(threads, cpus, gpus)`` of one run.

        Threads: the run's ``train.threads`` where its config pins it, else ``--cpus-per-run``
        (rounded down, at least 1), else ``default_threads`` (what a local run would use). CPUs
        declared: ``--cpus-per-run``, else the threads. GPUs: one on CUDA. Without
        ``--cpus-per-run``, neither exceeds ``largest_node_cpus`` (e.g. a container whose CPU quota
        is below the cores torch counts), so the default never asks for more than a node has.
        """

        pinned = resolve(spec).train.threads
        cpus = self.options.cpus_per_run
        if cpus is None and largest_node_cpus is not None and largest_node_cpus >= 1:
            default_threads = min(default_threads, math.floor(largest_node_cpus))
        threads = pinned or (max(1, math.floor(cpus)) if cpus is not None else default_threads)
        if cpus is None:
            cpus = float(threads if largest_node_cpus is None else min(threads, largest_node_cpus))
        gpus = 1.0 if str(spec.device).startswith("cuda") else 0.0
        return threads, float(cpus), gpus

    def _largest_node_cpus(self) -> float | None:
        import ray

        cpus = [node.get("Resources", {}).get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
        return max(cpus) if cpus else None

    def check_feasible(self, needs: set[tuple[float, float]]) -> None:
        """Refuse runs no node can ever hold (on this machine), or warn (on a cluster an autoscaler may grow)."""
        import ray

        nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        for cpus, gpus in sorted(needs):
            if any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
                continue
            offered = ", ".join(f"{node.get('CPU', 0):g} CPU / {node.get('GPU', 0):g} GPU" for node in nodes) or "none"
            what = f"{cpus:g} CPU(s)" + (f" and {gpus:g} GPU" if gpus else "")
            message = (f"no Ray node offers {what} for one run (nodes: {offered}); "
                       "lower --cpus-per-run, or use --device cpu where no GPU is")
            if self._owns_instance:
                raise UserError(message)
            log.warning("%s; the runs wait until the cluster grows", message)

    def run(self, specs: Iterable[RunSpec | ResolvedRun]) -> Iterator[tuple[RunRecord, Outcome]]:
        """Submit every run as a Ray task now (a run no node can hold is a ``UserError`` here, before
        anything runs) and return an iterator of their records in completion order."""
        import ray
        import torch

        try:
            self._connect()
            specs = [dataclasses.replace(spec, out=Path(spec.out).absolute(), data_root=Path(spec.data_root).absolute())
                     for spec in map(spec_of, specs)]  # each task resolves its run on its node
            default_threads = torch.get_num_threads()  # what a local run in this process would use
            largest = self._largest_node_cpus()
            plan = [(spec, *self.resources(spec, default_threads, largest)) for spec in specs]
            self.check_feasible({(cpus, gpus) for _, _, cpus, gpus in plan})
            task = ray.remote(max_retries=0)(_ray_task)
            plugins = tuple(str(Path(path).absolute()) for path in self.options.plugins)
            log_level = logging.getLogger("gvae_bench").getEffectiveLevel()
            for spec, threads, cpus, gpus in plan:
                ref = task.options(name="gvae_run", num_cpus=cpus, num_gpus=gpus).remote(spec, threads, plugins, log_level)
                self._pending[ref] = spec
            self._submitted, self._yielded = len(plan), 0
        except BaseException:
            if not self._entered:
                self.close()
            raise
        return self._results()

    def _results(self) -> Iterator[tuple[RunRecord, Outcome]]:
        """Wait for the submitted tasks and yield each record as its task completes."""
        import ray

        try:
            while self._pending:
                done, _ = ray.wait(list(self._pending), num_returns=1, timeout=_WAIT_POLL_SECONDS)
                for ref in done:
                    spec = self._pending.pop(ref)
                    self._yielded += 1
                    yield self._collect(ref, spec)
        finally:
            if not self._entered:
                self.close()

    def _collect(self, ref: Any, spec: RunSpec) -> tuple[RunRecord, Outcome]:
        """The record of a completed task; a task that died without one is recorded as failed."""
        import ray

        try:
            kind, value = ray.get(ref)
        except (ray.exceptions.TaskCancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the worker died (out of memory, a crash in native code, a lost node)
            return record_lost_run(spec, f"the Ray task died: {type(exc).__name__}: {_first_line(exc)}")
        if kind == "user_error":
            raise UserError(value)
        return value
