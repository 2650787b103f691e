"""Which model is better overall, with stated confidence: rliable's aggregate over benchmarks.

Agarwal et al. 2021 ("Deep Reinforcement Learning at the Edge of the Statistical Precipice",
NeurIPS; the ``rliable`` package) give three few-run summaries, all with **stratified bootstrap**
intervals: each benchmark's runs (here: its declared seeds) are resampled with replacement as
their own sample, independently of the other benchmarks, so every replicate keeps every benchmark.

- **Interquartile mean (IQM)** of a normalised score over all runs of all benchmarks: the mean of
  the middle 50 % (``scipy.stats.trim_mean(x, 0.25)`` over the pooled runs x benchmarks, as
  rliable's ``aggregate_iqm``); robust to one outlying run, less noisy than the median.
- **Probability of improvement** P(A > B) on a metric: for each benchmark the Mann-Whitney
  U / (n_A n_B) = P(X > Y) + P(X = Y) / 2 for a random run X of A and Y of B, averaged over the
  benchmarks (rliable's ``probability_of_improvement``); A's and B's runs are resampled
  independently within each benchmark. For a lower-is-better metric the runs are negated.
- **Performance profile**: for each threshold τ, the fraction of runs with score > τ, averaged
  over benchmarks (rliable's run-score distribution), with its pointwise interval.

rliable 1.2.0 needs ``arch`` < 8, and ``arch`` 7 does not import with pandas 3, which this project
uses; the same stratified bootstrap is therefore made with ``scipy.stats.bootstrap`` (one sample
per benchmark, ``method="percentile"``, rliable's default), and ``tests/test_aggregate.py`` checks
the point estimates and intervals against rliable's on a fixed case. The score is the protocol's
``[aggregate] score`` (coverage: already in [0, 1], higher is better).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from gvae_bench.atomic import atomic_write_text
from gvae_bench.results.protocol import Protocol
from gvae_bench.execution.records import RunRecord, now

log = logging.getLogger(__name__)

AGGREGATE_DIR = "aggregate"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its stratified bootstrap interval."""

    value: float
    low: float
    high: float


def _bootstrap(samples: list[np.ndarray], statistic: Any, reps: int, confidence: float, seed: int) -> Estimate:
    value = float(statistic(*samples, axis=-1))
    if all(s.size < 2 for s in samples):  # nothing to resample: the interval is the value
        return Estimate(value, value, value)
    result = st.bootstrap(tuple(samples), statistic, n_resamples=reps, confidence_level=confidence,
                          method="percentile", vectorized=True, axis=-1, rng=np.random.default_rng(seed))
    return Estimate(value, float(result.confidence_interval.low), float(result.confidence_interval.high))


def _iqm(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return st.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)


