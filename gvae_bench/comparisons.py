"""The tidy table of every run and the pairwise comparisons every leaderboard is read with.

``runs_frame``: one row per run and metric (``leaderboards/<dataset>/runs.csv``), from which every
other table of the dataset is derived; it reads straight into pandas.

``compare_table``: for one leaderboard, each metric and each pair of its measured rows under the
same profile, the difference of means with its 95 % interval, the test (``gvae_bench.stats``:
the paired t-test by seed when both rows ran the same seeds, because the runs of one seed share
their real evaluation subsets; else Welch's t-test), its p-value, the p-value adjusted by Holm
over the pairs of that metric and profile, a verdict at 0.05 that respects the metric's
direction, and the seeds per model a true difference of the observed size would need for 80 %
power. The same comparisons decide which rows are bold ("best, or not separated from the best")
and each row's rank group (a compact letter display: rows sharing a letter are not separated).
"""

from __future__ import annotations

import dataclasses

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gvae_bench.records import RunRecord, RunStatus
from gvae_bench.stats import Comparison, adjust, best_or_tied, compare, rank_groups

ALPHA = 0.05
RUN_COLUMNS = ["dataset", "model", "profile", "config_hash", "latent_dim", "seed", "metric", "value",
               "reference", "higher_is_better", "ranked", "n_generated", "n_real", "status", "commit", "tables"]


def commit_of(record: RunRecord) -> str:
    """The harness's commit behind a record (10 hex digits, ``+dirty`` for uncommitted changes),
    or ``v<version>`` for an installed harness."""
    git = record.git or {}
    if git.get("commit", "unknown") == "unknown" and git.get("version"):
        return f"v{git['version']}"
    return str(git.get("commit", "unknown"))[:10] + ("+dirty" if git.get("dirty") else "")


def runs_frame(records: list[RunRecord], dataset: str) -> pd.DataFrame:
    """One row per run and metric value (runs that are not finished: one row with no metric)."""
    rows: list[dict[str, Any]] = []
    for record in sorted(records, key=lambda r: (r.model, r.profile, r.config_hash, r.seed)):
        base = {"dataset": dataset, "model": record.model, "profile": record.profile,
                "config_hash": record.config_hash, "latent_dim": record.latent_dim, "seed": record.seed,
                "status": record.status.value, "commit": commit_of(record)}
        values = {name: result for name, result in record.metrics.items() if result.get("value") is not None}
        if record.status != RunStatus.FINISHED or not values:
            rows.append({**base, "metric": None, "value": math.nan})
            continue
        for name, result in sorted(values.items()):
            table = result.get("table")
            rows.append({**base, "metric": name, "value": float(result["value"]),
                         "reference": result.get("reference"), "higher_is_better": bool(result["higher_is_better"]),
                         "ranked": result.get("ranked") is not False, "n_generated": result.get("n_generated"), "n_real": result.get("n_real"),
                         "tables": table if isinstance(table, str) else " ".join(table or ())})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def row_label(model: str, latent: Any, config_hash: str, ambiguous: bool) -> str:
    """How a leaderboard row is named in comparisons: the model, with its latent size (or config)
    where the model has several rows under one profile."""
    if not ambiguous:
        return model
    return f"{model} (latent {int(latent)})" if latent is not None and not pd.isna(latent) else f"{model} ({config_hash})"


@dataclass
class TableComparisons:
    """The comparisons of one leaderboard: a frame of pairs, and per (metric, profile) the bold
    rows and each row's rank letters, keyed by row label."""

    pairs: pd.DataFrame
    bold: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    letters: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def unranked_metrics(records: list[RunRecord]) -> set[str]:
    """The metrics recorded as not ranked (``Metric.ranked`` False: a target value, not an end, is best)."""
    return {name for record in records for name, result in record.metrics.items() if result.get("ranked") is False}


def _values_and_seeds(group: list[RunRecord], name: str) -> tuple[list[float], list[int]]:
    """The metric's values over the finished runs of one row, and their seeds (for the paired test)."""
    runs = [r for r in group if r.status == RunStatus.FINISHED and (r.metrics.get(name) or {}).get("value") is not None]
    return [float(r.metrics[name]["value"]) for r in runs], [r.seed for r in runs]


def _unranked_verdict(verdict: str) -> str:
    return {"A better": "A higher", "B better": "B higher"}.get(verdict, verdict)


def compare_table(records: list[RunRecord], table: str, names: list[str],
                  directions: dict[str, bool]) -> TableComparisons:
    """Every pair of measured rows of ``table`` (grouped by model, profile and config hash), per
    metric in ``names``, under the same profile. A metric not ranked (``unranked_metrics``) gets no
    bold rows or rank letters, and its verdicts say which row is higher, not better."""
    unranked = unranked_metrics(records)
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model, record.profile, record.config_hash)].append(record)
    per_profile: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in sorted(groups):
        per_profile[key[1]].append(key)
    result = TableComparisons(pairs=pd.DataFrame())
    rows: list[dict[str, Any]] = []
    for profile, keys in per_profile.items():
        models = [k[0] for k in keys]
        labels = {k: row_label(k[0], groups[k][0].latent_dim, k[2], models.count(k[0]) > 1) for k in keys}
        for name in names:
            higher = directions[name]
            cells = {}
            for key in keys:
                cells[labels[key]] = _values_and_seeds(groups[key], name)
            present = [label for label, (values, _) in cells.items() if values]
            pairs = list(itertools.combinations(present, 2))
            compared = adjust([compare(cells[a][0], cells[b][0], higher, a_seeds=cells[a][1], b_seeds=cells[b][1])
                               for a, b in pairs], alpha=ALPHA)
            separated = {frozenset(pair) for pair, c in zip(pairs, compared) if c.verdict in ("A better", "B better")}
            means = {label: sum(cells[label][0]) / len(cells[label][0]) for label in present}
            if name in unranked:
                compared = [dataclasses.replace(c, verdict=_unranked_verdict(c.verdict)) for c in compared]
            elif present:
                result.bold[(name, profile)] = best_or_tied(present, means, higher, separated)
                result.letters[(name, profile)] = rank_groups(present, means, higher, separated)
            rows += [_pair_row(table, name, profile, a, b, c) for (a, b), c in zip(pairs, compared)]
    rows += _across_profiles(groups, table, names, directions)
    for row in rows:
        row["ranked"] = row["metric"] not in unranked
    result.pairs = pd.DataFrame(rows)
    return result


