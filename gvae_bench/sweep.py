"""A sweep as a library call: plan it (names to run specs, validated once), then run it.

    from gvae_bench.sweep import run_sweep
    summary = run_sweep(["gvae", "wgan_gp"], "mnist", profile="quick", seeds=[0, 1, 2])
    summary.exit_status, summary.leaderboards

``plan_sweep`` checks every name, the profile, the seeds, the latent sizes, the executor and that
the benchmark's data are there, before any run starts; bad input is a ``UserError`` (one line).
``execute_sweep`` runs a plan on an executor, reports each run as it ends (``on_result``), writes
the dataset's leaderboards and the HTML report (``<out>/report/``) and returns a ``SweepSummary``:
each run's record and outcome, the dataset's tables as pandas frames (``summary.tables``, a
``Leaderboard``, built from the sweep's records in memory and the folder's other records read once),
the files written and the exit status the command line uses. The command line (``gvae_bench.cli``)
only parses options and prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from gvae_bench.atomic import check_writable_folder
from gvae_bench.errors import UserError
from gvae_bench.execution.executors import ExecutorOptions, check_executor, get_executor
from gvae_bench.results.collect import records_beside, records_read_once
from gvae_bench.results.frames import Leaderboard
from gvae_bench.results.leaderboard import build_leaderboard
from gvae_bench.profiles import get_profile, tuned_entry
from gvae_bench.profiles import tuned_from as tuned_profile_of
from gvae_bench.execution.records import Outcome, RunRecord, RunStatus
from gvae_bench.registry import BENCHMARKS, MODELS
from gvae_bench.execution.runs import DEFAULT_OUT, ResolvedRun, RunSpec, resolve, resolve_data_root

log = logging.getLogger(__name__)

#: seeds are 32-bit unsigned integers (the range numpy's and every executor's RNG seeding takes)
SEED_MAX = 2**32 - 1
SETTING_SECTIONS = ("model", "benchmark", "train", "eval")


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: one ``RunSpec`` per model, latent size and seed, in that order."""

    models: tuple[str, ...]
    benchmark: str
    profile: str
    seeds: tuple[int, ...]
    latent_sizes: tuple[int, ...] | None
    specs: tuple[RunSpec, ...]
    out: Path
    notes: tuple[str, ...] = ()
    #: each spec resolved once, by the plan: the runs in this process use these configs and benchmarks
    runs: tuple[ResolvedRun, ...] = field(default=(), compare=False, repr=False)

    def label(self, record: RunRecord) -> str:
        """How a run is named in progress lines: model, seed and, in a latent sweep, the size."""
        text = f"{record.model} seed {record.seed}"
        return text + (f" latent {record.latent_dim}" if self.latent_sizes is not None else "")


@dataclass(frozen=True)
class RunResult:
    """One run of a sweep as it ended: its record and what the sweep did with it."""

    label: str
    record: RunRecord
    outcome: Outcome

    @property
    def problem(self) -> bool:
        """A run that ran (or was skipped) here and is not finished: failed, diverged."""
        return self.outcome != Outcome.HELD and self.record.status != RunStatus.FINISHED

    def line(self) -> str:
        """One line for a progress log."""
        if self.outcome == Outcome.HELD:
            return f"{self.label}: running in another process, skipped here"
        if self.outcome == Outcome.SKIPPED:
            return f"{self.label}: already {self.record.status}, skipped"
        reason = f" ({self.record.reason})" if self.record.reason else ""
        return f"{self.label}: {self.record.status}{reason}"


@dataclass
class SweepSummary:
    """What a sweep did: each run's result, the dataset's tables (frames) and the files they were
    written to, the report, whether it was cut short."""

    plan: SweepPlan
    results: list[RunResult] = field(default_factory=list)
    tables: Leaderboard | None = None
    report: Path | None = None
    interrupted: bool = False

    @property
    def records(self) -> list[RunRecord]:
        """The run records of this sweep's runs, as they ended."""
        return [r.record for r in self.results]

    @property
    def leaderboards(self) -> list[Path]:
        """The files the dataset's tables were written to (none when the sweep was cut short)."""
        return [] if self.tables is None else list(self.tables.files)

    @property
    def problems(self) -> list[RunResult]:
        return [r for r in self.results if r.problem]

    @property
    def held(self) -> list[RunResult]:
        return [r for r in self.results if r.outcome == Outcome.HELD]

    @property
    def exit_status(self) -> int:
        """130 when interrupted, 1 when a run failed or diverged, else 0 (runs held by another
        process are not failures: that process finishes them)."""
        if self.interrupted:
            return 130
        return 1 if self.problems else 0


