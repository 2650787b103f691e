"""One run, start to finish: resolve, train in the one loop, draw pictures, evaluate, record.

A run writes only its own folder, so runs may execute in any order on any executor:

    record.json   status (running / finished / diverged / failed), resolved config, config hash,
                  seed, commit, software versions, device, timings, metrics with sample counts
                  and the data as loaded (sizes, and the benchmark's own facts, e.g. CT's split)
    config.json   the resolved config (also saved inside every checkpoint, beside the weights)
    losses.csv    the loss log;  losses.png  the loss curves;  samples.png  the sample grid
    checkpoint.pt the last checkpoint (git-ignored)

A finished or diverged run is not redone; a running or failed one resumes from its checkpoint.
A run holds an exclusive lock on ``<run folder>/.lock`` while it works, so two sweeps that share
runs (two terminals, two executors) never write one folder at once: the second skips it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Iterator

import torch

from gvae_bench.execution import pictures
from gvae_bench.errors import UserError
from gvae_bench.execution.evaluation import evaluate
from gvae_bench.atomic import WriteError, atomic_write_json
from gvae_bench.execution.records import (
    RECORD_FILE, Outcome, RecordError, RunRecord, RunStatus, environment, git_commit, now, read_record, read_record_or_set_aside,
    software_versions, write_record,
)
from gvae_bench.execution.runs import ResolvedRun, RunSpec, resolve
from gvae_bench.execution.checkpoints import CHECKPOINT_FILE, load_weights
from gvae_bench.execution.tracking import NoTracker, open_tracker
from gvae_bench.execution.training import Intermediate, seed_everything, train
from gvae_bench.execution.classifier import ClassifierConfig
from gvae_bench.profiles import EvalConfig
from gvae_bench.registry import BENCHMARKS, METRICS, MODELS

log = logging.getLogger(__name__)


def execute_run(spec: RunSpec | ResolvedRun, intermediate: Intermediate | None = None,
                evaluate_test: bool = True) -> tuple[RunRecord, Outcome]:
    """Run ``spec`` (or skip it if its record is final); its record and what was done with it.

    ``spec`` may be the plan's ``ResolvedRun`` (``SweepPlan.runs``): its config and benchmark are then
    used as they are, not resolved again.

    ``intermediate``: a judge the training loop consults every few steps, which may stop the run
    (status ``pruned``, not evaluated): a tuner's pruner (``gvae_bench.execution.training.Intermediate``).
    ``evaluate_test=False``: the run is trained and drawn but no metric reads its test split (a
    tuning trial, chosen on validation rows alone); its record says so in ``reason``.

    Bad input (``UserError``: unknown names, missing data) propagates; any other failure is
    recorded with status ``failed`` and returned, so a sweep goes on.
    """
    resolved = spec if isinstance(spec, ResolvedRun) else resolve(spec)
    run_dir = resolved.run_dir
    with _run_lock(run_dir) as locked:
        if not locked:
            log.warning("%s is being run by another process; skipped here", run_dir)
            try:
                record = read_record(run_dir) or new_record(resolved, None)
            except RecordError:  # the other process owns the folder: its record is not ours to move
                record = new_record(resolved, None)
            record.status, record.reason = RunStatus.RUNNING, "running in another process"
            return record, Outcome.HELD
        return _execute_locked(resolved, intermediate, evaluate_test)


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on the run folder (released when the process dies)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o666)
    except OSError as exc:
        raise WriteError(f"cannot write {run_dir / '.lock'}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _execute_locked(resolved: ResolvedRun, intermediate: Intermediate | None = None,
                    evaluate_test: bool = True) -> tuple[RunRecord, Outcome]:
    spec, run_dir = resolved.spec, resolved.run_dir
    existing = read_record_or_set_aside(run_dir)
    if existing is not None and existing.is_final:
        log.info("%s: already %s, skipped", run_dir, existing.status)
        if existing.status == RunStatus.FINISHED and evaluate_test:
            try:
                _add_missing_metrics(run_dir, existing, spec.data_root, resolved)
            except UserError:
                raise
            except Exception as exc:  # the finished record stays as it was; the sweep goes on
                log.error("%s: adding metrics failed, the record is unchanged: %s: %s", run_dir,
                          type(exc).__name__, exc)
        return existing, Outcome.SKIPPED
    splits = resolved.benchmark.load()  # a UserError here (missing data) stops the sweep
    record = new_record(resolved, existing)
    record.data = {"n_train": len(splits.train), "n_test": len(splits.test), **splits.info}
    try:
        write_record(run_dir, record)
        atomic_write_json(run_dir / "config.json", resolved.config())
        _train_and_evaluate(resolved, splits, record, intermediate, evaluate_test)
    except WriteError as exc:  # no space, read-only, no permission: recorded if the record can still be written
        record.status, record.ended, record.reason = RunStatus.FAILED, now(), str(exc)
        log.error("%s failed: %s", run_dir, record.reason)
    except UserError:
        raise
    except Exception as exc:  # recorded, and the sweep goes on
        record.status, record.ended = RunStatus.FAILED, now()
        record.reason, record.traceback = f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=8)
        log.error("%s failed: %s", run_dir, record.reason)
    write_record(run_dir, record)  # a WriteError here (the record itself cannot be written) stops the sweep
    return record, Outcome.RAN


def record_lost_run(spec: RunSpec, reason: str) -> tuple[RunRecord, Outcome]:
    """Mark a run whose worker died as failed on disk (unless another process holds it) and return
    its record; it resumes from its last checkpoint next time, as any failed run does."""
    resolved = resolve(spec)
    log.info("%s failed: %s", resolved.run_dir, reason)  # the runner reports it beside the other runs
    with _run_lock(resolved.run_dir) as locked:
        record = read_record(resolved.run_dir) or new_record(resolved, None)
        if record.status == RunStatus.RUNNING:
            record.status, record.ended, record.reason = RunStatus.FAILED, now(), reason
            if locked and (resolved.run_dir / RECORD_FILE).is_file():
                write_record(resolved.run_dir, record)
    return record, Outcome.RAN


def new_record(resolved: ResolvedRun, existing: RunRecord | None) -> RunRecord:
    """The record of a run about to start (or resume: ``existing`` gives its start time and attempts)."""
    spec = resolved.spec
    return RunRecord(
        status=RunStatus.RUNNING,
        model=spec.model,
        benchmark=spec.benchmark,
        profile=spec.profile,
        seed=spec.seed,
        config=resolved.config(),
        config_hash=resolved.config_hash,
        git=git_commit(),
        versions=software_versions(),
        device=spec.device,
        started=(existing.started if existing is not None and existing.started else now()),
        attempts=(existing.attempts if existing is not None else 0) + 1,
        plugins=plugin_provenance(resolved) or None,
        environment=environment(spec.device, resolved.train.threads or torch.get_num_threads()),
        tuning=dict(dict(spec.provenance).get("tuning", ())) or None,
        profile_config_hash=spec.profile_config_hash,
    )


def _metric_plugins() -> dict[str, Any]:
    """The outside metric plugins registered now: name -> origin (path, package, source hash)."""
    return {entry.name: entry.origin.to_dict() for entry in METRICS.entries() if entry.origin is not None}


def plugin_provenance(resolved: ResolvedRun) -> dict[str, Any]:
    """Where the code of the outside plugins a run uses came from (empty for built-ins only)."""
    found: dict[str, Any] = {kind: origin.to_dict() for kind, origin in resolved.plugin_code().items()}
    metrics = _metric_plugins()
    if metrics:
        found["metrics"] = metrics
    return found


def _train_and_evaluate(resolved: ResolvedRun, splits, record: RunRecord, intermediate: Intermediate | None,
                        evaluate_test: bool) -> None:
    spec, run_dir = resolved.spec, resolved.run_dir
    threads_before = torch.get_num_threads()
    if resolved.train.threads:
        torch.set_num_threads(resolved.train.threads)
    try:
        _train_evaluate_and_draw(resolved, splits, record, intermediate, evaluate_test)
    finally:
        torch.set_num_threads(threads_before)  # a run's thread count never leaks into the next run


def _train_evaluate_and_draw(resolved: ResolvedRun, splits, record: RunRecord, intermediate: Intermediate | None,
                             evaluate_test: bool) -> None:
    spec, run_dir = resolved.spec, resolved.run_dir
    device = torch.device(spec.device)
    seed_everything(spec.seed)
    model = resolved.model_cls(resolved.model_config, resolved.benchmark.spec).to(device)
    train_data = splits.train.to(device)
    if resolved.train.channels_last and train_data.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        train_data = train_data.contiguous(memory_format=torch.channels_last)
    description = f"{spec.model}/{spec.benchmark}/seed{spec.seed}"
    tracker = _tracker(resolved, splits, description)
    try:
        _train_and_score(resolved, splits, record, intermediate, evaluate_test, model, train_data, description,
                         tracker)
    finally:
        tracker.close()


def _tracker(resolved: ResolvedRun, splits, description: str) -> NoTracker:
    """The run's live log (``RunSpec.log``: none, or TensorBoard under ``<out>/tensorboard``)."""
    spec, benchmark = resolved.spec, resolved.benchmark
    points = benchmark.spec.kind == "points"
    return open_tracker(spec.log, spec.out, resolved.run_dir, benchmark.spec,
                        resolved.eval.n_samples if points else resolved.eval.grid_size, spec.seed, title=description,
                        real=splits.test[: resolved.eval.n_samples] if points else None,
                        modes=benchmark.modes if points else None, config=resolved.config())


