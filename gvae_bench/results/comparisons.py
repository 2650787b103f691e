"""The tidy table of every run and the pairwise comparisons every leaderboard is read with.

``runs_frame``: one row per run and metric (``leaderboards/<dataset>/runs.csv``), from which every
other table of the dataset is derived; it reads straight into pandas.

``table_tests``: for one leaderboard, each metric and each pair of its measured rows under the
same profile and the same evaluation protocol (:func:`evaluation_protocol`: sample counts, k,
AIS settings, the classifier that scored it), the difference of means with its 95 % interval and
the test (``gvae_bench.results.stats``: the paired t-test by seed when both rows ran the same seeds,
because the runs of one seed share their real evaluation subsets; else Welch's t-test).
``adjust_families`` then gives each test its role and Holm family: a test the study protocol
declares (``gvae_bench.results.protocol``) takes the confirmatory family's values (``gvae_bench.results.confirmatory``);
every other test is exploratory, Holm over the distinct pairs of one metric and profile of the
dataset, whichever tables show them (and the pairs of one model under two profiles, per metric).
``finish_table`` makes the bold rows ("best, or not separated from the best") and the rank groups
(a compact letter display: rows sharing a letter are not separated) from the adjusted verdicts,
separately for each evaluation protocol: rows measured under different protocols never share a
bold or a letter. Runs of one row scored under different protocols (another classifier) are not
pooled; rows scored under different protocols are not compared, and the table says why.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gvae_bench.results.eval_protocols import comparison_refusal, evaluation_protocol, pooling_refusal
from gvae_bench.results.protocol import CONFIRMATORY, EXPLORATORY
from gvae_bench.execution.records import RunRecord, RunStatus
from gvae_bench.results.stats import NAN, NO_TEST, Comparison, adjust, best_or_tied, compare, rank_groups

log = logging.getLogger(__name__)

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


RowKey = tuple[str, str, str]  # (model, profile, config hash)


@dataclass
class PairTest:
    """One pair of rows on one metric: the test, and (after :func:`adjust_families`) its role,
    the protocol it answers and the Holm family it was adjusted in."""

    table: str
    metric: str
    profile: str
    label_a: str
    label_b: str
    key_a: RowKey
    key_b: RowKey
    comparison: Comparison
    eval_protocol: str = ""
    role: str = EXPLORATORY
    protocol: str = ""
    family: str = ""


@dataclass
class TableTests:
    """The unadjusted tests of one table, and per (metric, profile) its rows split by evaluation
    protocol: a list of (protocol, {row label: mean}), the largest part first."""

    table: str
    tests: list[PairTest]
    partitions: dict[tuple[str, str], list[tuple[str, dict[str, float]]]]
    directions: dict[str, bool]
    unranked: set[str]


def unranked_metrics(records: list[RunRecord]) -> set[str]:
    """The metrics recorded as not ranked (``Metric.ranked`` False: a target value, not an end, is best)."""
    return {name for record in records for name, result in record.metrics.items() if result.get("ranked") is False}


@dataclass
class _Cell:
    values: list[float]
    seeds: list[int]
    eval_protocol: str
    refusal: str


def _cell(group: list[RunRecord], name: str, label: str) -> _Cell:
    """The metric's values over the finished runs of one row, their seeds (for the paired test),
    the evaluation protocol they share, or why they are not pooled."""
    runs = [r for r in group if r.status == RunStatus.FINISHED and (r.metrics.get(name) or {}).get("value") is not None]
    refusal = pooling_refusal(runs, name, label)
    protocol = "" if refusal or not runs else evaluation_protocol(runs[0], name)
    return _Cell([float(r.metrics[name]["value"]) for r in runs], [r.seed for r in runs], protocol, refusal)


def refused(a: _Cell | None, b: _Cell | None, higher: bool, reason: str) -> Comparison:
    """A comparison that is not made, with its reason (test "none", no p, no interval)."""
    def mean(cell: _Cell | None) -> float:
        return sum(cell.values) / len(cell.values) if cell and cell.values and not cell.refusal else NAN
    mean_a, mean_b = mean(a), mean(b)
    return Comparison(mean_a=mean_a, mean_b=mean_b, n_a=len(a.values) if a else 0, n_b=len(b.values) if b else 0,
                      difference=mean_a - mean_b, low=NAN, high=NAN, confidence=1 - ALPHA, test=NO_TEST,
                      p_value=NAN, higher_is_better=higher, reason=reason)


def _pair(a: _Cell, b: _Cell, higher: bool) -> tuple[Comparison, str]:
    reason = "; ".join(f"{side} {c.refusal}" for side, c in (("A", a), ("B", b)) if c.refusal)
    reason = reason or comparison_refusal(a.eval_protocol, b.eval_protocol)
    if reason:
        return refused(a, b, higher, reason), ""
    return compare(a.values, b.values, higher, a_seeds=a.seeds, b_seeds=b.seeds), a.eval_protocol


def table_tests(records: list[RunRecord], table: str, names: list[str], directions: dict[str, bool]) -> TableTests:
    """Every pair of measured rows of ``table`` (grouped by model, profile and config hash), per
    metric in ``names``, under the same profile, and each model against itself across profiles;
    unadjusted. Rows whose protocols differ get a test "none" with the reason."""
    groups: dict[RowKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model, record.profile, record.config_hash)].append(record)
    per_profile: dict[str, list[RowKey]] = defaultdict(list)
    for key in sorted(groups):
        per_profile[key[1]].append(key)
    tests: list[PairTest] = []
    partitions: dict[tuple[str, str], list[tuple[str, dict[str, float]]]] = {}
    for profile, keys in per_profile.items():
        models = [k[0] for k in keys]
        labels = {k: row_label(k[0], groups[k][0].latent_dim, k[2], models.count(k[0]) > 1) for k in keys}
        for name in names:
            cells = {key: _cell(groups[key], name, labels[key]) for key in keys}
            present = [key for key in keys if cells[key].values]
            parts: dict[str, dict[str, float]] = {}
            for key in present:
                if not cells[key].refusal:
                    values = cells[key].values
                    parts.setdefault(cells[key].eval_protocol, {})[labels[key]] = sum(values) / len(values)
            partitions[(name, profile)] = sorted(parts.items(), key=lambda item: -len(item[1]))
            for a, b in itertools.combinations(present, 2):
                comparison, protocol = _pair(cells[a], cells[b], directions[name])
                tests.append(PairTest(table, name, profile, labels[a], labels[b], a, b, comparison, protocol))
    by_model: dict[str, list[RowKey]] = defaultdict(list)
    for key in sorted(groups):
        by_model[key[0]].append(key)
    for name in names:
        for model, keys in by_model.items():
            profiles = [k[1] for k in keys]
            keys = [k for k in keys if profiles.count(k[1]) == 1]
            for a, b in itertools.combinations(keys, 2):
                cell_a, cell_b = _cell(groups[a], name, f"{model} ({a[1]})"), _cell(groups[b], name, f"{model} ({b[1]})")
                if cell_a.values and cell_b.values:
                    comparison, protocol = _pair(cell_a, cell_b, directions[name])
                    tests.append(PairTest(table, name, ACROSS_PROFILES, f"{model} ({a[1]})", f"{model} ({b[1]})",
                                          a, b, comparison, protocol))
    return TableTests(table, tests, partitions, dict(directions), unranked_metrics(records))


#: the ``profile`` of the pairs that compare one model with itself under two profiles
ACROSS_PROFILES = "across profiles"
#: what a confirmatory test is looked up by: (metric, row key A, row key B)
ConfirmatoryKey = tuple[str, RowKey, RowKey]


def adjust_families(tests: list[PairTest], confirmatory: dict[ConfirmatoryKey, tuple[Comparison, str]] | None = None,
                    protocol: str = "") -> None:
    """Give every test its role, protocol and Holm-adjusted p (in place).

    A test whose (metric, rows) is in ``confirmatory`` (the protocol's family, already adjusted
    across the whole study: :mod:`gvae_bench.results.confirmatory`) takes that comparison, role
    ``confirmatory``. Every other test is ``exploratory``: Holm over the distinct pairs of rows of
    one metric and profile (tests of one pair shown in two tables count once, so they get one
    adjusted p), and over the model-against-itself pairs of one metric (profile ``across profiles``).
    """
    confirmatory = confirmatory or {}
    families: dict[tuple[str, str], dict[tuple[RowKey, RowKey], Comparison]] = defaultdict(dict)
    for test in tests:
        test.protocol = protocol
        found = confirmatory.get((test.metric, test.key_a, test.key_b))
        if found is not None and test.profile != ACROSS_PROFILES:
            test.comparison, test.family = found
            test.role = CONFIRMATORY
        else:
            test.role = EXPLORATORY
            families[(test.metric, test.profile)][(test.key_a, test.key_b)] = test.comparison
    adjusted: dict[tuple[str, str, RowKey, RowKey], Comparison] = {}
    names: dict[tuple[str, str], str] = {}
    for (metric, profile), pairs in families.items():
        m = sum(math.isfinite(c.p_value) for c in pairs.values())
        names[(metric, profile)] = (f"exploratory: Holm over the {m} tested pair(s) of rows of `{metric}` "
                                    + ("across profiles" if profile == ACROSS_PROFILES else f"under profile `{profile}`"))
        for pair, c in zip(pairs, adjust(list(pairs.values()), alpha=ALPHA)):
            adjusted[(metric, profile, *pair)] = c
    for test in tests:
        if test.role == EXPLORATORY:
            test.comparison = adjusted[(test.metric, test.profile, test.key_a, test.key_b)]
            test.family = names[(test.metric, test.profile)]
        if test.comparison.test == NO_TEST and _is_refusal(test.comparison.reason):
            test.comparison = dataclasses.replace(test.comparison, verdict="n/a")


def _is_refusal(reason: str) -> bool:
    """Whether a comparison was refused for mixed protocols (verdict n/a), not for too few seeds (no test)."""
    return "not compared" in reason or "not pooled" in reason


def _unranked_verdict(verdict: str) -> str:
    return {"A better": "A higher", "B better": "B higher"}.get(verdict, verdict)


def finish_table(tested: TableTests) -> TableComparisons:
    """Bold rows and rank letters from the adjusted verdicts, one set per evaluation protocol of a
    (metric, profile): letters of the second protocol's rows carry ``·2`` and so on, so rows of
    different protocols never share a letter or a bold; a metric not ranked gets neither."""
    result = TableComparisons(pairs=pd.DataFrame())
    separated: dict[tuple[str, str], set[frozenset[str]]] = defaultdict(set)
    for test in tested.tests:
        if test.comparison.verdict in ("A better", "B better"):
            separated[(test.metric, test.profile)].add(frozenset((test.label_a, test.label_b)))
    for (metric, profile), parts in tested.partitions.items():
        if metric in tested.unranked or not parts:
            continue
        higher, sep = tested.directions[metric], separated[(metric, profile)]
        bold: set[str] = set()
        letters: dict[str, str] = {}
        for i, (_, means) in enumerate(parts):
            labels = list(means)
            bold |= best_or_tied(labels, means, higher, sep)
            suffix = "" if i == 0 else f"·{i + 1}"
            letters.update({label: text + suffix for label, text in rank_groups(labels, means, higher, sep).items()})
        result.bold[(metric, profile)] = bold
        result.letters[(metric, profile)] = letters
    rows = []
    for test in tested.tests:
        c = test.comparison
        if test.metric in tested.unranked:
            c = dataclasses.replace(c, verdict=_unranked_verdict(c.verdict))
        rows.append(_pair_row(test, c, test.metric not in tested.unranked))
    result.pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    return result


def compare_table(records: list[RunRecord], table: str, names: list[str],
                  directions: dict[str, bool]) -> TableComparisons:
    """One table's comparisons on their own (every test exploratory, families within this table)."""
    tested = table_tests(records, table, names, directions)
    adjust_families(tested.tests)
    return finish_table(tested)


