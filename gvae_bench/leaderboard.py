"""Leaderboards built from run records alone, in the form of the paper's tables.

For a dataset, every ``record.json`` under ``<out>/runs/<dataset>/`` is read; finished runs are
grouped by (model, profile, config hash) and each metric becomes mean, sample standard deviation
(ddof = 1) and n over seeds. Each table (``table4``: MMD and MS-SSIM; ``table_modes``: mode
coverage; more as metrics declare them) is written to ``<out>/leaderboards/<dataset>/<table>.csv``
and ``.md``. Measured rows, the real-data reference row and published rows are told apart by the
``row_kind`` column (``measured``, ``reference``, ``published``); published values never enter a
measured cell.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from gvae_bench.atomic import atomic_write_text
from gvae_bench.bounds import bounds_frame, bounds_markdown
from gvae_bench.comparisons import (
    comparisons_markdown, commit_of, compare_table, row_label, runs_frame, unranked_metrics,
)
from gvae_bench.stats import mean_interval
from gvae_bench.records import RECORD_FILE, RecordError, RunRecord, RunStatus, now, read_record

log = logging.getLogger(__name__)

PUBLISHED_FILE = Path(__file__).with_name("published.toml")
TABLE_TITLES = {
    "table4": "Table 4 form: distribution distance (MMD) and sample diversity (MS-SSIM)",
    "table5": "Table 5 form: effect of the latent size on MMD and MS-SSIM",
    "table_modes": "Mode coverage on mixtures with known modes (VEEGAN's Table 1 form)",
    "table6": "Table 6 form: likelihood terms of the models with an encoder (nats per test image)",
    "table7": "Table 7 form: bounds on the negative log-likelihood, -log p(x) <= value (nats per test image)",
    "table_novelty": "Novelty and diversity: data copying C_T (Meehan et al. 2020; about 0 like fresh data, well below 0 "
                     "copies the training set, well above 0 underfits; not ranked), authenticity "
                     "(Alaa et al. 2022) and the Vendi score (Friedman and Dieng 2023)",
}


def tables_of(result: dict[str, Any]) -> set[str]:
    """The leaderboards a stored metric result is a column of (``table`` is a name or a list)."""
    table = result.get("table")
    return {table} if isinstance(table, str) else set(table or ())


def read_records(out: Path, dataset: str, unreadable: list[str] | None = None) -> list[RunRecord]:
    """Every readable run record of ``dataset`` under ``out``; a record that cannot be read is
    logged, left where it is and named in ``unreadable`` (when given), never fatal."""
    root = Path(out) / "runs" / dataset
    records = []
    for path in sorted(root.glob(f"**/{RECORD_FILE}")):
        try:
            record = read_record(path.parent)
        except (OSError, RecordError) as exc:
            log.warning("left out of the leaderboards, unreadable: %s", exc)
            if unreadable is not None:
                unreadable.append(str(path))
            continue
        if record is not None:
            records.append(record)
    return records


def published_rows(table: str, dataset: str) -> list[dict[str, Any]]:
    with open(PUBLISHED_FILE, "rb") as handle:
        rows = tomllib.load(handle)["row"]
    return [row for row in rows if row["table"] == table and row["dataset"] == dataset]


def _summary(values: list[float]) -> tuple[float, float, int, float, float]:
    """Mean, sample std (ddof = 1), n and the 95 % Student t interval over seeds (``stats.mean_interval``)."""
    interval = mean_interval(values)
    return interval.mean, interval.std, interval.n, interval.low, interval.high


def table_records(records: list[RunRecord], table: str) -> list[RunRecord]:
    """The runs a table is built (and compared) from: ``table5`` the models run at several latent
    sizes; every other table shows such a model at its profile's own settings (where it ran them)."""
    swept = swept_models(records)
    if table == "table5":
        return [r for r in records if r.model in swept]
    if not swept:
        return records
    own = {(r.model, r.profile) for r in records if r.model in swept and _at_profile_settings(r)}
    return [r for r in records if (r.model, r.profile) not in own or _at_profile_settings(r)]


