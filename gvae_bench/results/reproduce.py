"""Rerun a finished run from its record alone and measure how far its numbers move.

Reproducibility is measured here, not assumed. The same config hash and the same seed can still
give different numbers: the torch thread count changes the order of CPU sums, another CPU or GPU
model, other torch/numpy versions and nondeterministic kernels (cuDNN, atomics) change the floating
point, and each of these can move a metric. ``reproduce`` rebuilds the run's spec from its
``record.json`` (model, benchmark, profile, seed, device, and every recorded config field as an
override, checked against the recorded config hash), runs it again into a scratch folder (with the
recorded torch thread count), and reports, per metric, the recorded value, the rerun's value and
their difference; and that difference as a fraction of the seed-to-seed spread (the sample standard
deviation over the finished seeds of the same config, the sibling ``seed*`` folders, this run
included). A fraction well below 1 says the environment's effect is small next to the seeds' (the
leaderboard's intervals cover it); a fraction near or above 1 says the environment, not the seed,
dominates, and numbers from different machines should not be pooled. The report also says whether
the environment matched the recorded one (``gvae_bench.execution.records.environment`` field by field, and
the torch and numpy versions), and which fields differed; "unknown" for a record made before
records named their environment.

The report is written as ``reproduce.md`` and ``reproduce.json`` into the rerun's folder and beside
the recorded run's ``record.json``, where the leaderboards read it: a
table's footer says, for each reproduced config, which spread dominates (``spread_verdict``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import statistics
from pathlib import Path
from typing import Any, Iterator

from gvae_bench.atomic import atomic_write_json, atomic_write_text
from gvae_bench.errors import UserError
from gvae_bench.execution.records import RECORD_FILE, RecordError, RunRecord, RunStatus, environment, read_record
from gvae_bench.execution.runs import RunSpec, resolve

log = logging.getLogger(__name__)

REPORT_MD = "reproduce.md"
REPORT_JSON = "reproduce.json"

#: the software versions whose change can move a run's numbers, compared beside the environment
COMPARED_VERSIONS = ("torch", "numpy")


@dataclasses.dataclass
class MetricComparison:
    """One metric of the recorded run against the rerun. ``difference`` is rerun - recorded;
    ``seed_std`` the sample std (ddof 1) over the ``n_seeds`` finished seeds of the config (None
    below 2 seeds); ``fraction_of_seed_spread`` the difference over that std (None without one,
    or when it is 0)."""

    metric: str
    recorded: float
    rerun: float
    difference: float
    seed_std: float | None
    fraction_of_seed_spread: float | None
    n_seeds: int

    def line(self) -> str:
        """E.g. ``mmd: recorded 0.01361, rerun 0.01389, diff +0.000276 = 0.11 of the seed spread (n=3 seeds)``."""
        text = f"{self.metric}: recorded {self.recorded:.4g}, rerun {self.rerun:.4g}, diff {self.difference:+.3g}"
        seeds = f"n={self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}"
        if self.fraction_of_seed_spread is not None:
            return f"{text} = {self.fraction_of_seed_spread:.2f} of the seed spread ({seeds})"
        if self.seed_std == 0:
            return f"{text} (the seeds do not spread: std 0 over {seeds})"
        return f"{text} (no seed spread: {seeds}, 2 needed)"


@dataclasses.dataclass
class ReproduceReport:
    """A rerun of ``run_dir`` in ``scratch_run_dir``, compared with the record metric by metric.

    ``environment_matched`` is None when the record names no environment (made before records
    did); ``environment_differences`` lists each differing field as ``field: recorded -> rerun``;
    ``note`` says what the rerun could not keep as recorded (a CUDA run rerun on the CPU) or set
    to match (the torch threads)."""

    run_dir: Path
    scratch_run_dir: Path
    rows: list[MetricComparison]
    environment_matched: bool | None
    environment_differences: list[str]
    note: str = ""

    def environment_line(self) -> str:
        if self.environment_matched is None:
            text = "environment: unknown (the record predates environment records)"
            if self.environment_differences:
                text += f"; differs in {'; '.join(self.environment_differences)}"
            return text
        if self.environment_matched:
            return "environment: matched the recorded one"
        return f"environment: differs in {'; '.join(self.environment_differences)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "scratch_run_dir": str(self.scratch_run_dir),
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "environment_matched": self.environment_matched,
            "environment_differences": list(self.environment_differences),
            "note": self.note,
        }

    def to_markdown(self) -> str:
        def number(value: float | None, spec: str) -> str:
            return "n/a" if value is None else format(value, spec)

        lines = [
            "# Reproduction",
            "",
            f"Recorded run: `{self.run_dir}`  ",
            f"Rerun: `{self.scratch_run_dir}`",
            "",
            "The difference is rerun - recorded; the seed spread is the sample standard deviation of the metric "
            "over the finished seeds of the same config (this one included). A fraction well below 1: the "
            "environment moves the number less than the seed does; near or above 1: the environment dominates.",
            "",
            "| metric | recorded | rerun | difference | seed std | fraction of seed spread | seeds |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in self.rows:
            lines.append(f"| {row.metric} | {row.recorded:.6g} | {row.rerun:.6g} | {row.difference:+.3g} | "
                         f"{number(row.seed_std, '.3g')} | {number(row.fraction_of_seed_spread, '.2f')} | "
                         f"{row.n_seeds} |")
        if not self.rows:
            lines.append("| (no metric with a value in both records) | | | | | | |")
        lines += ["", self.environment_line()]
        if self.note:
            lines += ["", f"Note: {self.note}"]
        return "\n".join(lines) + "\n"


def reproduce(run_dir: Path, scratch: Path, data_root: Path) -> ReproduceReport:
    """Rerun the finished run in ``run_dir`` from its record alone into ``scratch`` (its usual
    ``runs/<benchmark>/<model>/<profile>-<hash>/seed<seed>`` layout), compare the metrics and the
    environment with the record, and write ``reproduce.md`` and ``reproduce.json`` into the
    rerun's folder. ``UserError`` when the record is missing or unfinished, when its config no
    longer resolves to its hash, when ``scratch`` would put the rerun in ``run_dir`` itself or
    where an earlier rerun already is, or when the rerun fails."""
    import torch

    run_dir = Path(run_dir)
    record = _read(run_dir)
    if record is None:
        raise UserError(f"{run_dir} holds no {RECORD_FILE}; give the folder of one run (…/seed<N>)")
    if record.status != RunStatus.FINISHED:
        raise UserError(f"{run_dir} holds no finished run (record status: {record.status}); only finished runs "
                        "have numbers to reproduce")
    notes: list[str] = []
    device = record.device or "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        notes.append(f"the run was recorded on {device}, but CUDA is not available here, so it was rerun on the cpu "
                     "(the numbers need not match)")
        device = "cpu"
    spec = _spec(record, Path(data_root), Path(scratch), device)
    resolved = resolve(spec)
    if resolved.config_hash != record.config_hash:
        raise UserError(f"{run_dir}: its recorded config resolves to hash {resolved.config_hash} here, not its "
                        f"recorded {record.config_hash}; this harness (or a plugin) no longer builds the same run "
                        "from it, so a rerun would not reproduce it")
    rerun_dir = resolved.run_dir
    if rerun_dir.resolve() == run_dir.resolve():
        raise UserError(f"--out {scratch} would rerun into {run_dir} itself; give a scratch folder elsewhere")
    if (rerun_dir / RECORD_FILE).exists():
        raise UserError(f"{rerun_dir} already holds a run ({RECORD_FILE}); remove it or give another --out, so "
                        "the comparison is with a fresh rerun")

    threads = (record.environment or {}).get("torch_threads")
    recorded_train_threads = record.config.get("train", {}).get("threads") or 0
    set_threads = isinstance(threads, int) and threads > 0 and threads != recorded_train_threads
    # train.threads is hashed like any field, so a recorded thread count the config did not pin is
    # set here, around the rerun, rather than as an override (which would make it another run)
    with _torch_threads(threads if set_threads else None):
        from gvae_bench.execution.run import execute_run

        rerun, _ = execute_run(spec)
    if set_threads:
        notes.append(f"torch threads set to {threads} for the rerun, as recorded")
    if rerun.status == RunStatus.FAILED:
        raise UserError(f"the rerun in {rerun_dir} failed: {rerun.reason} (see its {RECORD_FILE})")
    if rerun.status == RunStatus.DIVERGED:
        notes.append(f"the rerun diverged ({rerun.reason}) where the recorded run finished")

    matched, differences = compare_environments(record, rerun)
    report = ReproduceReport(run_dir=run_dir, scratch_run_dir=rerun_dir, rows=compare_metrics(record, rerun, run_dir),
                             environment_matched=matched, environment_differences=differences,
                             note="; ".join(notes))
    atomic_write_text(rerun_dir / REPORT_MD, report.to_markdown())
    atomic_write_json(rerun_dir / REPORT_JSON, report.to_json())
    atomic_write_text(run_dir / REPORT_MD, report.to_markdown())  # beside the record: the leaderboards read it
    atomic_write_json(run_dir / REPORT_JSON, report.to_json())
    return report


def _read(run_dir: Path) -> RunRecord | None:
    try:
        return read_record(run_dir)
    except RecordError as exc:
        raise UserError(str(exc)) from None


def _spec(record: RunRecord, data_root: Path, scratch: Path, device: str) -> RunSpec:
    """The spec whose resolution is the recorded config: every recorded field as an override."""
    config = record.config

    def overrides(section: str) -> tuple[tuple[str, Any], ...]:
        values = config.get(section)
        if not isinstance(values, dict):
            raise UserError(f"the run record's config has no {section} section; it cannot be rerun from the record")
        return tuple(values.items())

    return RunSpec(model=record.model, benchmark=record.benchmark, profile=record.profile, seed=record.seed,
                   data_root=data_root, out=scratch, device=device,
                   model_overrides=overrides("model_config"), benchmark_overrides=overrides("benchmark_config"),
                   train_overrides=overrides("train"), eval_overrides=overrides("eval"))


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``threads`` inside (unchanged for None), restored after."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _number(metric: dict[str, Any] | None) -> float | None:
    value = (metric or {}).get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def seed_values(run_dir: Path, metric: str) -> list[float]:
    """The metric's values over the finished seeds of the run's config (the ``seed*`` folders beside
    ``run_dir``, itself included); unreadable records are left out with a warning."""
    values = []
    for path in sorted(Path(run_dir).parent.glob(f"seed*/{RECORD_FILE}")):
        try:
            sibling = read_record(path.parent)
        except RecordError as exc:
            log.warning("left out of the seed spread: %s", exc)
            continue
        if sibling is not None and sibling.status == RunStatus.FINISHED:
            value = _number(sibling.metrics.get(metric))
            if value is not None:
                values.append(value)
    return values


def compare_metrics(record: RunRecord, rerun: RunRecord, run_dir: Path) -> list[MetricComparison]:
    """One row per metric with a finite numeric value in both records, in the record's order."""
    rows = []
    for name, result in record.metrics.items():
        recorded, again = _number(result), _number(rerun.metrics.get(name))
        if recorded is None or again is None:
            continue
        values = seed_values(run_dir, name)
        std = statistics.stdev(values) if len(values) >= 2 else None
        difference = again - recorded
        fraction = difference / std if std else None
        rows.append(MetricComparison(metric=name, recorded=recorded, rerun=again, difference=difference,
                                     seed_std=std, fraction_of_seed_spread=fraction, n_seeds=len(values)))
    return rows