def interquartile_mean(scores: list[np.ndarray], reps: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> Estimate:
    """IQM over the runs of every benchmark (``scores``: one array of runs per benchmark)."""
    return _bootstrap([np.asarray(s, dtype=float) for s in scores], _iqm, reps, confidence, seed)


def _improvement(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over benchmarks of P(X > Y) + P(X = Y) / 2; samples are x_1, y_1, x_2, y_2, ..."""
    per_task = []
    for x, y in zip(samples[0::2], samples[1::2]):
        greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
        equal = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
        per_task.append(greater + 0.5 * equal)
    return np.mean(per_task, axis=0)


def probability_of_improvement(a: list[np.ndarray], b: list[np.ndarray], higher_is_better: bool = True,
                               reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """P(A beats B) averaged over benchmarks (``a[i]``, ``b[i]``: the runs on benchmark i)."""
    sign = 1.0 if higher_is_better else -1.0
    samples = [sign * np.asarray(s, dtype=float) for pair in zip(a, b) for s in pair]
    return _bootstrap(samples, _improvement, reps, confidence, seed)


def performance_profile(scores: list[np.ndarray], taus: np.ndarray, reps: int = 2000, confidence: float = 0.95,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of runs above each τ (mean over benchmarks), with pointwise stratified intervals."""
    samples = [np.asarray(s, dtype=float) for s in scores]

    def profile(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.stack([np.mean([(x > t).mean(axis=axis) for x in xs], axis=0) for t in taus])

    value = profile(*samples)
    if all(s.size < 2 for s in samples):
        return value, value, value
    result = st.bootstrap(tuple(samples), profile, n_resamples=reps, confidence_level=confidence,
                          method="percentile", vectorized=True, axis=-1, rng=np.random.default_rng(seed))
    return value, np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def study_scores(records_by_dataset: dict[str, list[RunRecord]], protocol: Protocol, metric: str
                 ) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """model -> benchmark -> the metric's values over the declared runs, and notes on what is left out
    (a model with no declared run on a benchmark; a run scored under another protocol)."""
    from gvae_bench.results.comparisons import _cell
    from gvae_bench.results.release import declared_runs

    scores: dict[str, dict[str, np.ndarray]] = {m: {} for m in protocol.models}
    notes = []
    for dataset in protocol.datasets:
        records = records_by_dataset.get(dataset, [])
        for model in protocol.models:
            runs, why = declared_runs(records, protocol, model)
            cell = _cell(runs, metric, f"{dataset} {model}")
            if cell.refusal:
                notes.append(f"{dataset} {model} {metric}: {cell.refusal}")
            elif cell.values:
                scores[model][dataset] = np.asarray(cell.values)
            elif records:
                notes.append(f"{dataset} {model}: {why or f'no value of {metric}'}")
    return scores, notes


def _benchmarks(scores: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """The benchmarks every model has runs on (an aggregate needs the same benchmarks for all)."""
    sets = [set(per) for per in scores.values()]
    return sorted(set.intersection(*sets)) if sets else []


def aggregate_frames(records_by_dataset: dict[str, list[RunRecord]], protocol: Protocol
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, np.ndarray]], list[str], list[str]]:
    """The IQM table, the probability-of-improvement table, the scores, the benchmarks and notes."""
    spec = protocol.aggregate
    scores, notes = study_scores(records_by_dataset, protocol, spec.score)
    benchmarks = _benchmarks(scores)
    iqm_rows = []
    for model in protocol.models:
        if not benchmarks:
            break
        est = interquartile_mean([scores[model][b] for b in benchmarks], spec.bootstrap_reps, spec.confidence,
                                 spec.bootstrap_seed)
        iqm_rows.append({"model": model, "score": spec.score, "benchmarks": " ".join(benchmarks),
                         "runs": " ".join(str(scores[model][b].size) for b in benchmarks), "iqm": est.value,
                         "ci_low": est.low, "ci_high": est.high, "protocol": protocol.label})
    poi_rows = []
    metrics = sorted({spec.score, *protocol.primary_metrics})
    for metric in metrics:
        per, metric_notes = study_scores(records_by_dataset, protocol, metric)
        notes += [n for n in metric_notes if n not in notes]
        shared = _benchmarks(per)
        higher = _higher(records_by_dataset, metric)
        if not shared or higher is None:
            continue
        for a, b in itertools.combinations(sorted(protocol.models), 2):
            est = probability_of_improvement([per[a][x] for x in shared], [per[b][x] for x in shared], higher,
                                             spec.bootstrap_reps, spec.confidence, spec.bootstrap_seed)
            poi_rows.append({"metric": metric, "higher_is_better": higher, "model_a": a, "model_b": b,
                             "p_a_beats_b": est.value, "ci_low": est.low, "ci_high": est.high,
                             "benchmarks": " ".join(shared), "protocol": protocol.label})
    return pd.DataFrame(iqm_rows), pd.DataFrame(poi_rows), scores, benchmarks, notes


def _higher(records_by_dataset: dict[str, list[RunRecord]], metric: str) -> bool | None:
    for records in records_by_dataset.values():
        for record in records:
            result = record.metrics.get(metric) or {}
            if result.get("value") is not None:
                return bool(result["higher_is_better"])
    return None


def _plot_profiles(path: Path, scores: dict[str, dict[str, np.ndarray]], benchmarks: list[str], protocol: Protocol) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = protocol.aggregate
    taus = np.linspace(0.0, 1.0, 101)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    for model in protocol.models:
        value, low, high = performance_profile([scores[model][b] for b in benchmarks], taus, spec.bootstrap_reps,
                                               spec.confidence, spec.bootstrap_seed)
        line, = ax.plot(taus, value, label=model, lw=1.6)
        ax.fill_between(taus, low, high, color=line.get_color(), alpha=0.18, lw=0)
    ax.set_xlabel(f"normalised score τ ({spec.score})")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title(f"Performance profiles, {', '.join(benchmarks)} ({protocol.label})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _num(value: float) -> str:
    return f"{value:.3f}"


def aggregate_markdown(iqm: pd.DataFrame, poi: pd.DataFrame, benchmarks: list[str], notes: list[str],
                       protocol: Protocol) -> str:
    spec = protocol.aggregate
    conf = f"{spec.confidence:.0%}"
    lines = [f"# Across benchmarks: which model is better overall ({protocol.label})", "",
             f"- benchmarks: {', '.join(benchmarks) or 'none'}"
             + (" (only one benchmark has the declared runs so far: this is that benchmark's summary, not an "
                "aggregate over several)" if len(benchmarks) == 1 else ""),
             f"- runs: profile `{protocol.profile}`, declared seeds {' '.join(map(str, protocol.seeds))}, each "
             f"model at its profile's settings; built {now()}",
             f"- intervals: {conf} stratified bootstrap, percentile method, {spec.bootstrap_reps} replicates, "
             f"seed {spec.bootstrap_seed} (each benchmark's runs resampled on their own; rliable's method, Agarwal "
             "et al. 2021, made with scipy.stats.bootstrap; docs/protocol.md)",
             f"- IQM: interquartile mean of the normalised score `{spec.score}` over all runs of all benchmarks",
             "- P(A beats B): probability that a random run of A scores better than one of B on the same benchmark "
             "(ties count half), averaged over benchmarks; 0.5 = no tendency; lower-is-better metrics are negated",
             "- plot: `performance_profile.png`, the fraction of runs above each score with its pointwise interval",
             ""]
    lines += notes and ["Left out: " + "; ".join(notes), ""] or []
    if len(iqm):
        lines += [f"## Interquartile mean of `{spec.score}`", "", f"| model | runs per benchmark | IQM [{conf} CI] |",
                  "|---|---|---|"]
        for row in iqm.sort_values("iqm", ascending=False).itertuples():
            lines.append(f"| {row.model} | {row.runs} | {_num(row.iqm)} [{_num(row.ci_low)}, {_num(row.ci_high)}] |")
        lines.append("")
    if len(poi):
        lines += ["## Probability of improvement", "", f"| metric | A | B | P(A beats B) [{conf} CI] |",
                  "|---|---|---|---|"]
        for row in poi.itertuples():
            lines.append(f"| {row.metric} | {row.model_a} | {row.model_b} | {_num(row.p_a_beats_b)} "
                         f"[{_num(row.ci_low)}, {_num(row.ci_high)}] |")
        lines.append("")
    return "\n".join(lines)


def write_aggregate(out: Path, protocol: Protocol, records_by_dataset: dict[str, list[RunRecord]]) -> list[Path]:
    """``<out>/leaderboards/aggregate/``: aggregate.csv (IQM), probability_of_improvement.csv,
    aggregate.md and performance_profile.png; nothing when no declared run exists yet."""
    iqm, poi, scores, benchmarks, notes = aggregate_frames(records_by_dataset, protocol)
    if not len(iqm) and not len(poi):
        return []
    folder = Path(out) / "leaderboards" / AGGREGATE_DIR
    paths = [folder / "aggregate.csv", folder / "probability_of_improvement.csv", folder / "aggregate.md"]
    atomic_write_text(paths[0], iqm.to_csv(index=False))
    atomic_write_text(paths[1], poi.to_csv(index=False))
    atomic_write_text(paths[2], aggregate_markdown(iqm, poi, benchmarks, notes, protocol))
    if benchmarks:
        paths.append(folder / "performance_profile.png")
        _plot_profiles(paths[-1], scores, benchmarks, protocol)
    return paths