def _train_and_score(resolved: ResolvedRun, splits, record: RunRecord, intermediate: Intermediate | None,
                     evaluate_test: bool, model, train_data: torch.Tensor, description: str,
                     tracker: NoTracker) -> None:
    spec, run_dir = resolved.spec, resolved.run_dir
    device = torch.device(spec.device)
    outcome = train(model, train_data, resolved.train, run_dir, spec.seed, description,
                    resolved.benchmark.train_batch_transform(), intermediate,
                    label=f"{spec.model}/{spec.benchmark} seed {spec.seed}", tracker=tracker)
    record.steps_done, record.resumed_from_step = outcome.steps_done, outcome.resumed_from
    record.train_seconds = round(outcome.seconds, 2)
    pictures.save_loss_curves(run_dir / "losses.png", outcome.loss_log, title=description)
    if outcome.status == RunStatus.DIVERGED:
        record.status, record.ended, record.reason = RunStatus.DIVERGED, now(), outcome.reason
        log.warning("%s diverged: %s", run_dir, outcome.reason)
        return
    if outcome.status == RunStatus.PRUNED:
        record.status, record.ended, record.reason = RunStatus.PRUNED, now(), outcome.reason
        log.info("%s pruned: %s", run_dir, outcome.reason)
        return
    if evaluate_test:
        record.metrics = evaluate(model, resolved.benchmark, splits, resolved.eval, spec.seed, resolved.classifier)
        tracker.metrics(outcome.steps_done, record.metrics)
    else:
        record.reason = "a tuning trial: trained and drawn, not evaluated on the test split"
    torch.manual_seed(spec.seed)
    grid = model.sample_in_batches(resolved.eval.grid_size if resolved.benchmark.spec.kind != "points"
                                   else resolved.eval.n_samples)
    pictures.save_samples(run_dir / "samples.png", grid, resolved.benchmark.spec,
                          real=splits.test[: resolved.eval.n_samples], modes=resolved.benchmark.modes,
                          title=description)
    if model.can_reconstruct and resolved.benchmark.spec.kind != "points" and evaluate_test:
        inputs = splits.test[: max(8, resolved.eval.grid_size // 2)].to(device)
        with torch.no_grad():
            model.eval()
            outputs = model.reconstruct(inputs)
        pictures.save_reconstructions(run_dir / "reconstructions.png", inputs.cpu(), outputs.cpu(),
                                      resolved.benchmark.spec)
    record.status, record.ended = RunStatus.FINISHED, now()


def load_finished_run(run_dir: Path, data_root: Path):
    """The model of a finished run (weights from its checkpoint) and its benchmark, rebuilt from
    the run record's resolved config alone."""
    record = read_record(run_dir)
    if record is None or record.status != RunStatus.FINISHED:
        raise UserError(f"{run_dir} holds no finished run (record status: {record.status if record else 'none'})")
    if not (Path(run_dir) / CHECKPOINT_FILE).is_file():
        raise UserError(f"{run_dir} has its record but no {CHECKPOINT_FILE} (checkpoints are not committed with "
                        "results): run the sweep command with another --out to train it again here")
    config = record.config
    model_cls, benchmark_cls = MODELS.get(record.model), BENCHMARKS.get(record.benchmark)
    benchmark = benchmark_cls(data_root, benchmark_cls.Config.from_dict(config["benchmark_config"]))
    model = model_cls(model_cls.Config.from_dict(config["model_config"]), benchmark.spec)
    load_weights(model, run_dir)
    return model.eval(), benchmark


def rescore(run_dir: Path, data_root: Path) -> list[str]:
    """Add the metrics registered since a finished run was evaluated, and the references of those
    that gained one since (``Metric.has_reference``), from its last checkpoint.

    The model is rebuilt from the record's config and weights; the evaluation draws the same
    samples as the original one (same seeds), so old and new metrics describe one sample set.
    Returns the names added (empty when nothing was missing or the run is not finished).
    """
    with _run_lock(run_dir) as locked:
        try:
            record = read_record(run_dir)
        except RecordError as exc:
            log.warning("not rescored, unreadable: %s", exc)
            return []
        if not locked or record is None or record.status != RunStatus.FINISHED:
            return []
        return _add_missing_metrics(run_dir, record, data_root)


def _add_missing_metrics(run_dir: Path, record: RunRecord, data_root: Path,
                         resolved: ResolvedRun | None = None) -> list[str]:
    """Evaluate the registered metrics a finished run's record lacks (the caller holds the lock).

    With ``resolved`` (a sweep meeting its own finished run) the evaluation settings are the
    current resolution of the same config hash, which adds the fields introduced since (at their
    defaults); otherwise the record's own. Without the checkpoint nothing can be added.
    """
    recorded = record.metrics
    metric_code, recorded_code = _metric_plugins(), (record.plugins or {}).get("metrics", {})
    missing = {name for name in METRICS.names()
               if name not in recorded
               or (METRICS.get(name).has_reference and recorded[name].get("value") is not None
                   and recorded[name].get("reference") is None
                   and "reference_na" not in (recorded[name].get("details") or {}))
               or (name in metric_code and recorded_code.get(name, {}).get("sha256") != metric_code[name]["sha256"])}
    if not missing:
        return []
    config = resolved.config() if resolved is not None else record.config
    if not (Path(run_dir) / CHECKPOINT_FILE).is_file():  # nothing can be added; name what would apply
        model_cls, benchmark_cls = MODELS.get(record.model), BENCHMARKS.get(record.benchmark)
        shape_only = benchmark_cls(data_root, benchmark_cls.Config.from_dict(config["benchmark_config"]))
        applicable = sorted(name for name in missing if not METRICS.get(name)().missing(model_cls, shape_only))
        if applicable:
            log.warning("%s: its checkpoint is gone, so %s stay(s) missing", run_dir, ", ".join(applicable))
        return []
    log.warning("%s: evaluating %s (registered, given a reference or changed since it ran)", run_dir,
                ", ".join(sorted(missing)))
    model, benchmark = load_finished_run(run_dir, data_root)
    added = evaluate(model, benchmark, benchmark.load(), EvalConfig.from_dict(config["eval"]), record.seed,
                     ClassifierConfig.from_dict(config.get("classifier", {})), only=missing)
    if not added:
        return []
    record.metrics.update(added)
    record.config = config
    if metric_code:
        record.plugins = {**(record.plugins or {}), "metrics": {**recorded_code, **metric_code}}
    record.rescored.append({"when": now(), "git": git_commit(), "metrics": sorted(added)})
    write_record(run_dir, record)
    return sorted(added)