#: the ``profile`` of the pairs that compare one model with itself under two profiles
ACROSS_PROFILES = "across profiles"


def _across_profiles(groups: dict[tuple[str, str, str], list[RunRecord]], table: str, names: list[str],
                     directions: dict[str, bool]) -> list[dict[str, Any]]:
    """Each model against itself under each other profile where it has one row per profile (e.g. its
    ``tuned`` row against its hand-set ``quick`` row: how far the tuning moved it), per metric, Holm
    over the pairs of that metric; rows named ``model (profile)``, profile ``across profiles``."""
    by_model: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in sorted(groups):
        by_model[key[0]].append(key)
    rows = []
    for name in names:
        pairs, compared = [], []
        for model, keys in by_model.items():
            profiles = [k[1] for k in keys]
            keys = [k for k in keys if profiles.count(k[1]) == 1]
            for a, b in itertools.combinations(keys, 2):
                cells = []
                for key in (a, b):
                    cells.append(_values_and_seeds(groups[key], name))
                if cells[0][0] and cells[1][0]:
                    pairs.append((f"{model} ({a[1]})", f"{model} ({b[1]})"))
                    compared.append(compare(cells[0][0], cells[1][0], directions[name], a_seeds=cells[0][1],
                                            b_seeds=cells[1][1]))
        compared = adjust(compared, alpha=ALPHA)
        if name in unranked_metrics([r for group in groups.values() for r in group]):
            compared = [dataclasses.replace(c, verdict=_unranked_verdict(c.verdict)) for c in compared]
        rows += [_pair_row(table, name, ACROSS_PROFILES, a, b, c) for (a, b), c in zip(pairs, compared)]
    return rows


def _pair_row(table: str, metric: str, profile: str, a: str, b: str, c: Comparison) -> dict[str, Any]:
    return {"table": table, "metric": metric, "profile": profile, "model_a": a, "model_b": b,
            "higher_is_better": c.higher_is_better, "n_a": c.n_a, "n_b": c.n_b, "mean_a": c.mean_a,
            "mean_b": c.mean_b, "difference": c.difference, "ci_low": c.low, "ci_high": c.high,
            "test": c.test, "p_value": c.p_value, "p_holm": c.p_adjusted, "verdict": c.verdict,
            "seeds_for_power": c.seeds_for_power, "note": "; ".join(t for t in (c.reason, c.note, c.power_reason) if t)}


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}"


def comparisons_markdown(dataset: str, frames: list[pd.DataFrame], built: str) -> str:
    """``comparisons.md``: one section per table and metric, a line per pair of rows."""
    lines = [f"# {dataset}: which differences hold", "",
             f"- each pair of measured rows under one profile, per table and metric; built {built}",
             "- difference = mean A - mean B with its 95 % interval; test: paired t by seed where both rows ran "
             "the same seeds (their runs share the real evaluation subsets), else Welch's t; p adjusted by Holm "
             f"over the pairs of that metric and profile; verdict at {ALPHA}",
             f"- profile `{ACROSS_PROFILES}`: each model against itself under another profile (its tuned row "
             "against its hand-set one: how far the tuning moved it)",
             "- seeds for 80 % power: seeds per model a true difference of the observed size would need "
             "(two-sided t-test at 0.05, Cohen's d from the pooled seed spread)",
             "- with 3 seeds per model an exact permutation test cannot reach 0.05 (its smallest two-sided p is "
             "0.1), and a t-test has little power: `not separated` at n = 3 usually means too few seeds, not equal "
             "models", ""]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else pd.DataFrame()
    if not len(frame):
        return "\n".join(lines + ["No pair of rows has values to compare.", ""])
    for (table, metric, profile), part in frame.groupby(["table", "metric", "profile"], sort=True):
        arrow = "higher is better" if part.higher_is_better.iloc[0] else "lower is better"
        if "ranked" in part and not bool(part.ranked.iloc[0]):
            arrow = "not ranked: its best is a target value"
        lines += [f"## {table} · `{metric}` ({arrow}) · profile `{profile}`", "",
                  "| A | B | n | difference [95 % CI] | test | p | p (Holm) | verdict | seeds for 80 % power | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, row in part.iterrows():
            power = "–" if row.seeds_for_power is None or pd.isna(row.seeds_for_power) else str(int(row.seeds_for_power))
            lines.append(f"| {row.model_a} | {row.model_b} | {int(row.n_a)}, {int(row.n_b)} | "
                         f"{_number(row.difference)} [{_number(row.ci_low)}, {_number(row.ci_high)}] | {row.test} | "
                         f"{_number(row.p_value, 3)} | {_number(row.p_holm, 3)} | {row.verdict} | {power} | "
                         f"{row.note if isinstance(row.note, str) else ''} |")
        lines.append("")
    return "\n".join(lines)
