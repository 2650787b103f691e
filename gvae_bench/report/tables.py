"""The report's leaderboard tables: cells with their intervals and provenance, and the small
per-metric plots of each model's seed values (``gvae_bench.report`` lays them out in pages).

Built from a dataset's ``Leaderboard`` (``gvae_bench.results.frames``): its tables and its per-run
frame, as a sweep or ``runner.py leaderboard`` holds them in memory or as read back from the CSVs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gvae_bench.results.collect import TABLE_TITLES  # noqa: E402
from gvae_bench.results.frames import Leaderboard  # noqa: E402
from gvae_bench.report.model import (  # noqa: E402
    Cell, Metric, Row, RunGroup, Table, _flag, _float, _fmt, _latent_text, _rel, _table_order, _text,
)


def _cell(row: dict[str, Any], name: str, kind: str, several: bool, several_profiles: bool = False) -> Cell:
    mean = _float(row.get(f"{name}_mean"))
    n = _float(row.get(f"{name}_n"))
    low, high = _float(row.get(f"{name}_ci_low")), _float(row.get(f"{name}_ci_high"))
    if kind == "measured" and not _float(row.get("n_finished")) > 0:
        return Cell("–", provenance="no finished seed yet")
    if kind == "measured" and _text(row.get(f"{name}_evaluated")) == "False":
        return Cell("not evaluated", provenance="no finished record holds this metric yet")
    if math.isnan(mean):
        return Cell("n/a")
    cell = Cell(_fmt(mean))
    if kind == "published":
        cell.provenance = f"published: {_text(row.get('source'))}"
        return cell
    if not math.isnan(n):
        cell.n = f"n={int(n)}"
        cell.interval = f"[{_fmt(low)}, {_fmt(high)}]" if not math.isnan(low) else "no interval"
    note = _text(row.get(f"{name}_note"))
    if kind == "measured" and note:
        return Cell("n/a", provenance=note)
    if kind == "measured" and several:
        # bold and letters hold within one profile's block (one evaluation protocol): name it
        cell.bold = _flag(row.get(f"{name}_bold"))
        group = _text(row.get(f"{name}_group"))
        cell.group = f"{group} ({_text(row.get('profile'))})" if group and several_profiles else group
    parts = [f"profile {_text(row.get('profile'))}"]
    if not math.isnan(n) and _text(row.get(f"{name}_ci_method")):
        parts.append(f"interval: {_text(row[f'{name}_ci_method'])}")
    if kind == "measured":
        parts += [f"config {_text(row.get('config_hash'))}", _text(row.get(f"{name}_samples")),
                  f"commit {_text(row.get('commits'))}"]
    else:
        parts.append("real data against itself (test set)")
    cell.provenance = "; ".join(p for p in parts if p)
    return cell


def _seed_values(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[tuple[int, float]]]:
    values: dict[tuple[str, str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for run in runs:
        value = _float(run.get("value"))
        if run.get("status") == "finished" and not math.isnan(value):
            key = (_text(run["model"]), _text(run["profile"]), _text(run["config_hash"]), _text(run["metric"]))
            values[key].append((int(run["seed"]), value))
    return values


def _directions(runs: list[dict[str, Any]]) -> dict[str, bool]:
    return {run["metric"]: _flag(run.get("higher_is_better")) for run in runs if _text(run.get("higher_is_better"))}


def _unranked(runs: list[dict[str, Any]]) -> set[str]:
    """Metrics recorded as not ranked (a runs.csv written before the ``ranked`` column: none)."""
    return {run["metric"] for run in runs if _text(run.get("ranked")) and not _flag(run.get("ranked"))}


def _plot_metric(path: Path, title: str, labels: list[str], seeds: list[list[tuple[int, float]]],
                 intervals: list[tuple[float, float, float]], bold: list[bool], direction: str) -> None:
    """Per-seed values (dots, labelled by seed), the mean (bar) and its 95 % interval, row by row."""
    height = 0.32 * len(labels) + 0.9
    fig, ax = plt.subplots(figsize=(3.6, height), dpi=80)
    for y, (points, (mean, low, high), strong) in enumerate(zip(seeds, intervals, bold)):
        color = "#1f4e99" if strong else "#777777"
        if not math.isnan(low) and not math.isnan(high):
            ax.plot([low, high], [y, y], color=color, lw=2.2, alpha=0.45, solid_capstyle="butt")
        if not math.isnan(mean):
            ax.plot([mean], [y], marker="|", ms=11, mew=2, color=color)
        if points:
            ax.scatter([v for _, v in points], [y] * len(points), s=12, color=color, zorder=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"{title} ({direction})" if direction else title, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)


def _tables(leaderboard: Leaderboard, page_dir: Path, target: Path, groups: list[RunGroup]) -> list[Table]:
    """The tables of a dataset from its leaderboard frames; their seed plots are written under
    ``target`` (where the pages are written) and linked relative to it."""
    folder, dataset = leaderboard.folder, leaderboard.dataset
    runs = leaderboard.runs.to_dict("records")
    directions, unranked = _directions(runs), _unranked(runs)
    per_seed = _seed_values(runs)
    by_group = {(g.model, g.profile, g.config_hash): g for g in groups}
    tables = []
    for name in sorted(leaderboard.tables, key=_table_order):
        table = leaderboard.tables[name]
        rows = table.frame.to_dict("records")
        if not rows:
            continue
        path = folder / f"{name}.csv"
        names = [c[: -len("_mean")] for c in table.frame.columns if c.endswith("_mean")]
        measured = [r for r in rows if r.get("row_kind") == "measured"]
        several = len(measured) > 1
        several_profiles = len({_text(r.get("profile")) for r in measured}) > 1
        metrics = []
        for metric in names:
            samples = sorted({c for r in measured for c in _text(r.get(f"{metric}_samples")).split("; ") if c})
            metrics.append(Metric(metric, directions.get(metric), "; ".join(samples), ranked=metric not in unranked))
        view_rows = []
        for row in rows:
            kind = _text(row.get("row_kind")) or "measured"
            view = Row(kind, _text(row.get("model")), _latent_text(row.get("latent_dim")), _text(row.get("profile")),
                       _text(row.get("config_hash")), _text(row.get("seeds")), _text(row.get("commits")),
                       _text(row.get("source")), _text(row.get("protocol")))
            if kind == "measured":
                extra = [f"({int(_float(row.get(f'n_{s}')))} {s})" for s in ("running", "diverged", "failed")
                         if _float(row.get(f"n_{s}")) > 0]
                view.seeds = " ".join([view.seeds] + extra).strip()
                group = by_group.get((view.model, view.profile, view.config_hash))
                if group is not None:
                    view.anchor = group.anchor
                    samples = [p for p in group.shown.pictures if p.kind == "samples"]
                    view.thumbnail = samples[0].src if samples else ""
            view.cells = [_cell(row, metric, kind, several, several_profiles) for metric in names]
            view_rows.append(view)
        for metric in metrics:
            plotted = [r for r in rows if r.get("row_kind") in ("measured", "reference")
                       and not math.isnan(_float(r.get(f"{metric.name}_mean")))]
            if not plotted:
                continue
            labels, seeds, intervals, bold = [], [], [], []
            multi_profile = len({_text(r.get("profile")) for r in plotted}) > 1
            for r in plotted:
                if r["row_kind"] == "reference":
                    labels.append(f"real data ({_text(r.get('profile'))})")
                    seeds.append([])
                else:
                    label = r["model"] + (f" {_latent_text(r.get('latent_dim'))}" if name == "table5" else "")
                    labels.append(label + (f" ({_text(r.get('profile'))})" if multi_profile else ""))
                    key = (_text(r["model"]), _text(r["profile"]), _text(r["config_hash"]), metric.name)
                    seeds.append(per_seed.get(key, []))
                intervals.append((_float(r.get(f"{metric.name}_mean")), _float(r.get(f"{metric.name}_ci_low")),
                                  _float(r.get(f"{metric.name}_ci_high"))))
                bold.append(_flag(r.get(f"{metric.name}_bold")))
            plot = target / "plots" / dataset / f"{name}-{metric.name}.png"
            _plot_metric(plot, metric.name, labels, seeds, intervals, bold,
                         metric.direction if metric.ranked else "not ranked")
            metric.plot = _rel(plot, target)
        commits = sorted({c for r in measured for c in _text(r.get("commits")).split()})
        profiles = sorted({_text(r.get("profile")) for r in measured})
        md = path.with_suffix(".md")
        tables.append(Table(name, TABLE_TITLES.get(name, name), metrics, view_rows, profiles, commits,
                            _rel(path, page_dir), _rel(md, page_dir) if md.is_file() else ""))
    return tables
