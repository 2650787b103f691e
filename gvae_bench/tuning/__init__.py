"""An equal tuning budget per model (Lucic et al. 2018, "Are GANs Created Equal?"), on Optuna.

    from gvae_bench.tuning import tune, tuned_overrides
    summary = tune(["vae", "wgan_gp"], "ring8", trials=3, profile="smoke", out="results/local")
    settings = tuned_overrides("results/local", "ring8", "vae")   # plan_sweep(..., settings=settings)

Every model gets the same number of trials, each an ordinary run of the one training loop (recorded,
checkpointed, resumable) in ``<out>/tuning/<dataset>/trials/runs/...``, and is chosen on data the
benchmark's test split never enters.

Split. ``BenchmarkConfig.train_limit`` can only keep the FIRST N training rows, so the split is
positional: of the profile's training rows (the "pool": the benchmark's training split after the
profile's own ``train_limit``), the first ``N_fit`` are for fitting (every trial runs with
``benchmark.train_limit = N_fit``) and the last ``N_val = round(fraction * pool)`` are for
validation. The order of the training rows is the benchmark's own, fixed by its data (a file's order,
or a fixed ``data_seed`` for drawn data), so the split is the same for every model, seed and process;
the ``seed`` of ``validation_split`` only orders the validation rows. Each trial records the split
(pool, N_fit, N_val, how, a SHA-256 of the validation rows) and checks that its run trained on
exactly N_fit rows.

Selection score. ``val_mmd2``: the registered ``mmd`` metric, the unbiased squared MMD (Gaussian kernel)
between ``score_samples`` (the budget's, else ``eval.n_samples``) samples of the trained model (drawn
with the study's seed) and as many validation rows, the bandwidth set by the median heuristic on the validation rows (at most 1000,
fixed seed 0), so every model is scored with one kernel. Lower is better. It is defined for every
model (all can sample) and every benchmark (images are flattened), which is why it is the default;
a trial's run is trained and drawn but never evaluated on the test split (``execute_run(...,
evaluate_test=False)``), so nothing of the test set enters a study.

Budget. One Optuna study per (dataset, model, profile), ``study_name = f"{dataset}-{model}-{profile}"``
in ``sqlite:///<out>/tuning/<dataset>/studies.db`` (or any RDB URL), loaded if it exists. ``tune``
adds trials until the study holds ``trials`` trials in any state (finished, pruned, failed, or
running in another process), so a second call continues a study rather than restarting it and two
processes on one storage share the count. The count and the creation of a trial are done under a
file lock (``<out>/tuning/<dataset>/.locks/``), which makes the count exact for processes sharing
``out`` (Optuna's ``MaxTrialsCallback`` only checks after each trial, and two processes can then
overshoot). Trial k's sampler (TPE or random) is seeded with (seed, k), so trial k draws the same
parameters whichever process or restart runs it. A trial whose process dies (a kill, SIGKILL) is failed on the next call and counts as a failed
trial: at once where it ran on this machine (the process held a lock file for the trial, which the
system released at its death), else by Optuna's heartbeat (RDB storages, after its grace period).
The runs of finished trials are never trained again.

Failures. A run that diverges (non-finite loss) or fails, or whose samples cannot be scored
(non-finite), is a FAIL trial with the run's status and reason in its user attributes; the study goes
on. Bad input (unknown model, trials < 1, a model missing from the search space) is a ``UserError``.

Pruning (``pruner=True``). Every trial is scored on the validation rows at a quarter, half and three
quarters of its steps, in the training process (``gvae_bench.execution.training.Intermediate``: the loop hands
the model to the scorer and goes on exactly as it would have, its RNG states restored), and each
score is reported to Optuna at its step; ``MedianPruner(n_startup_trials=4)`` stops a trial whose
score at a step is worse than the median of the earlier trials at that step (Optuna's semantics,
which TPE uses). A pruned trial's run stops there: it is recorded with status ``pruned`` and its
steps done, and its training seconds, part of the table's budget, are what it really trained.
Its value in the study is its last intermediate score.

Outputs under ``<out>/tuning/<dataset>/``: ``table_tuning.csv`` and ``.md`` (every study of the dataset
in the storage), ``budget_curve.png``, ``trial_scores.png`` and ``best_configs.toml`` (the chosen
field values per model and profile; ``tuned_overrides`` reads them back as ``plan_sweep`` settings).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import statistics
import threading
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from gvae_bench.atomic import atomic_write_text
from gvae_bench.errors import UserError
from gvae_bench.execution.training import Intermediate
from gvae_bench.tuning.outputs import SCORE_NAME, TABLE_COLUMNS, tuned_overrides, write_outputs  # noqa: F401  (part of this API)
from gvae_bench.tuning.storage import (  # noqa: F401  (tuning_folder and default_storage are part of this API)
    _file_lock, _heartbeat, _quiet_optuna, _sampler, _storage, _trial_seed, default_storage, fail_orphaned_trials,
    hold_trial_lock, tuning_folder,
)
from gvae_bench.tuning.space import (  # noqa: F401  (validation_split and the space helpers are part of this API)
    SEARCH_SPACE_FILE, Split, _distributions, budget_defaults, load_search_space, make_split, params_to_fields,
    split_sizes, validation_split,
)

log = logging.getLogger(__name__)

SCORE_DIRECTION = "minimize"
SAMPLERS = ("tpe", "random")
BANDWIDTH_ROWS, BANDWIDTH_SEED = 1000, 0


class TrialFailed(Exception):
    """A trial whose run diverged or failed, or whose samples could not be scored."""


# --- the selection score -------------------------------------------------------------------------


def selection_score(model: torch.nn.Module, benchmark: Any, fit_rows: torch.Tensor, val_rows: torch.Tensor,
                    n_samples: int, seed: int) -> float:
    """``val_mmd2``: the registered ``mmd`` metric (unbiased squared MMD, Gaussian kernel with the
    median-heuristic bandwidth of the "real" rows; Gretton et al. 2012) with the validation rows in
    the place of the test set: ``n_samples`` model samples (drawn from ``seed``) against at most
    ``n_samples`` validation rows. Lower is better. ``TrialFailed`` when the samples are not finite."""
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.registry import METRICS

    model.eval()
    ctx = EvalContext(model=model, benchmark=benchmark, splits=DataSplits(train=fit_rows, test=val_rows),
                      config=EvalConfig(n_samples=n_samples), seed=seed)
    if not bool(torch.isfinite(ctx.generated(n_samples)).all()):
        raise TrialFailed("the samples are not finite (NaN or inf)")
    with torch.no_grad():
        return float(METRICS.get("mmd")().compute(ctx).value)


def score_run(run_dir: Path, data_root: Path, split: Split, n_samples: int, seed: int,
              snapshot_step: int | None = None) -> float:
    """The selection score of a finished run (its last checkpoint, or the snapshot at ``snapshot_step``)."""
    from gvae_bench.execution.checkpoints import safe_load
    from gvae_bench.execution.run import load_finished_run

    model, benchmark = load_finished_run(Path(run_dir), Path(data_root))  # its train split: the fit rows
    if snapshot_step is not None:
        model.load_state_dict(safe_load(Path(run_dir) / "snapshots" / f"step{snapshot_step}.pt")["model"])
    return selection_score(model, benchmark, benchmark.load().train, split.val_rows, n_samples, seed)


# --- studies -------------------------------------------------------------------------------------


@dataclass
class StudyResult:
    """One study (dataset, model, profile) after ``tune``."""

    model: str
    profile: str
    study_name: str
    trials: int
    finished: int
    pruned: int
    failed: int
    added: int
    best_value: float | None
    best_fields: dict[str, Any] | None


@dataclass
class TuningSummary:
    """What ``tune`` did: each study's counts and best, the storage and the files written."""

    dataset: str
    storage: str
    studies: list[StudyResult] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    score: str = SCORE_NAME
    direction: str = SCORE_DIRECTION


