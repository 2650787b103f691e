"""Parallel local runs: a sweep's independent runs in several processes on this machine.

``ParallelLocalExecutor`` runs up to ``workers`` runs at once, each in a process of its own
(``multiprocessing``'s spawn context, so a child starts from a clean interpreter), with torch's
thread count set to ``threads`` in every child before its run starts. A run writes only its own
folder, so the records and the leaderboard are those of the same runs made one after another at
the same thread count (CPU sums depend on the thread count, not on what else runs beside them).

Each child reports its training steps through a queue; ``SweepProgress`` turns them into one line
for the whole sweep: runs done, running and left, and the time left, estimated by placing the
remaining steps of every run on the workers at the seconds per step measured so far (a run not yet
measured: its model's rate in this sweep, else its configuration's recorded rate in the results
folder, made at the same torch threads, else the mean measured rate).

Ctrl-C reaches every process of the terminal's group: each child stops its run (the training loop
saves a checkpoint first) and the executor cancels the runs not yet started. A SIGINT or SIGTERM sent
to this process alone (``kill``, a scheduler, a sweep started with ``nohup … &``) is passed on to the
children as SIGINT, once; a further signal while the children are stopping does not cut that short.
A child acts on that SIGINT even when the sweep was started with SIGINT ignored (a background job of
a shell without job control, such as ``nohup … &`` in a script); the runner itself then stops on
SIGTERM, as any such job does.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import queue
import signal
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Callable, Iterable, Iterator

from gvae_bench.errors import UserError
from gvae_bench.execution.records import (RECORD_FILE, Outcome, RecordError, RunRecord, RunStatus, read_record,
                                          run_folder)
from gvae_bench.execution.runs import RunSpec
from gvae_bench.execution.training import duration_text

log = logging.getLogger(__name__)
progress_log = logging.getLogger("gvae_bench.progress")

#: seconds between two progress lines of the sweep when its output is not a terminal
PROGRESS_SECONDS = 30.0


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_threads(workers: int | None, runs: int, cpus: int | None = None) -> tuple[int, int]:
    """``(workers, threads per run)``: ``workers`` (None: as many as the CPUs, at most one per run)
    processes, sharing the CPUs equally (at least one torch thread each)."""
    cpus = cpus or available_cpus()
    if workers is not None and workers < 1:
        raise UserError(f"--workers takes a whole number of at least 1 (runs at once); got {workers}")
    count = min(workers or cpus, max(1, runs))
    return count, max(1, cpus // count)


@dataclasses.dataclass
class _RunProgress:
    label: str
    model: str
    total_steps: int
    step: int = 0
    first_step: int | None = None
    started: float | None = None
    seconds_per_step: float | None = None
    recorded_rate: float | None = None  # seconds per step of an earlier finished run of this configuration


def recorded_rate(spec: RunSpec, config_hash: str, threads: int) -> float | None:
    """Seconds per training step of the finished runs of ``spec``'s configuration (any seed) in its
    results folder that trained from step 0 at ``threads`` torch threads; None when there are none."""
    config = run_folder(spec.out, spec.benchmark, spec.model, spec.profile, config_hash, spec.seed).parent
    rates = []
    for path in sorted(config.glob(f"seed*/{RECORD_FILE}")):
        try:
            record = read_record(path.parent)
        except (OSError, RecordError):
            continue
        if (record is None or record.status != RunStatus.FINISHED or record.resumed_from_step
                or (record.environment or {}).get("torch_threads") != threads
                or not record.train_seconds or not record.steps_done):
            continue
        rates.append(record.train_seconds / record.steps_done)
    return sum(rates) / len(rates) if rates else None


def finished_before(spec: RunSpec, config_hash: str) -> bool:
    """Whether ``spec``'s run folder already holds a finished record: the sweep skips its training
    (scoring at most a metric registered since), so its steps are no work left."""
    try:
        record = read_record(run_folder(spec.out, spec.benchmark, spec.model, spec.profile, config_hash, spec.seed))
    except (OSError, RecordError):
        return False
    return record is not None and record.status == RunStatus.FINISHED


class SweepProgress:
    """Where a parallel sweep stands: runs done, running and left, and an estimate of its time left."""

    def __init__(self, entries: list[tuple[Any, ...]], workers: int) -> None:
        """``entries``: ``(label, model, steps)`` or ``(label, model, steps, recorded seconds per step)``."""
        self.runs = {entry[0]: _RunProgress(entry[0], entry[1], entry[2], recorded_rate=(entry[3:] or (None,))[0])
                     for entry in entries}
        self.workers = workers
        self.done: set[str] = set()

    def step(self, label: str, step: int, now: float) -> None:
        """``label`` has done ``step`` of its steps at time ``now`` (``time.monotonic``)."""
        run = self.runs[label]
        if run.started is None or run.first_step is None:
            run.started, run.first_step = now, step
        elif step > run.first_step:
            run.seconds_per_step = (now - run.started) / (step - run.first_step)
        run.step = step

    def finish(self, label: str) -> None:
        self.done.add(label)

    @property
    def running(self) -> list[_RunProgress]:
        return [r for r in self.runs.values() if r.started is not None and r.label not in self.done]

    @property
    def waiting(self) -> list[_RunProgress]:
        return [r for r in self.runs.values() if r.started is None and r.label not in self.done]

    def _rate(self, run: _RunProgress) -> float | None:
        if run.seconds_per_step is not None:
            return run.seconds_per_step
        rates = [r.seconds_per_step for r in self.runs.values() if r.seconds_per_step is not None]
        same = [r.seconds_per_step for r in self.runs.values() if r.model == run.model and r.seconds_per_step is not None]
        if same:
            return sum(same) / len(same)
        if run.recorded_rate is not None:
            return run.recorded_rate
        return (sum(rates) / len(rates)) if rates else None

    def seconds_left(self) -> float:
        """The sweep's time left: each running run's remaining steps at its measured rate, then the
        waiting runs placed in order on the first worker to come free (at their model's measured
        seconds per step, else their configuration's recorded rate, else the mean of all measured);
        NaN while a run has no rate to go by."""
        free = []
        for run in self.running:
            rate = self._rate(run)
            if rate is None:
                return float("nan")
            free.append(rate * max(0, run.total_steps - run.step))
        free += [0.0] * max(0, self.workers - len(free))
        free.sort()
        for run in self.waiting:
            rate = self._rate(run)
            if rate is None:
                return float("nan")
            free[0] += rate * run.total_steps
            free.sort()
        return max(free) if free else 0.0

    def line(self) -> str:
        """One line: ``runs: 1 done, 2 running, 2 waiting; about 41m00s left for the sweep``; the time left
        counts training steps (a run's evaluation after its last step is not in it)."""
        left = len(self.runs) - len(self.done) - len(self.running)
        evaluating = sum(1 for r in self.running if r.step >= r.total_steps)
        seconds = self.seconds_left()
        eta = "time left not yet measured" if not math.isfinite(seconds) else f"about {duration_text(seconds)} left for the sweep"
        scoring = f" ({evaluating} being scored, not counted)" if evaluating else ""
        return f"runs: {len(self.done)} done, {len(self.running)} running, {left} waiting; {eta}{scoring}"


# --- the child processes ------------------------------------------------------------------------

#: how long a stopping sweep waits for a child to save its checkpoint and leave before ending it
STOP_GRACE_SECONDS = 120.0


def _child_main(spec: RunSpec, label: str, threads: int, plugins: tuple[str, ...], log_level: int,
                messages: Any) -> None:
    """One run in a child process of its own: torch threads, the parent's log level, plugins, no
    terminal bar; its steps and then its outcome go to ``messages``: ``("step", label, step, time)``
    and ``("result", label, kind, value)`` with kind ``record``, ``user_error`` or ``interrupted``."""
    import torch

    from gvae_bench.execution import training
    from gvae_bench.execution.run import execute_run
    from gvae_bench.registry import load_plugin_file, load_plugins

    os.environ["TQDM_DISABLE"] = "1"  # one overall line in the parent instead of a bar per child
    # SIGINT is the parent's request to save and stop: act on it even where the sweep was started with it
    # ignored (a background job of a shell without job control, as `nohup … &` in a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(log_level)
    logging.getLogger("gvae_bench.progress").setLevel(logging.WARNING)
    torch.set_num_threads(threads)
    last = [0.0]

    def listener(description: str, step: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or step == total:
            last[0] = now
            messages.put(("step", label, step, now))

    training.add_step_listener(listener)
    try:
        load_plugins()
        for path in plugins:
            load_plugin_file(Path(path))
        outcome: tuple[str, Any] = ("record", execute_run(spec))
    except UserError as exc:
        outcome = ("user_error", str(exc))
    except KeyboardInterrupt:
        outcome = ("interrupted", None)
    messages.put(("result", label, *outcome))


def ctrl_c_reached_the_group() -> bool:
    """Whether a SIGINT here is the terminal's Ctrl-C, which reaches the children too: this process's
    group is the foreground group of the terminal on its standard input. False without a terminal
    (``nohup … &``, a scheduler, a test harness), where a SIGINT came from ``kill`` to this process."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        return f"its process was ended by {name} (killed, or out of memory) before it finished"
    return f"its process exited with status {exitcode} before it finished"


class ParallelLocalExecutor:
    """Up to ``workers`` runs at once, each in a child process of its own started for it (spawn),
    ``threads`` torch threads each; one progress line for the sweep (``on_progress``). A child that
    dies without reporting (SIGKILL, out of memory) has its run recorded as failed, and the sweep
    goes on with the others."""

    progress_bar = True

    def __init__(self, workers: int, threads: int, plugins: tuple[Path, ...] = ()) -> None:
        self.workers, self.threads, self.plugins = workers, threads, plugins
        self.on_progress: Callable[[SweepProgress], None] | None = None
        self.progress: SweepProgress | None = None
        self._running: dict[str, tuple[Any, RunSpec]] = {}
        self._outcomes: dict[str, tuple[str, Any]] = {}
        self._messages: Any = None
        self._stopping = False
        self._passed_on = False
        self._told: set[int] = set()  # the children sent their SIGINT
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> "ParallelLocalExecutor":
        self._old_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_stop_signal)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored SIGINT stays ignored
            self._old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_stop_signal)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.close(cause=exc_type)
        finally:
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            self._old_handlers.clear()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        """A SIGTERM, or a SIGINT that is not the terminal's Ctrl-C (which reaches the children itself),
        is passed on to the children at once; the first such signal stops the sweep (KeyboardInterrupt),
        and a later one, while the children save and stop, does not cut that short."""
        if signum == signal.SIGTERM or not ctrl_c_reached_the_group():
            self._pass_on()
        if not self._stopping:
            self._stopping = True
            raise KeyboardInterrupt

    def _pass_on(self) -> None:
        """Send SIGINT to each child alive and not yet sent one: each saves at its next step boundary and
        stops (a second SIGINT would make a child stop at once, without saving)."""
        self._passed_on = True
        for process, _ in list(self._running.values()):
            if process.pid is not None and process.pid not in self._told and process.is_alive():
                self._told.add(process.pid)
                os.kill(process.pid, signal.SIGINT)

    def close(self, cause: type[BaseException] | None = None) -> None:
        """Let the running children leave, and end any still there after ``STOP_GRACE_SECONDS``.

        When the sweep stops early (``cause``, the exception that stops it: a signal, a child's error),
        the children are sent one SIGINT unless the terminal's Ctrl-C has reached them itself."""
        self._stopping = True
        from_terminal = cause is not None and issubclass(cause, KeyboardInterrupt) and ctrl_c_reached_the_group()
        if self._passed_on or (cause is not None and not from_terminal):
            self._pass_on()  # (again: a child that started as the signal came)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for label, (process, _) in list(self._running.items()):
            while process.is_alive() and time.monotonic() < deadline:
                self._drain(timeout=0.2)  # a child leaves only once what it queued is read
                process.join(timeout=0.1)
            if process.is_alive():
                log.warning("%s did not stop within %.0f s; ending it", label, STOP_GRACE_SECONDS)
                process.kill()
                process.join()
        self._running.clear()

    def run(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunRecord, Outcome]]:
        from gvae_bench.execution.runs import resolve

        specs = [dataclasses.replace(spec, out=Path(spec.out).absolute(), data_root=Path(spec.data_root).absolute())
                 for spec in specs]
        labels = [f"{spec.model} seed {spec.seed} ({index})" for index, spec in enumerate(specs)]
        resolved = [resolve(spec) for spec in specs]
        self.progress = SweepProgress([(label, spec.model, run.train.steps, recorded_rate(spec, run.config_hash, self.threads))
                                       for label, spec, run in zip(labels, specs, resolved)], self.workers)
        for label, spec, run in zip(labels, specs, resolved):
            if finished_before(spec, run.config_hash):  # a resumed sweep: counted done, not waiting
                self.progress.finish(label)
        return self._results(list(zip(labels, specs)))

    def _start(self, label: str, spec: RunSpec) -> None:
        context = multiprocessing.get_context("spawn")
        if self._messages is None:
            self._messages = context.Queue()
        log_level = logging.getLogger("gvae_bench").getEffectiveLevel()
        plugins = tuple(str(Path(p).absolute()) for p in self.plugins)
        process = context.Process(target=_child_main, name=f"gvae-bench run {label}",
                                  args=(spec, label, self.threads, plugins, log_level, self._messages))
        self._running[label] = (process, spec)  # before it starts: a stop signal from here on reaches it
        process.start()

    def _results(self, waiting: list[tuple[str, RunSpec]]) -> Iterator[tuple[RunRecord, Outcome]]:
        last_line = 0.0
        while waiting or self._running:
            while waiting and len(self._running) < self.workers:
                self._start(*waiting.pop(0))
            self._drain(timeout=0.5)
            if self.progress is not None:
                if self.on_progress is not None:
                    self.on_progress(self.progress)
                if time.monotonic() - last_line >= PROGRESS_SECONDS:
                    last_line = time.monotonic()
                    progress_log.info("%s", self.progress.line())
            for label, (process, spec) in list(self._running.items()):
                if label not in self._outcomes and process.is_alive():
                    continue
                if label not in self._outcomes:
                    self._drain(timeout=0.2)  # what it sent before it left
                process.join()
                del self._running[label]
                kind, value = self._outcomes.pop(label, ("lost", process.exitcode))
                if self.progress is not None:
                    self.progress.finish(label)
                if kind == "user_error":
                    raise UserError(value)
                if kind == "interrupted":
                    raise KeyboardInterrupt
                if kind == "lost":
                    from gvae_bench.execution.run import record_lost_run

                    value = record_lost_run(spec, f"{_exit_reason(value)}; the same command resumes it")
                yield value

    def _drain(self, timeout: float = 0.0) -> None:
        """Read what the children sent: steps to the progress, outcomes kept for ``_results``; wait up
        to ``timeout`` for the first message."""
        if self._messages is None:
            return
        block = timeout > 0
        while True:
            try:
                message = self._messages.get(timeout=timeout) if block else self._messages.get_nowait()
            except queue.Empty:
                return
            block = False
            if message[0] == "step" and self.progress is not None:
                self.progress.step(*message[1:])
            elif message[0] == "result":
                self._outcomes[message[1]] = (message[2], message[3])
