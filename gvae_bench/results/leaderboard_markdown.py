"""The leaderboards' Markdown: one block per profile, each with its evaluation protocol beside it,
the interval method of each column, the likelihood protocol and the seeds-or-environment footer."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import pandas as pd

from gvae_bench.results.comparisons import unranked_metrics
from gvae_bench.execution.records import RunRecord, now
from gvae_bench.results.stats import range_of


def _cell(mean: float, low: float, high: float, n: Any) -> str:
    """``mean [low, high] (n=k)``: the mean over seeds and its 95 % interval; one seed has no interval."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = f"{mean:.4g}"
    if isinstance(n, (int, float)) and not math.isnan(n):
        text += f" [{low:.4g}, {high:.4g}]" if not math.isnan(low) else ""
        text += f" (n={int(n)}{', no interval' if int(n) == 1 else ''})"
    return text


def _protocol_lines(records: list[RunRecord], names: list[str]) -> list[str]:
    """The observation model and proposal behind each model's likelihood values (from the details)."""
    found: dict[str, set[str]] = defaultdict(set)
    data: set[str] = set()
    for record in records:
        for name in names:
            details = (record.metrics.get(name) or {}).get("details") or {}
            if "observation_model" in details:
                proposal = f"; proposal {details['proposal']}" if details.get("proposal") else ""
                found[record.model].add(f"{details['observation_model']}{proposal}")
                data.add(details.get("data", ""))
    if not found:
        return []
    lines = [f"- likelihood data: {'; '.join(sorted(d for d in data if d))}"]
    lines += [f"- `{model}`: {' | '.join(sorted(texts))}" for model, texts in sorted(found.items())]
    return lines


def _spread_lines(frame: pd.DataFrame, names: list[str], reproductions: list[Any]) -> list[str]:
    """The footer on seeds against environment: for each reproduced run of a row of this table
    (``runner.py reproduce``), each column's rerun difference as a fraction of the seed std, and
    which spread dominates (``gvae_bench.results.reproduce.spread_verdict``)."""
    from gvae_bench.results.reproduce import ENVIRONMENT_DOMINATES_FROM, SEEDS_DOMINATE_BELOW, spread_verdict

    measured = frame[frame.row_kind == "measured"]
    rows = {(r.model, r.profile, r.config_hash) for r in measured.itertuples()}
    lines = []
    for rep in reproductions:
        if (rep.model, rep.profile, rep.config_hash) not in rows:
            continue
        shown = {name: rep.fractions[name] for name in names if name in rep.fractions}
        if not shown:
            continue
        verdict = spread_verdict(list(shown.values()))
        reading = {"seeds": "the seeds' spread dominates: the intervals cover the rerun",
                   "environment": "the environment dominates: do not pool runs from different machines",
                   "both": "the environment's effect is comparable to a seed's"}[verdict]
        environment = {True: "same environment", False: "another environment", None: "environment not recorded"}
        fractions = ", ".join(f"{name} {value:+.2f}" for name, value in shown.items())
        lines.append(f"- seeds or environment: `{rep.model}` {rep.profile}-{rep.config_hash} seed {rep.seed} rerun "
                     f"by `runner.py reproduce` ({environment[rep.environment_matched]}): (rerun - recorded) / seed "
                     f"std {fractions}; {reading} (seeds: every |fraction| < {SEEDS_DOMINATE_BELOW}; environment: "
                     f"any >= {ENVIRONMENT_DOMINATES_FROM})")
    if not lines:
        return []
    return ["", *lines]


def _interval_line(names: list[str]) -> str:
    scales: dict[str, list[str]] = {}
    for name in names:
        bounds = range_of(name)
        text = {"real": "on the metric's own scale (its estimator's range is unbounded"
                        + (": an unbiased estimator can be negative)" if name in ("mmd", "kid") else ")"),
                "logit": f"on the logit scale of its range [{bounds.low:g}, {bounds.high:g}]",
                "log": f"on the log scale of its distance to its lower bound {bounds.low:g}",
                }.get(bounds.scale, f"on the log scale of its distance to its upper bound {bounds.high:g}")
        scales.setdefault(text, []).append(f"`{name}`")
    return ("- intervals: 95 %, Student t over seeds, made " + "; ".join(
        f"{text} for {', '.join(found)}" for text, found in scales.items())
        + " and mapped back, so none leaves its metric's range (docs/protocol.md)")


def _row_line(row: Any, names: list[str], several: bool) -> str:
    cells = []
    for name in names:
        cell = _cell(row[f"{name}_mean"], row[f"{name}_ci_low"], row[f"{name}_ci_high"], row[f"{name}_n"])
        note = row.get(f"{name}_note", "")
        if row.row_kind == "measured" and not row.n_finished:
            cell = "–"  # no finished seed yet
        elif row.row_kind == "measured" and not row.get(f"{name}_evaluated", True):
            cell = "not evaluated"
        elif row.row_kind == "measured" and isinstance(note, str) and note:
            cell = f"n/a ({note})"
        elif row.row_kind == "measured" and several:
            cell = f"**{cell}**" if row[f"{name}_bold"] else cell
            cell += f" {row[f'{name}_group']}" if row[f"{name}_group"] else ""
        cells.append(cell)
    if row.row_kind == "measured":
        status = " ".join([row.seeds] + [f"({int(row[f'n_{kind}'])} {kind})" for kind in ("running", "diverged", "failed")
                                         if row[f"n_{kind}"]]).strip()
        latent = "" if pd.isna(row.latent_dim) else int(row.latent_dim)
        return f"| {row.model} | {latent} | {row.profile} | {row.config_hash} | {status} | " + " | ".join(cells) + " |"
    return f"| *{row.model}* (reference) | | {row.profile} | | | " + " | ".join(cells) + " |"