PAIR_COLUMNS = ["table", "metric", "profile", "model_a", "model_b", "higher_is_better", "n_a", "n_b", "mean_a",
                "mean_b", "difference", "ci_low", "ci_high", "test", "p_value", "p_holm", "verdict", "role",
                "protocol", "family", "evaluation_protocol", "note", "ranked"]


def _pair_row(test: PairTest, c: Comparison, ranked: bool) -> dict[str, Any]:
    return {"table": test.table, "metric": test.metric, "profile": test.profile, "model_a": test.label_a,
            "model_b": test.label_b, "higher_is_better": c.higher_is_better, "n_a": c.n_a, "n_b": c.n_b,
            "mean_a": c.mean_a, "mean_b": c.mean_b, "difference": c.difference, "ci_low": c.low, "ci_high": c.high,
            "test": c.test, "p_value": c.p_value, "p_holm": c.p_adjusted, "verdict": c.verdict, "role": test.role,
            "protocol": test.protocol or "none", "family": test.family, "evaluation_protocol": test.eval_protocol,
            "note": "; ".join(t for t in (c.reason, c.note) if t), "ranked": ranked}


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}"


def comparisons_markdown(dataset: str, frames: list[pd.DataFrame], built: str, protocol: str = "") -> str:
    """``comparisons.md``: one section per table, metric and profile, a line per pair of rows."""
    lines = [f"# {dataset}: which differences hold", "",
             f"- each pair of measured rows under one profile and one evaluation protocol, per table and metric; "
             f"built {built}; study protocol: {protocol or 'none (every comparison exploratory)'}",
             "- difference = mean A - mean B with its 95 % interval; test: paired t by seed where both rows ran "
             "the same seeds (their runs share the real evaluation subsets), else Welch's t; verdict at "
             f"{ALPHA} on the Holm-adjusted p",
             "- role `confirmatory`: a comparison the study protocol declared before its runs (its models, primary "
             "metrics, profile and seeds only; Holm over the whole declared family, across datasets and metrics, "
             "so it shows the same adjusted p in every table and dataset; the family is in `confirmatory.md` of the "
             "results folder); `exploratory`: everything else, Holm over the distinct pairs of rows of one "
             "metric and profile of this dataset, whichever tables show them (docs/protocol.md)",
             f"- profile `{ACROSS_PROFILES}`: each model against itself under another profile (its tuned row "
             "against its hand-set one: how far the tuning moved it), Holm over those pairs of one metric",
             "- `n/a`: not compared (rows scored under different evaluation protocols, e.g. another classifier, "
             "or a row whose seeds were; the note says which)",
             "- the seeds a study needs are decided before it runs (the protocol's a-priori power table), not "
             "from the effects observed here", ""]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else pd.DataFrame()
    if not len(frame):
        return "\n".join(lines + ["No pair of rows has values to compare.", ""])
    for (table, metric, profile), part in frame.groupby(["table", "metric", "profile"], sort=True):
        arrow = "higher is better" if part.higher_is_better.iloc[0] else "lower is better"
        if "ranked" in part and not bool(part.ranked.iloc[0]):
            arrow = "not ranked: its best is a target value"
        lines += [f"## {table} · `{metric}` ({arrow}) · profile `{profile}`", "",
                  "| A | B | n | difference [95 % CI] | test | p | p (Holm) | verdict | role | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, row in part.iterrows():
            lines.append(f"| {row.model_a} | {row.model_b} | {int(row.n_a)}, {int(row.n_b)} | "
                         f"{_number(row.difference)} [{_number(row.ci_low)}, {_number(row.ci_high)}] | {row.test} | "
                         f"{_number(row.p_value, 3)} | {_number(row.p_holm, 3)} | {row.verdict} | {row.role} | "
                         f"{row.note if isinstance(row.note, str) else ''} |")
        lines.append("")
    return "\n".join(lines)