def compare_environments(record: RunRecord, rerun: RunRecord) -> tuple[bool | None, list[str]]:
    """Whether the rerun's environment (and torch/numpy versions) matched the record's, and each
    differing field as ``field: recorded -> rerun``; None for a record that names no environment."""
    differences = []
    now = rerun.environment
    if now is None:
        now = environment(rerun.device, (record.environment or {}).get("torch_threads") or 0)
    if record.environment is not None:
        for key in sorted(set(record.environment) | set(now)):
            if record.environment.get(key) != now.get(key):
                differences.append(f"{key}: {record.environment.get(key)!r} -> {now.get(key)!r}")
    for package in COMPARED_VERSIONS:
        if package in record.versions and record.versions.get(package) != rerun.versions.get(package):
            differences.append(f"{package} version: {record.versions.get(package)} -> {rerun.versions.get(package)}")
    if record.environment is None:
        return None, differences
    return not differences, differences


#: ``spread_verdict``'s bounds on |rerun - recorded| / seed std
SEEDS_DOMINATE_BELOW, ENVIRONMENT_DOMINATES_FROM = 0.5, 1.0


def spread_verdict(fractions: list[float]) -> str:
    """Which spread dominates, from the metrics' |difference| / seed std of one rerun: ``seeds`` when
    every fraction is below 0.5 (the rerun on another machine moves a metric by less than half a seed's
    spread, so intervals over seeds cover it), ``environment`` when any reaches 1 (the environment moves
    a metric as much as a new seed: runs from different machines should not be pooled), else ``both``."""
    largest = max((abs(f) for f in fractions), default=None)
    if largest is None:
        return "unknown"
    if largest < SEEDS_DOMINATE_BELOW:
        return "seeds"
    return "environment" if largest >= ENVIRONMENT_DOMINATES_FROM else "both"