def _block_protocol(block: pd.DataFrame, names: list[str]) -> str:
    """The evaluation protocol(s) of one profile's block, metric by metric."""
    found: dict[str, list[str]] = {}
    for name in names:
        texts = sorted({t for t in block.get(f"{name}_protocol", pd.Series(dtype=str)) if isinstance(t, str) and t})
        if texts:
            found.setdefault(" | ".join(texts), []).append(f"`{name}`")
    return "; ".join(f"{', '.join(metrics)}: {text}" for text, metrics in found.items())


def _not_estimated_lines(records: list[RunRecord], names: list[str], table: str) -> list[str]:
    """A line for each metric of ``table`` that no run could estimate, with the reason its results
    give (a covariance from too few samples, say); metrics that do not apply (``needs ...``) are left out."""
    from gvae_bench.results.collect import tables_of

    reasons: dict[str, set[str]] = {}
    for record in records:
        for name, result in record.metrics.items():
            na = result.get("na")
            if name in names or result.get("value") is not None or table not in tables_of(result):
                continue
            if isinstance(na, str) and na and not na.startswith("needs "):
                reasons.setdefault(name, set()).add(na)
    return [f"- `{name}`: n/a in every run: {'; '.join(sorted(texts))}" for name, texts in sorted(reasons.items())]


def cpu_line(records: list[RunRecord]) -> str:
    """The CPU models the runs were made on, with their counts. The CPU model is part of what makes a
    run: the same commit, seed and thread count give other numbers on another one
    (results/reference/cross_cpu), so a table over several says so."""
    counts = Counter(str((record.environment or {}).get("cpu") or "not recorded") for record in records)
    line = "- CPU model(s) of the runs: " + ", ".join(f"{cpu} ({n})" for cpu, n in sorted(counts.items()))
    if len(counts) > 1:
        line += "; the same seed on another CPU model is another run (results/reference/cross_cpu)"
    return line


def to_markdown(frame: pd.DataFrame, names: list[str], directions: dict[str, bool], table: str,
                dataset: str, records: list[RunRecord], reproductions: list[Any] = ()) -> str:
    """The table in Markdown: one block per profile, each with its evaluation protocol written
    beside it; bold and rank letters hold within a block only (rows of different profiles or
    protocols are never compared, so never share a bold or a letter)."""
    from gvae_bench.results.collect import TABLE_TITLES

    measured = frame[frame.row_kind == "measured"]
    unranked = unranked_metrics(records)
    lines = [f"# {dataset}: {TABLE_TITLES.get(table, table)}", ""]
    profiles = sorted(set(measured.profile))
    lines.append(f"- dataset: `{dataset}`; profile(s): {', '.join(f'`{p}`' for p in profiles)}")
    for name in names:
        counts = sorted({c for c in measured[f"{name}_samples"] if c})
        arrow = "higher is better" if directions[name] else "lower is better"
        if name in unranked:
            arrow = "not ranked: its best is a target value, see its definition in docs/metrics.md"
        lines.append(f"- `{name}` ({arrow}): {'; '.join(counts)}")
    lines += _not_estimated_lines(records, names, table)
    commits = sorted({c for cs in measured.commits for c in cs.split()})
    lines.append(f"- commit(s): {', '.join(commits) or 'unknown'}; built {now()} from {len(records)} run record(s)")
    lines.append(cpu_line(records))
    lines.append("- cells: mean over seeds [95 % confidence interval] (n = finished seeds); **bold**: the best row "
                 "of its block and every row not separated from it, letters: rank groups within the block (rows "
                 "sharing a letter are not separated; a `·2` suffix marks a second evaluation protocol within one "
                 "profile); both from `comparisons.md` (paired or Welch t-tests, Holm-adjusted, 0.05)")
    lines.append(_interval_line(names))
    lines += _protocol_lines(records, names)
    header = ["model", "latent", "profile", "config", "seeds"] + [
        f"{n} {'(≈ target)' if n in unranked else '↑' if directions[n] else '↓'}" for n in names]
    shown = frame[frame.row_kind != "published"]
    for profile in sorted(set(shown.profile.dropna())):
        block = shown[shown.profile == profile]
        several = int((block.row_kind == "measured").sum()) > 1
        lines += ["", f"### Profile `{profile}`", ""]
        protocol = _block_protocol(block[block.row_kind == "measured"], names)
        if protocol:
            lines += [f"Evaluation protocol: {protocol}.", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [_row_line(row, names, several) for _, row in block.iterrows()]
    lines += _spread_lines(frame, names, list(reproductions))
    published = frame[frame.row_kind == "published"]
    if len(published):
        lines += ["", "## Published numbers (not measured here; different protocols, see each row)", ""]
        lines += ["| method | " + " | ".join(names) + " | source | protocol |", "|" + "---|" * (len(names) + 3)]
        for _, row in published.iterrows():
            cells = [_cell(row.get(f"{n}_mean", math.nan), math.nan, math.nan, math.nan) for n in names]
            lines.append(f"| {row.model} (published) | " + " | ".join(cells) + f" | {row.source} | {row.protocol} |")
    return "\n".join(lines) + "\n"