def _check_inputs(models: Sequence[str], dataset: str, trials: Any, steps: Any, score_samples: Any, sampler: str,
                  space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    from gvae_bench.registry import BENCHMARKS, MODELS

    if isinstance(models, str) or not list(models):
        raise UserError("give a list of models to tune, e.g. ['vae', 'wgan_gp']")
    BENCHMARKS.get(dataset)
    for value, what in ((trials, "trials"), (steps, "steps"), (score_samples, "score_samples")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"{what} is a whole number >= 1; got {value!r}")
    if sampler not in SAMPLERS:
        raise UserError(f"sampler is one of {', '.join(SAMPLERS)}; got {sampler!r}")
    found = {}
    for model in dict.fromkeys(models):
        MODELS.get(model)
        if model not in space or model == "budget":
            raise UserError(f"{model} has no search space in {SEARCH_SPACE_FILE.name}; add a [{model}.<field>] table")
        found[model] = _distributions(model, space[model])
    return found


def tune(models: Sequence[str], dataset: str, *, trials: int | None = None, profile: str = "smoke",
         steps: int | None = None, out: Path | str, data_root: Path | str | None = None, storage: str | None = None,
         seed: int = 0, sampler: str = "tpe", pruner: bool = True, space: Mapping[str, Any] | None = None,
         validation_fraction: float | None = None, score_samples: int | None = None,
         device: str = "cpu", write_tables: bool = True) -> TuningSummary:
    """Tune each of ``models`` on ``dataset`` with ``trials`` trials (in all, counting earlier ones).

    ``trials``, ``steps``, ``validation_fraction`` and ``score_samples`` (the model samples, and
    validation rows, of each selection score) default to ``[budget.<profile>]`` of the search-space
    file, with ``[budget.<profile>.<dataset>]`` over it (``steps`` absent: the profile's own steps;
    ``score_samples`` absent: the profile's ``eval.n_samples``); ``space`` replaces the
    search-space file's model tables (same format). Returns a ``TuningSummary``; writes the tables,
    plots and ``best_configs.toml`` under ``<out>/tuning/<dataset>/`` unless ``write_tables`` is
    False (a worker of ``gvae_bench.tuning.ray``, whose driver writes them once).
    """
    import optuna

    from gvae_bench.profiles import get_profile
    from gvae_bench.execution.runs import resolve_data_root

    get_profile(profile)
    file_space = load_search_space()
    space = dict(space) if space is not None else {k: v for k, v in file_space.items() if k != "budget"}
    budget = budget_defaults(profile, dataset)
    trials = trials if trials is not None else budget.get("trials")
    if trials is None:
        raise UserError(f"give trials: the search-space file has no [budget.{profile}] trials")
    steps = steps if steps is not None else budget.get("steps")
    fraction = validation_fraction if validation_fraction is not None else budget.get("validation_fraction", 0.1)
    score_samples = score_samples if score_samples is not None else budget.get("score_samples")
    distributions = _check_inputs(models, dataset, trials, steps, score_samples, sampler, space)
    root = resolve_data_root(data_root)
    folder = tuning_folder(out, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out, dataset)
    with _quiet_optuna(), _file_lock(folder / ".locks" / "storage.lock"):  # two processes creating one schema
        rdb = _storage(url)
    split = make_split(dataset, profile, fraction, seed, root, model=next(iter(distributions)))
    for model in distributions:  # a profile may set benchmark fields per model: the split must not differ
        if make_split(dataset, profile, fraction, seed, root, model=model).val_sha256 != split.val_sha256:
            raise UserError(f"profile {profile} gives {model} other training rows on {dataset} than "
                            f"{next(iter(distributions))}; tune them separately")
    summary = TuningSummary(dataset=dataset, storage=url)
    for model, dists in distributions.items():
        with _quiet_optuna():
            summary.studies.append(_tune_one(model, dataset, dists, space, trials=trials, profile=profile, steps=steps,
                                             score_samples=score_samples, folder=folder, data_root=root, rdb=rdb, seed=seed, sampler=sampler,
                                             pruner=pruner, split=split, device=device))
    if write_tables:
        summary.files = write_outputs(out, dataset, url)
    return summary


def _tune_one(model: str, dataset: str, dists: dict[str, Any], space: Mapping[str, Any], *, trials: int,
              profile: str, steps: int | None, score_samples: int | None, folder: Path, data_root: Path, rdb,
              seed: int, sampler: str,
              pruner: bool, split: Split, device: str) -> StudyResult:
    import optuna
    from optuna.trial import TrialState

    name = f"{dataset}-{model}-{profile}"
    make_pruner = (lambda: optuna.pruners.MedianPruner(n_startup_trials=4)) if pruner else optuna.pruners.NopPruner
    with _file_lock(folder / ".locks" / f"{name}.lock"):
        study = optuna.create_study(storage=rdb, study_name=name, direction=SCORE_DIRECTION, load_if_exists=True,
                                    sampler=_sampler(sampler, seed), pruner=make_pruner())
        before = study.user_attrs.get("split")
        if before is not None and before.get("val_sha256") != split.val_sha256:
            raise UserError(f"study {name} was tuned on another split ({before.get('how')}); keep its validation "
                            "fraction or use another --out or storage")
        for key, value in {"dataset": dataset, "model": model, "profile": profile, "score": SCORE_NAME,
                           "split": split.info()}.items():
            study.set_user_attr(key, value)
    added = 0
    while True:
        with _file_lock(folder / ".locks" / f"{name}.lock"):
            optuna.storages.fail_stale_trials(study)
            orphans = fail_orphaned_trials(study, folder)
            if orphans:
                log.warning("%s: trial(s) %s failed: their tune process ended while they ran", name,
                            ", ".join(map(str, orphans)))
            number = len(study.get_trials(deepcopy=False, states=None))
            if number >= trials:
                break
            study = optuna.load_study(study_name=name, storage=rdb, sampler=_sampler(sampler, _trial_seed(seed, number)),
                                      pruner=make_pruner())
            trial = study.ask(fixed_distributions=dists)
            trial_lock = hold_trial_lock(folder, name, trial.number)  # held until the trial is told
        added += 1
        state, value = TrialState.FAIL, None
        try:
            with _heartbeat(rdb, trial._trial_id):
                try:
                    state, value = _run_trial(trial, model, dataset, space, profile=profile, steps=steps,
                                              score_samples=score_samples, folder=folder, data_root=data_root,
                                              seed=seed, pruner=pruner, split=split, device=device)
                except TrialFailed as exc:
                    trial.set_user_attr("reason", str(exc))
                    log.warning("%s trial %d failed: %s", name, trial.number, exc)
                except Exception as exc:  # recorded as a failed trial; bad input (UserError) stops the study
                    trial.set_user_attr("reason", f"{type(exc).__name__}: {exc}")
                    log.error("%s trial %d failed: %s: %s", name, trial.number, type(exc).__name__, exc)
                    if isinstance(exc, UserError):
                        raise
            study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        except BaseException:  # bad input or Ctrl-C: the trial is closed as failed, not left running
            study.tell(trial, state=TrialState.FAIL)
            raise
        finally:
            os.close(trial_lock)
    frozen = study.get_trials(deepcopy=False)
    count = lambda s: sum(1 for t in frozen if t.state == s)  # noqa: E731
    complete = [t for t in frozen if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    return StudyResult(model=model, profile=profile, study_name=name, trials=len(frozen),
                       finished=count(TrialState.COMPLETE), pruned=count(TrialState.PRUNED),
                       failed=count(TrialState.FAIL), added=added, best_value=best.value if best else None,
                       best_fields=params_to_fields(model, best.params, space) if best else None)


def _run_trial(trial, model: str, dataset: str, space: Mapping[str, Any], *, profile: str, steps: int | None,
               score_samples: int | None,
               folder: Path, data_root: Path, seed: int, pruner: bool, split: Split, device: str):
    from optuna.trial import TrialState

    from gvae_bench.execution.records import Outcome, RunStatus
    from gvae_bench.execution.run import execute_run
    from gvae_bench.execution.runs import resolve
    from gvae_bench.sweep import plan_sweep

    fields = params_to_fields(model, trial.params, space)
    train: list[tuple[str, Any]] = [] if steps is None else [("steps", steps)]
    probe = plan_sweep([model], dataset, profile=profile, seeds=[seed], settings={"train": train},
                       out=folder / "trials", data_root=data_root, device=device, check_data=False)
    n_steps = resolve(probe.specs[0]).train.steps
    every = n_steps // 4 if pruner and n_steps >= 4 else 0
    settings = {"model": list(fields.items()), "train": train, "benchmark": [("train_limit", split.n_fit)]}
    trial.set_user_attr("split", split.info())
    trial.set_user_attr("score", SCORE_NAME)
    trial.set_user_attr("direction", SCORE_DIRECTION)
    trial.set_user_attr("fields", json.loads(json.dumps(fields)))
    trial.set_user_attr("steps", n_steps)
    try:
        plan = plan_sweep([model], dataset, profile=profile, seeds=[seed], settings=settings, out=folder / "trials",
                          data_root=data_root, device=device, check_data=False)
    except UserError as exc:  # a sampled value the config refuses (e.g. out of its range): this trial fails
        raise TrialFailed(f"config refused: {exc}") from None
    resolved = resolve(plan.specs[0])
    trial.set_user_attr("run_dir", str(resolved.run_dir))
    trial.set_user_attr("config_hash", resolved.config_hash)
    n_samples = score_samples or resolved.eval.n_samples
    trial.set_user_attr("score_samples", n_samples)
    scores: dict[int, float] = {}
    judge = None
    if every:
        fit_rows = resolved.benchmark.load().train

        def judge_at(step: int, trained: torch.nn.Module) -> bool:
            scores[step] = selection_score(trained, resolved.benchmark, fit_rows, split.val_rows, n_samples, seed)
            trial.set_user_attr("intermediate_scores", {str(k): v for k, v in scores.items()})
            if not math.isfinite(scores[step]):
                raise TrialFailed(f"the score at step {step} is not finite: {scores[step]}")
            trial.report(scores[step], step)
            return trial.should_prune()

        judge = Intermediate(every=every, judge=judge_at)
    record, outcome = execute_run(plan.specs[0], intermediate=judge, evaluate_test=False)
    trial.set_user_attr("status", "held" if outcome == Outcome.HELD else str(record.status.value))
    trial.set_user_attr("train_seconds", record.train_seconds)
    trial.set_user_attr("steps_done", record.steps_done)
    if outcome == Outcome.HELD:
        raise TrialFailed("the run is being trained by another process")
    if record.status == RunStatus.PRUNED and scores:
        return TrialState.PRUNED, scores[max(scores)]
    if record.status != RunStatus.FINISHED:
        raise TrialFailed(f"run {record.status.value}: {record.reason}")
    if (record.data or {}).get("n_train") != split.n_fit:
        raise TrialFailed(f"the run trained on {(record.data or {}).get('n_train')} rows, not the split's {split.n_fit}")
    value = score_run(resolved.run_dir, data_root, split, n_samples, seed)
    trial.set_user_attr("final_score", value)
    if not math.isfinite(value):
        raise TrialFailed(f"the score is not finite: {value}")
    return TrialState.COMPLETE, value