def build_table(records: list[RunRecord], table: str, dataset: str) -> tuple[pd.DataFrame, list[str], dict[str, bool]]:
    """The rows of one table (a DataFrame), its metric names and each metric's direction.

    ``table5`` is the Table 4 metrics of the models run at several latent sizes, one row each.
    """
    metric_table = "table4" if table == "table5" else table
    records = table_records(records, table)
    metrics: dict[str, bool] = {}
    for record in records:
        for name, result in record.metrics.items():
            if metric_table in tables_of(result) and result.get("value") is not None:
                metrics[name] = bool(result["higher_is_better"])
    names = sorted(metrics)
    tidy = runs_frame(records, dataset)
    means = tidy[tidy.status == "finished"].groupby(["model", "profile", "config_hash", "metric"]).value.mean()
    compared = compare_table(records, table, names, metrics)
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model, record.profile, record.config_hash)].append(record)

    rows: list[RunRecord] = []
    references: dict[str, list[float]] = defaultdict(list)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], _latent(item[1][0]) or 0, item[0][2]))
    for (model, profile, chash), group in ordered:
        finished = [r for r in group if r.status == RunStatus.FINISHED]
        row: dict[str, Any] = {
            "row_kind": "measured", "model": model, "profile": profile, "config_hash": chash,
            "latent_dim": _latent(group[0]),
            "seeds": " ".join(str(r.seed) for r in sorted(finished, key=lambda r: r.seed)),
            "n_finished": len(finished),
            "n_diverged": sum(r.status == RunStatus.DIVERGED for r in group),
            "n_failed": sum(r.status == RunStatus.FAILED for r in group),
            "n_running": sum(r.status == RunStatus.RUNNING for r in group),
            "commits": " ".join(sorted({commit_of(r) for r in finished})),
        }
        for name in names:
            values = [r.metrics[name]["value"] for r in finished
                      if r.metrics.get(name, {}).get("value") is not None]
            _, std, n, low, high = _summary(values)
            label = row_label(model, row["latent_dim"], chash, sum(k[0] == model and k[1] == profile for k in groups) > 1)
            row.update({f"{name}_mean": means.get((model, profile, chash, name), math.nan), f"{name}_std": std,
                        f"{name}_n": n, f"{name}_ci_low": low, f"{name}_ci_high": high,
                        f"{name}_group": compared.letters.get((name, profile), {}).get(label, ""),
                        f"{name}_bold": label in compared.bold.get((name, profile), set()),
                        # no value: "n/a" when the metric does not apply, "not evaluated" when no finished
                        # record holds it yet (a metric registered after the runs, no checkpoint to add it)
                        f"{name}_evaluated": any(name in r.metrics for r in finished)})
            counts = {(r.metrics[name]["n_generated"], r.metrics[name]["n_real"]) for r in finished
                      if r.metrics.get(name, {}).get("value") is not None}
            row[f"{name}_samples"] = "; ".join(f"{g} generated / {q} real" if g else f"{q} test images"
                                               for g, q in sorted(counts))
            for r in finished:
                ref = r.metrics.get(name, {}).get("reference")
                if ref is not None and r.seed not in [s for s, _ in references[f"{name}|{profile}"]]:
                    references[f"{name}|{profile}"].append((r.seed, ref))
        rows.append(row)

    for profile in sorted({r["profile"] for r in rows}):
        ref_row: dict[str, Any] = {"row_kind": "reference", "model": "real data (test set)", "profile": profile}
        any_ref = False
        for name in names:
            values = [v for _, v in references.get(f"{name}|{profile}", [])]
            mean, std, n, low, high = _summary(values)
            any_ref |= n > 0
            ref_row.update({f"{name}_mean": mean, f"{name}_std": std, f"{name}_n": n, f"{name}_ci_low": low,
                            f"{name}_ci_high": high})
        if any_ref:
            rows.append(ref_row)

    for pub in published_rows(table, dataset):
        row = {"row_kind": "published", "model": pub["method"], "latent_dim": pub.get("latent_dim"),
               "source": pub["source"], "protocol": pub["protocol"]}
        for name, value in pub["values"].items():
            row.update({f"{name}_mean": value, f"{name}_std": math.nan, f"{name}_n": math.nan})
        rows.append(row)
    return pd.DataFrame(rows), names, metrics


_PROFILE_HASHES: dict[tuple[str, str, str], str | None] = {}


def _at_profile_settings(record: RunRecord) -> bool:
    """Whether a run used its profile's settings unchanged (no ``--latent-sizes`` or ``--set``):
    its config hash is the one the profile resolves to. Unknown (a plugin not loaded): False."""
    from gvae_bench.errors import UserError
    from gvae_bench.runs import RunSpec, resolve

    key = (record.model, record.benchmark, record.profile)
    if key not in _PROFILE_HASHES:
        try:
            spec = RunSpec(record.model, record.benchmark, record.profile, record.seed, Path("data"), Path("."))
            _PROFILE_HASHES[key] = resolve(spec).config_hash
        except UserError:
            _PROFILE_HASHES[key] = None
    expected = _PROFILE_HASHES[key]
    return expected is not None and expected == record.config_hash


def _latent(record: RunRecord) -> Any:
    return record.latent_dim


