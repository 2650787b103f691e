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
from gvae_bench.results.bounds import bounds_frame, bounds_markdown
from gvae_bench.results.comparisons import (
    TableComparisons, adjust_families, comparisons_markdown, commit_of, compare_table, finish_table, row_label,
    runs_frame, table_tests,
)
from gvae_bench.results.eval_protocols import pooling_refusal, row_protocols
from gvae_bench.results.frames import Leaderboard, TableFrame
from gvae_bench.results.protocol import Protocol
from gvae_bench.results.stats import mean_interval, range_of
from gvae_bench.execution.records import RunRecord, RunStatus, now
from gvae_bench.results.collect import (  # noqa: F401  (TABLE_TITLES and read_records are part of this API)
    TABLE_TITLES, at_profile_settings, read_records, tables_of,
)

log = logging.getLogger(__name__)

PUBLISHED_FILE = Path(__file__).with_name("published.toml")


def published_rows(table: str, dataset: str) -> list[dict[str, Any]]:
    with open(PUBLISHED_FILE, "rb") as handle:
        rows = tomllib.load(handle)["row"]
    return [row for row in rows if row["table"] == table and row["dataset"] == dataset]


def _summary(values: list[float], name: str, samples: int | None = None
             ) -> tuple[float, float, int, float, float, str]:
    """Mean, sample std (ddof = 1), n, the 95 % interval over seeds that stays in the metric's range
    (``stats.mean_interval``: Student t on the metric's logit, log or own scale) and its method.
    ``samples``: the count behind a proportion, whose half-step is how far a value at a bound moves in."""
    interval = mean_interval(values, bounds=range_of(name), resolution=0.5 / samples if samples else None)
    return interval.mean, interval.std, interval.n, interval.low, interval.high, interval.method


def _samples_behind(records: list[RunRecord], name: str) -> int | None:
    counts = [max(int(r.metrics[name].get("n_generated") or 0), int(r.metrics[name].get("n_real") or 0))
              for r in records if (r.metrics.get(name) or {}).get("value") is not None]
    return min(counts) if counts and min(counts) > 0 else None


def table_records(records: list[RunRecord], table: str) -> list[RunRecord]:
    """The runs a table is built (and compared) from: ``table5`` the models run at several latent
    sizes; every other table shows such a model at its profile's own settings (where it ran them)."""
    swept = swept_models(records)
    if table == "table5":
        return [r for r in records if r.model in swept]
    if not swept:
        return records
    own = {(r.model, r.profile) for r in records if r.model in swept and at_profile_settings(r)}
    return [r for r in records if (r.model, r.profile) not in own or at_profile_settings(r)]


def table_metrics(records: list[RunRecord], table: str) -> tuple[list[str], dict[str, bool]]:
    """The metric names of ``table`` (sorted) and each one's direction."""
    metric_table = "table4" if table == "table5" else table
    metrics: dict[str, bool] = {}
    for record in table_records(records, table):
        for name, result in record.metrics.items():
            if metric_table in tables_of(result) and result.get("value") is not None:
                metrics[name] = bool(result["higher_is_better"])
    return sorted(metrics), metrics