@dataclasses.dataclass
class Reproduction:
    """A committed ``reproduce.json`` beside a run's record: the run's identity and the fraction of the
    seed spread each metric moved by."""

    model: str
    profile: str
    config_hash: str
    seed: int
    fractions: dict[str, float]
    environment_matched: bool | None


def read_reproductions(out: Path, dataset: str) -> list[Reproduction]:
    """Every ``reproduce.json`` beside a run record of ``dataset`` under ``out`` (JSON only; a file that
    is not a report is left out with a warning)."""
    import json

    found = []
    for path in sorted((Path(out) / "runs" / dataset).glob(f"**/{REPORT_JSON}")):
        try:
            record = read_record(path.parent)
            data = json.loads(path.read_text(encoding="utf-8"))
            fractions = {row["metric"]: float(row["fraction_of_seed_spread"]) for row in data["rows"]
                         if isinstance(row, dict) and isinstance(row.get("fraction_of_seed_spread"), (int, float))}
            matched = data.get("environment_matched")
        except (OSError, ValueError, KeyError, TypeError, RecordError) as exc:
            log.warning("left out of the leaderboard footers, not a reproduction report: %s (%s)", path, exc)
            continue
        if record is not None:
            found.append(Reproduction(record.model, record.profile, record.config_hash, record.seed, fractions,
                                      matched if isinstance(matched, bool) else None))
    return found