def swept_models(records: list[RunRecord]) -> set[str]:
    """Models with finished runs at two or more latent sizes under one profile (they get a Table 5;
    profiles that merely use different sizes, such as smoke and quick, do not make a sweep)."""
    sizes: dict[tuple[str, str], set] = defaultdict(set)
    for record in records:
        if record.status == RunStatus.FINISHED:
            sizes[(record.model, record.profile)].add(_latent(record))
    return {model for (model, _), values in sizes.items() if len(values) > 1}


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
    which spread dominates (``gvae_bench.reproduce.spread_verdict``)."""
    from gvae_bench.reproduce import ENVIRONMENT_DOMINATES_FROM, SEEDS_DOMINATE_BELOW, spread_verdict

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


def to_markdown(frame: pd.DataFrame, names: list[str], directions: dict[str, bool], table: str,
                dataset: str, records: list[RunRecord], reproductions: list[Any] = ()) -> str:
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
    commits = sorted({c for cs in measured.commits for c in cs.split()})
    lines.append(f"- commit(s): {', '.join(commits) or 'unknown'}; built {now()} from {len(records)} run record(s)")
    lines.append("- cells: mean over seeds [95 % confidence interval, Student t over seeds] (n = finished seeds); "
                 "**bold**: the best row and every row not separated from it, letters: rank groups (rows sharing a "
                 "letter are not separated); both from `comparisons.md` (paired or Welch t-tests, Holm-adjusted, 0.05)")
    lines += _protocol_lines(records, names)
    lines.append("")
    header = ["model", "latent", "profile", "config", "seeds"] + [
        f"{n} {'(≈ target)' if n in unranked else '↑' if directions[n] else '↓'}" for n in names]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame[frame.row_kind != "published"].iterrows():
        cells = []
        for name in names:
            cell = _cell(row[f"{name}_mean"], row[f"{name}_ci_low"], row[f"{name}_ci_high"], row[f"{name}_n"])
            if row.row_kind == "measured" and not row.n_finished:
                cell = "–"  # no finished seed yet
            elif row.row_kind == "measured" and not row.get(f"{name}_evaluated", True):
                cell = "not evaluated"
            elif row.row_kind == "measured" and len(measured) > 1:
                cell = f"**{cell}**" if row[f"{name}_bold"] else cell
                cell += f" {row[f'{name}_group']}" if row[f"{name}_group"] else ""
            cells.append(cell)
        if row.row_kind == "measured":
            status = " ".join([row.seeds] + [f"({int(row[f'n_{kind}'])} {kind})" for kind in ("running", "diverged", "failed")
                                             if row[f"n_{kind}"]]).strip()
            latent = "" if pd.isna(row.latent_dim) else int(row.latent_dim)
            lines.append(f"| {row.model} | {latent} | {row.profile} | {row.config_hash} | {status} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"| *{row.model}* (reference) | | {row.profile} | | | " + " | ".join(cells) + " |")
    lines += _spread_lines(frame, names, list(reproductions))
    published = frame[frame.row_kind == "published"]
    if len(published):
        lines += ["", "## Published numbers (not measured here; different protocols, see each row)", ""]
        lines += ["| method | " + " | ".join(names) + " | source | protocol |", "|" + "---|" * (len(names) + 3)]
        for _, row in published.iterrows():
            cells = [_cell(row.get(f"{n}_mean", math.nan), math.nan, math.nan, math.nan) for n in names]
            lines.append(f"| {row.model} (published) | " + " | ".join(cells) + f" | {row.source} | {row.protocol} |")
    return "\n".join(lines) + "\n"


def write_leaderboards(out: Path, dataset: str) -> list[Path]:
    """Build every table that has measured values for ``dataset``; returns the files written."""
    records = read_records(out, dataset)
    tables = sorted({table for r in records for result in r.metrics.values()
                     if result.get("value") is not None for table in tables_of(result)})
    if "table4" in tables and swept_models(records):
        tables.append("table5")
    written: list[Path] = []
    folder = Path(out) / "leaderboards" / dataset
    if not records:
        return written
    runs_path = folder / "runs.csv"
    atomic_write_text(runs_path, runs_frame(records, dataset).to_csv(index=False))
    written.append(runs_path)
    from gvae_bench.reproduce import read_reproductions

    reproductions = read_reproductions(Path(out), dataset)
    pairs = []
    for table in tables:
        frame, names, directions = build_table(records, table, dataset)
        csv_path, md_path = folder / f"{table}.csv", folder / f"{table}.md"
        text = to_markdown(frame, names, directions, table, dataset, records, reproductions)
        if table == "table7":  # each run's bounds: standard error over images, AIS against IWAE
            bounds = bounds_frame(table_records(records, table))
            if len(bounds):
                bounds_path = folder / "table7_bounds.csv"
                atomic_write_text(bounds_path, bounds.to_csv(index=False))
                written.append(bounds_path)
                text += "\n".join(bounds_markdown(bounds)) + "\n"
        atomic_write_text(csv_path, frame.to_csv(index=False))
        atomic_write_text(md_path, text)
        written += [csv_path, md_path]
        pairs.append(compare_table(table_records(records, table), table, names, directions).pairs)
    if tables:
        frame = pd.concat([p for p in pairs if len(p)], ignore_index=True) if any(len(p) for p in pairs) else pd.DataFrame()
        csv_path, md_path = folder / "comparisons.csv", folder / "comparisons.md"
        atomic_write_text(csv_path, frame.to_csv(index=False))
        atomic_write_text(md_path, comparisons_markdown(dataset, pairs, now()))
        written += [csv_path, md_path]
    return written
