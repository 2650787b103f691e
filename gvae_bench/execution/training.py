"""The one training loop every model goes through.

It seeds python, numpy and torch; feeds the model batches from tensors held in memory (on the
run's device); shows a tqdm bar with the current losses; keeps a loss log; writes checkpoints
atomically every ``checkpoint_every`` steps, every ``checkpoint_seconds`` seconds (so a crash or a
SIGKILL loses at most that much), at the end, and at the step boundary after a SIGINT or SIGTERM
(which then acts: Ctrl-C ends the command with 130); resumes from the last checkpoint
(weights, optimisers, the batch stream and every RNG state, so a resumed run continues exactly as
an uninterrupted one would); stops with status ``diverged`` at the first non-finite loss; and, given
an ``Intermediate`` judge (a tuner's pruner), asks it every ``every`` steps whether to go on, stopping
with status ``pruned`` when it says no.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from gvae_bench.execution.checkpoints import CHECKPOINT_FILE, load_resume_state, rng_state, save_checkpoint, set_rng_state
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.errors import UserError
from gvae_bench.execution.interrupt import StepBoundarySignals
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.tracking import NoTracker
from gvae_bench.atomic import atomic_save, atomic_write_text

log = logging.getLogger(__name__)

LOSS_LOG_FILE = "losses.csv"
SNAPSHOT_FOLDER = "snapshots"  # weights only, every ``snapshot_every`` steps: snapshots/step<N>.pt


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) random number generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class BatchStream:
    """Shuffled epochs over a tensor that stays in memory on its device (no DataLoader).

    Each call returns the next ``batch_size`` rows; a new permutation is drawn (from its own
    seeded generator) when an epoch runs out. Its state is part of every checkpoint.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seed: int,
                 transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> None:
        if batch_size > len(data):
            raise UserError(f"batch_size {batch_size} is larger than the {len(data)} training samples; "
                            "lower train.batch_size or give the benchmark more training data")
        self.data = data
        self.transform = transform  # applied to each batch with this stream's generator (e.g. binarization)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(data), generator=self.generator)
        self._device_order = self.order.to(data.device)
        self.position = 0
        self.epoch = 0

    def __call__(self) -> torch.Tensor:
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.data), generator=self.generator)
            self._device_order = self.order.to(self.data.device)
            self.position = 0
            self.epoch += 1
        # The permutation is drawn on the CPU (one seeded generator, the same order on any device) and copied to
        # the data's device once per epoch, so a batch is sliced and gathered there: no host-to-device copy (and,
        # on CUDA, no stream synchronisation) per batch.
        index = self._device_order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        batch = self.data[index]
        return batch if self.transform is None else self.transform(batch, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position, self.epoch = state["order"], state["position"], state["epoch"]
        self._device_order = self.order.to(self.data.device)


@dataclass(frozen=True)
class Intermediate:
    """A judge the loop consults every ``every`` steps (not at the last step): ``judge(step, model)``
    returns True to stop the run there, which then ends ``pruned`` after a checkpoint.

    The judge sees the model in eval mode; python's, numpy's and torch's RNG states are saved before
    and restored after it, and the model is put back in train mode, so a run the judge lets go on
    trains exactly as it would have without a judge (its samples, drawn from their own seeds, leave
    no trace in the training stream)."""

    every: int
    judge: Callable[[int, GenerativeModel], bool]


@dataclass
class TrainOutcome:
    """How training ended: ``finished``, ``diverged`` or ``pruned`` (with the step and the losses)."""

    status: str
    steps_done: int
    resumed_from: int
    seconds: float
    loss_log: list[dict[str, float]] = field(default_factory=list)
    reason: str | None = None


#: the clock of the time-based checkpoints (``TrainConfig.checkpoint_seconds``); tests replace it
clock: Callable[[], float] = time.monotonic

#: seconds between two progress lines of a run whose output is not a terminal (a log file, CI)
PROGRESS_SECONDS_ENV = "GVAE_BENCH_PROGRESS_SECONDS"
progress_log = logging.getLogger("gvae_bench.progress")

#: callables told ``(description, step, total)`` after every training step of this process
_step_listeners: list[Callable[[str, int, int], None]] = []


def add_step_listener(listener: Callable[[str, int, int], None]) -> None:
    """Call ``listener(description, step, total_steps)`` after each training step in this process
    (the parallel executor's children report their steps to the sweep's progress line with it)."""
    _step_listeners.append(listener)


class _ProgressLines:
    """One log line every ``$GVAE_BENCH_PROGRESS_SECONDS`` (default 30) seconds: steps done of the
    total, the current losses, the time elapsed and an estimate of the time left."""

    def __init__(self, description: str, start: int, total: int) -> None:
        self.description, self.start, self.total = description, start, total
        self.every = float(os.environ.get(PROGRESS_SECONDS_ENV) or 30.0)
        self.began = self.last = time.perf_counter()

    def step(self, step: int, losses: dict[str, float]) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and step != self.total:
            return
        self.last = now
        elapsed = now - self.began
        left = elapsed / (step - self.start) * (self.total - step) if step > self.start else float("nan")
        progress_log.info("%s: step %d/%d, %s, %s elapsed, about %s left", self.description, step, self.total,
                          ", ".join(f"{k} {v:.4g}" for k, v in losses.items()), duration_text(elapsed), duration_text(left))


def duration_text(seconds: float) -> str:
    """``41m05s`` or ``2h03m`` for a number of seconds; ``?`` when it is not finite."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _write_loss_log(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["step"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _save_checkpoint(run_dir: Path, model: GenerativeModel, stream: BatchStream, step: int,
                     rows: list[dict[str, float]], seconds: float) -> None:
    state = {
        "step": step,
        "model_name": model.registered_name,
        "model_config": model.config.to_dict(),
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in model.optimizers().items()},
        "batch_stream": stream.state_dict(),
        "rng": rng_state(),
        "loss_log": rows,
        "train_seconds": seconds,
    }
    save_checkpoint(run_dir, state)


def _autocast(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context each training step runs in: bfloat16 autocast for ``bf16``."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def train(model: GenerativeModel, train_data: torch.Tensor, config: TrainConfig, run_dir: Path,
          seed: int, description: str = "train",
          transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
          intermediate: Intermediate | None = None, *, label: str | None = None,
          tracker: NoTracker | None = None) -> TrainOutcome:
    """Train ``model`` for ``config.steps`` steps, resuming from ``run_dir`` if it holds a checkpoint.

    The caller seeds the RNGs before building the model (so initial weights follow the seed);
    this function restores them from the checkpoint on resume. ``transform`` is applied to each
    training batch (the benchmark's ``train_batch_transform``). ``intermediate``: a judge that may
    stop the run early (``Intermediate``). ``label``: how the line saying "starting" or "resuming
    from step S" names the run (default ``description``). ``tracker``: told the losses, the sample
    grid at each checkpoint and when to flush (``gvae_bench.execution.tracking``; default: nowhere).

    Checkpoints are written every ``config.checkpoint_every`` steps, at the first step boundary
    ``config.checkpoint_seconds`` after the last one, at the last step, and when SIGINT or SIGTERM
    arrives (``StepBoundarySignals``: the checkpoint of the step under way, then the signal acts).
    """
    run_dir = Path(run_dir)
    tracker = tracker if tracker is not None else NoTracker()
    stream = BatchStream(train_data, config.batch_size, seed, transform)
    rows: list[dict[str, float]] = []
    start, seconds_before = 0, 0.0
    state = load_resume_state(run_dir)  # on the CPU: RNG states must stay there
    if state is not None:
        model.load_state_dict(state["model"])
        for name, opt in model.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        stream.load_state_dict(state["batch_stream"])
        set_rng_state(state["rng"])
        rows, start, seconds_before = list(state["loss_log"]), int(state["step"]), float(state["train_seconds"])
        progress_log.info("%s: resuming from step %d of %d in %s", label or description, start, config.steps, run_dir)
    else:
        progress_log.info("%s: starting in %s", label or description, run_dir)
    tracker.begin(start)

    model.train()
    autocast = _autocast(config.precision, model.device)
    began = time.perf_counter()
    bar = tqdm(total=config.steps, initial=start, desc=description, unit="step", dynamic_ncols=True, leave=False,
                disable=None)  # None: shown on a terminal, silent in logs and CI
    report = _ProgressLines(description, start, config.steps) if bar.disable else None  # off a terminal: lines
    last_saved = clock()

    def checkpoint(step: int) -> None:
        nonlocal last_saved
        _save_checkpoint(run_dir, model, stream, step, rows, seconds_before + time.perf_counter() - began)
        _write_loss_log(run_dir / LOSS_LOG_FILE, rows)
        last_saved = clock()

    try:
        with StepBoundarySignals() as signals:
            for step in range(start + 1, config.steps + 1):
                with autocast():
                    losses = model.train_step(stream)
                if report is not None:
                    report.step(step, losses)
                bar.update(1)
                for listener in _step_listeners:
                    listener(description, step, config.steps)
                if not all(math.isfinite(value) for value in losses.values()):
                    rows.append({"step": step, **losses})
                    _write_loss_log(run_dir / LOSS_LOG_FILE, rows)
                    bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
                    return TrainOutcome("diverged", step, start, seconds_before + time.perf_counter() - began,
                                        rows, reason=f"non-finite loss at step {step}: {bad}")
                if step % config.log_every == 0 or step == config.steps:
                    rows.append({"step": step, **losses})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
                    tracker.losses(step, losses)
                if config.lr_decay_every and step % config.lr_decay_every == 0:
                    for optimizer in model.optimizers().values():
                        for group in optimizer.param_groups:
                            group["lr"] *= config.lr_decay  # optimiser state, so checkpoints carry it
                if config.snapshot_every and step % config.snapshot_every == 0:
                    snapshot = {"step": step, "model": model.state_dict()}
                    atomic_save(run_dir / SNAPSHOT_FOLDER / f"step{step}.pt",
                                lambda buffer: torch.save(snapshot, buffer))
                stop = (intermediate is not None and step % intermediate.every == 0 and step < config.steps
                        and _consult(intermediate, step, model))
                due = (step % config.checkpoint_every == 0 or step == config.steps
                       or (config.checkpoint_seconds > 0 and clock() - last_saved >= config.checkpoint_seconds))
                if stop or (due and signals.pending is None):
                    if stop and (not rows or rows[-1]["step"] != step):
                        rows.append({"step": step, **losses})
                    checkpoint(step)
                    if type(tracker) is not NoTracker:
                        _aside(model, lambda: tracker.samples(step, model))
                        tracker.flush()
                if stop:
                    return TrainOutcome("pruned", step, start, seconds_before + time.perf_counter() - began, rows,
                                        reason=f"stopped at step {step} of {config.steps} by the tuner's pruner")
                signals.at_boundary(lambda: _stopped_by(signals, description, step, config.steps, checkpoint, tracker))
    finally:
        bar.close()
    return TrainOutcome("finished", config.steps, start, seconds_before + time.perf_counter() - began, rows)


def _stopped_by(signals: StepBoundarySignals, description: str, step: int, total: int,
                checkpoint: Callable[[int], None], tracker: NoTracker) -> None:
    """What a held SIGINT or SIGTERM does at the step boundary before it acts: the checkpoint of
    ``step``, and one line saying so."""
    checkpoint(step)
    tracker.flush()
    log.warning("%s: %s at step %d of %d: checkpoint saved, the same command resumes from step %d",
                description, signals.pending, step, total, step)


def _aside(model: GenerativeModel, action: Callable[[], Any]) -> Any:
    """``action()`` with the RNG states and the train mode kept as they were (nothing it draws
    changes the training stream)."""
    saved = rng_state()
    try:
        model.eval()
        return action()
    finally:
        set_rng_state(saved)
        model.train()


def _consult(intermediate: Intermediate, step: int, model: GenerativeModel) -> bool:
    """``intermediate.judge(step, model)`` with the RNG states and the train mode kept as they were."""
    return bool(_aside(model, lambda: intermediate.judge(step, model)))