def build_table(records: list[RunRecord], table: str, dataset: str, compared: TableComparisons | None = None
                ) -> tuple[pd.DataFrame, list[str], dict[str, bool]]:
    """The rows of one table (a DataFrame), its metric names and each metric's direction.

    ``table5`` is the Table 4 metrics of the models run at several latent sizes, one row each.
    ``compared``: the table's comparisons, adjusted in their families (``write_leaderboards``);
    without it the table's own pairs are compared, every one exploratory. A row whose seeds were
    scored under different evaluation protocols (e.g. two classifiers) is not pooled: its cell is
    n/a and ``<metric>_note`` says why.
    """
    names, metrics = table_metrics(records, table)
    records = table_records(records, table)
    tidy = runs_frame(records, dataset)
    means = tidy[tidy.status == "finished"].groupby(["model", "profile", "config_hash", "metric"]).value.mean()
    if compared is None:
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
            label = row_label(model, row["latent_dim"], chash, sum(k[0] == model and k[1] == profile for k in groups) > 1)
            refusal = pooling_refusal(finished, name, f"{dataset} {table} {label} ({profile})")
            values = [] if refusal else [r.metrics[name]["value"] for r in finished
                                         if r.metrics.get(name, {}).get("value") is not None]
            _, std, n, low, high, method = _summary(values, name, _samples_behind(finished, name))
            protocols = row_protocols(finished, name)
            row.update({f"{name}_mean": math.nan if refusal else means.get((model, profile, chash, name), math.nan),
                        f"{name}_std": std, f"{name}_n": n, f"{name}_ci_low": low, f"{name}_ci_high": high,
                        f"{name}_ci_method": method if n >= 2 else "", f"{name}_note": refusal,
                        f"{name}_protocol": next(iter(protocols)) if len(protocols) == 1 else "",
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
            mean, std, n, low, high, method = _summary(values, name, _samples_behind(
                [r for r in records if r.profile == profile], name))
            any_ref |= n > 0
            ref_row.update({f"{name}_mean": mean, f"{name}_std": std, f"{name}_n": n, f"{name}_ci_low": low,
                            f"{name}_ci_high": high, f"{name}_ci_method": method if n >= 2 else ""})
        if any_ref:
            rows.append(ref_row)

    for pub in published_rows(table, dataset):
        row = {"row_kind": "published", "model": pub["method"], "latent_dim": pub.get("latent_dim"),
               "source": pub["source"], "protocol": pub["protocol"]}
        for name, value in pub["values"].items():
            row.update({f"{name}_mean": value, f"{name}_std": math.nan, f"{name}_n": math.nan})
        rows.append(row)
    return pd.DataFrame(rows), names, metrics


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


#: ``write_leaderboards``' default: the protocol of ``<out>/protocol.toml`` when present
FROM_OUT = "from out"


def write_leaderboards(out: Path, dataset: str, protocol: Protocol | None | str = FROM_OUT) -> list[Path]:
    """``build_leaderboard`` from the records on disk; returns the files written."""
    return build_leaderboard(out, dataset, protocol).files


def build_leaderboard(out: Path, dataset: str, protocol: Protocol | None | str = FROM_OUT,
                      records: list[RunRecord] | None = None, unreadable: list[str] | None = None) -> Leaderboard:
    """Build every table that has measured values for ``dataset``, write them under
    ``<out>/leaderboards/<dataset>/`` and return them as frames (``Leaderboard``, its ``files``).

    ``records``: the dataset's run records when the caller holds them (a sweep: its own runs from
    memory and the folder's others, ``collect.records_beside``); default: read from disk.
    ``protocol``: the study protocol the tables answer (default: ``<out>/protocol.toml`` when it
    exists; None: none, every comparison exploratory). With a protocol that declares ``dataset``,
    its confirmatory family is computed over all its datasets' records and written to
    ``<out>/confirmatory.csv``; the cross-benchmark aggregate goes to ``<out>/leaderboards/aggregate/``.
    """
    from gvae_bench.results.confirmatory import confirmatory_map, family_tests, write_family
    from gvae_bench.results.leaderboard_markdown import to_markdown
    from gvae_bench.results.protocol import protocol_for
    from gvae_bench.results.release import audit_records
    from gvae_bench.results.reproduce import read_reproductions

    if protocol == FROM_OUT:
        protocol = protocol_for(Path(out))
    if records is None:
        unreadable = [] if unreadable is None else unreadable
        records = read_records(out, dataset, unreadable)
    tables = sorted({table for r in records for result in r.metrics.values()
                     if result.get("value") is not None for table in tables_of(result)})
    if "table4" in tables and swept_models(records):
        tables.append("table5")
    result = Leaderboard(Path(out), dataset, records, runs_frame(records, dataset), unreadable=list(unreadable or ()))
    folder = result.folder
    if not records:
        return result
    written = result.files
    runs_path = folder / "runs.csv"
    atomic_write_text(runs_path, result.runs.to_csv(index=False))
    written.append(runs_path)
    confirmatory: dict = {}
    by_dataset: dict[str, list[RunRecord]] = {}
    if isinstance(protocol, Protocol):
        by_dataset = {d: records if d == dataset else read_records(out, d) for d in protocol.datasets}
        if dataset in protocol.datasets:
            family = family_tests(by_dataset, protocol)
            audits = [audit_records(by_dataset[d], d, protocol) for d in protocol.datasets]
            written += write_family(Path(out), family, protocol, audits)
            confirmatory = confirmatory_map(family, protocol, dataset)
    tested = {table: table_tests(table_records(records, table), table, *table_metrics(records, table))
              for table in tables}
    adjust_families([t for tt in tested.values() for t in tt.tests], confirmatory,
                    protocol.label if isinstance(protocol, Protocol) else "")
    reproductions = read_reproductions(Path(out), dataset)
    pairs = []
    for table in tables:
        compared = finish_table(tested[table])
        frame, names, directions = build_table(records, table, dataset, compared)
        csv_path, md_path = folder / f"{table}.csv", folder / f"{table}.md"
        text = to_markdown(frame, names, directions, table, dataset, records, reproductions)
        if table == "table7":  # each run's bounds: standard error over images, AIS against IWAE
            bounds = bounds_frame(table_records(records, table))
            if len(bounds):
                bounds_path = folder / "table7_bounds.csv"
                atomic_write_text(bounds_path, bounds.to_csv(index=False))
                written.append(bounds_path)
                result.tables["table7_bounds"] = TableFrame("table7_bounds", bounds, [], {})
                text += "\n".join(bounds_markdown(bounds)) + "\n"
        atomic_write_text(csv_path, frame.to_csv(index=False))
        atomic_write_text(md_path, text)
        written += [csv_path, md_path]
        result.tables[table] = TableFrame(table, frame, names, directions, text)
        pairs.append(compared.pairs)
    if tables:
        result.comparisons = (pd.concat([p for p in pairs if len(p)], ignore_index=True)
                              if any(len(p) for p in pairs) else pd.DataFrame())
        result.comparisons_markdown = comparisons_markdown(dataset, pairs, now(),
                                                           protocol.label if isinstance(protocol, Protocol) else "")
        csv_path, md_path = folder / "comparisons.csv", folder / "comparisons.md"
        atomic_write_text(csv_path, result.comparisons.to_csv(index=False))
        atomic_write_text(md_path, result.comparisons_markdown)
        written += [csv_path, md_path]
    _remove_stale(folder, written)
    if isinstance(protocol, Protocol):
        from gvae_bench.results.aggregate import write_aggregate

        written += write_aggregate(Path(out), protocol, by_dataset)
    from gvae_bench.results.readings import write_readings

    readings = write_readings(Path(out))  # <out>/README.md from README.md.j2 over the tables just written
    if readings:
        written.append(readings)
    return result


def _remove_stale(folder: Path, written: list[Path]) -> None:
    """Delete the tables of ``folder`` that this build did not write (a table whose records left the
    folder, such as a latent sweep moved elsewhere), so the folder holds only what its records give."""
    kept = {Path(p).resolve() for p in written}
    for path in sorted(folder.glob("*")):
        if path.suffix in (".csv", ".md") and path.is_file() and path.resolve() not in kept:
            log.info("removed %s: no record of the folder gives this table any more", path)
            path.unlink()