def _seeds(seeds: Iterable[Any]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    values: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            raise UserError(f"seeds are whole numbers from 0 to {SEED_MAX} (2^32 - 1); got {seed!r}")
        values.append(seed)
    if not values:
        raise UserError("give at least one seed, e.g. seeds=[0, 1, 2] (--seeds 0,1,2)")
    distinct = tuple(dict.fromkeys(values))
    dropped = len(values) - len(distinct)
    notes = (f"{dropped} repeated seed(s) dropped: each seed runs once",) if dropped else ()
    return distinct, notes


def resolve_device(choice: str) -> str:
    """``auto``: CUDA when torch sees a device, else the CPU; ``cuda`` without one is a ``UserError``."""
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise UserError(f"device is one of auto, cpu, cuda; got {choice!r}")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    return choice


def plan_sweep(models: Sequence[str], benchmark: str, *, profile: str = "quick", seeds: Iterable[int] = (0,),
               latent_sizes: Iterable[int] | None = None,
               settings: Mapping[str, Iterable[tuple[str, Any]]] | None = None,
               data_root: Path | str | None = None, out: Path | str = DEFAULT_OUT, device: str = "auto",
               executor: str = "local", check_data: bool = True, tuned_from: Path | str | None = None,
               tuned_dataset: str | None = None, log: str = "none") -> SweepPlan:
    """Validate a sweep and build its run specs.

    A profile with ``tuned_from`` (``tuned``) gives each model its best configuration from the tuning
    studies run at that profile (``<tuned_from or out>/tuning/<benchmark>/best_configs.toml``,
    ``gvae_bench.profiles.tuned_entry``), before ``settings``; each record names the study and
    trial it came from (``tuning``). ``tuned_dataset``: take the configurations tuned on that dataset
    instead (a dataset without a study of its own, e.g. Fashion-MNIST with MNIST's: the reference
    protocol's ``tuned_from_dataset``); the records name the study, so the tables can say so.

    ``log``: how each run is watched (``none`` or ``tensorboard``, ``gvae_bench.execution.tracking``;
    outside the config hash). ``settings``: config fields set after the profile, by section (``{"model": [("width", 32)]}``);
    ``data_root``: as ``resolve_data_root``; ``device``: ``auto``, ``cpu`` or ``cuda``. With ``check_data`` the benchmark's data are loaded
    once, so missing files are an error before any run starts.
    """
    models = tuple(models)
    if not models:
        raise UserError("give at least one model, e.g. models=['vae', 'wgan_gp'] (--models vae,wgan_gp)")
    for name in models:
        MODELS.get(name)
    benchmark_cls = BENCHMARKS.get(benchmark)
    get_profile(profile)
    if tuned_dataset is not None:
        BENCHMARKS.get(tuned_dataset)
    tuned = _tuned_settings(models, tuned_dataset or benchmark, profile,
                            Path(tuned_from) if tuned_from is not None else Path(out))
    check_executor(executor)
    if log != "none":
        from gvae_bench.execution.tracking import check_tracker

        check_tracker(log)
    seed_values, notes = _seeds(seeds)
    sizes = None if latent_sizes is None else tuple(latent_sizes)
    if sizes is not None and (not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
        raise UserError(f"latent sizes are positive whole numbers, e.g. 100,500,1000; got {list(sizes)}")
    overrides = {section: tuple((settings or {}).get(section, ())) for section in SETTING_SECTIONS}
    unknown = sorted(set(settings or {}) - set(SETTING_SECTIONS))
    if unknown:
        raise UserError(f"settings sections are {', '.join(SETTING_SECTIONS)}; got {', '.join(unknown)}")
    root = resolve_data_root(data_root)
    device = resolve_device(device)
    specs = tuple(
        RunSpec(model=m, benchmark=benchmark, profile=profile, seed=s, data_root=root, out=Path(out), device=device,
                model_overrides=tuned.get(m, ((), ()))[0] + overrides["model"]
                + (() if size is None else (("latent_dim", size),)),
                provenance=tuned.get(m, ((), ()))[1],
                benchmark_overrides=overrides["benchmark"], train_overrides=overrides["train"],
                eval_overrides=overrides["eval"], log=log)
        for m in models for size in (sizes or (None,)) for s in seed_values)
    # each model's config hash at the profile's own settings (a tuned profile's: with the tuned fields), resolved
    # once: every record names it, so the tables tell a run with overrides from one without resolving again
    # (``RunRecord.profile_config_hash``)
    profile_hashes = {m: _profile_hash(RunSpec(m, benchmark, profile, seed_values[0], root, Path(out), device,
                                               model_overrides=tuned.get(m, ((), ()))[0]))
                      for m in models}
    specs = tuple(replace(spec, profile_config_hash=profile_hashes[spec.model]) for spec in specs)
    runs = tuple(resolve(spec) for spec in specs)  # every config built and checked (field types, values) before any run
    check_writable_folder(Path(out), "--out")
    if check_data:  # missing data: an error before any run
        benchmark_cls(root, benchmark_cls.Config.from_dict(dict(overrides["benchmark"]))).load()
    return SweepPlan(models=models, benchmark=benchmark, profile=profile, seeds=seed_values, latent_sizes=sizes,
                     specs=specs, out=Path(out), notes=notes, runs=runs)


def _profile_hash(spec: RunSpec) -> str | None:
    """The config hash ``spec`` (no overrides but a tuned profile's fields) resolves to; None when the
    profile alone does not make a valid config for the model (then no run of it counts as at the
    profile's settings)."""
    try:
        return resolve(spec).config_hash
    except UserError:
        return None


def _tuned_settings(models: Sequence[str], benchmark: str, profile: str,
                    folder: Path) -> dict[str, tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]]:
    """Per model, the tuned fields and where they came from, for a profile with ``tuned_from`` (else empty)."""
    studied = tuned_profile_of(profile)
    if studied is None:
        return {}
    found = {}
    for model in models:
        fields, info = tuned_entry(folder, benchmark, model, studied)
        info["tuned_on"] = benchmark
        found[model] = (tuple(fields), (("tuning", tuple(info.items())),))  # hashable, as a RunSpec is
    return found


def execute_sweep(plan: SweepPlan, executor: str = "local", options: ExecutorOptions = ExecutorOptions(), *,
                  on_start: Callable[[Any], None] | None = None,
                  on_result: Callable[[RunResult], None] | None = None) -> SweepSummary:
    """Run ``plan`` on the executor named ``executor``; write the leaderboards; return the summary.

    ``on_start(executor)`` is called once the executor holds the runs (Ray: submitted), and
    ``on_result`` with each run as it ends. Ctrl-C cancels what is outstanding (finished records are
    kept, the same call resumes the rest) and returns the summary so far with ``interrupted``; no
    leaderboard is written then.
    """
    summary = SweepSummary(plan=plan)
    try:
        with get_executor(executor, options) as running:  # Ray: started or joined here; no cluster: UserError
            outcomes = running.run(list(plan.runs or plan.specs))  # Ray: submitted here; a run no node can hold: UserError
            if on_start is not None:
                on_start(running)
            for record, outcome in outcomes:
                result = RunResult(plan.label(record), record, outcome)
                summary.results.append(result)
                log.info("%s", result.line())
                if on_result is not None:
                    on_result(result)
    except KeyboardInterrupt:  # the executor has cancelled what was outstanding by now
        summary.interrupted = True
        return summary
    from gvae_bench.report import write_report  # Jinja2 and the page model, only once runs are done

    # this sweep's records from memory (a run another process holds: its file, which that process
    # finishes); the folder's other records read from disk once, shared by the tables and the report
    made_here = [r.record for r in summary.results if r.outcome != Outcome.HELD]
    with records_read_once():
        unreadable: list[str] = []
        records = records_beside(plan.out, plan.benchmark, made_here, unreadable)
        summary.tables = build_leaderboard(plan.out, plan.benchmark, records=records, unreadable=unreadable)
        summary.report = write_report(plan.out, {plan.benchmark: summary.tables})
    return summary


def run_sweep(models: Sequence[str], benchmark: str, *, executor: str = "local",
              options: ExecutorOptions = ExecutorOptions(), on_result: Callable[[RunResult], None] | None = None,
              **plan_options: Any) -> SweepSummary:
    """``plan_sweep`` then ``execute_sweep``: train and score ``models`` on ``benchmark``.

    ``plan_options`` are ``plan_sweep``'s (profile, seeds, latent_sizes, settings, data_root, out,
    device). Returns the ``SweepSummary``; bad input raises ``UserError`` before any run starts.
    """
    plan = plan_sweep(models, benchmark, executor=executor, **plan_options)
    return execute_sweep(plan, executor, options, on_result=on_result)
