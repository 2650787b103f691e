"""The confirmatory family of a study protocol: every declared pair on every primary metric of
every declared dataset, one paired t-test by seed each, Holm-adjusted together.

Which runs enter: finished runs of a declared model under the declared profile, at a declared
seed, at the profile's own settings (its config hash; a latent sweep under the same profile stays
out). The two sides are paired on the declared seeds both have; a seed outside the list never
enters. A test that cannot be made (a side with fewer than two such seeds, values scored under
different evaluation protocols, e.g. by different classifiers) keeps its place in the family with
p = 1 in the Holm step, so missing runs never make another test's adjusted p smaller; its own
adjusted p is left empty and its verdict is ``n/a`` with the reason. The family is written to
``confirmatory.csv`` / ``.md`` of the results folder and each dataset's ``comparisons.csv`` shows
the same numbers for the same pairs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from statsmodels.stats.multitest import multipletests

from gvae_bench.atomic import atomic_write_text
from gvae_bench.results.comparisons import ConfirmatoryKey, RowKey, _cell, refused
from gvae_bench.results.eval_protocols import comparison_refusal
from gvae_bench.results.protocol import Protocol
from gvae_bench.results.release import ReleaseAudit, declared_runs
from gvae_bench.execution.records import RunRecord, now
from gvae_bench.results.stats import Comparison, compare

CONFIRMATORY_COLUMNS = ["dataset", "table", "metric", "profile", "model_a", "model_b", "config_a", "config_b",
                        "seeds", "higher_is_better", "n_a", "n_b", "mean_a", "mean_b", "difference", "ci_low",
                        "ci_high", "test", "p_value", "p_holm", "verdict", "protocol", "family", "note"]


@dataclasses.dataclass
class ConfirmatoryTest:
    dataset: str
    table: str
    metric: str
    model_a: str
    model_b: str
    key_a: RowKey | None
    key_b: RowKey | None
    seeds: list[int]
    comparison: Comparison


def _direction(records: list[RunRecord], metric: str) -> bool | None:
    for record in records:
        result = record.metrics.get(metric) or {}
        if result.get("value") is not None:
            return bool(result["higher_is_better"])
    return None


def family_tests(records_by_dataset: dict[str, list[RunRecord]], protocol: Protocol) -> list[ConfirmatoryTest]:
    """The M = pairs x primary metrics x datasets tests of the family, adjusted by Holm together."""
    tests: list[ConfirmatoryTest] = []
    models = sorted(protocol.models)
    for dataset in protocol.datasets:
        records = records_by_dataset.get(dataset, [])
        chosen = {m: declared_runs(records, protocol, m) for m in models}
        for primary in sorted(protocol.primary, key=lambda p: p.metric):
            higher = _direction(records, primary.metric)
            for a, b in itertools.combinations(models, 2):
                (runs_a, why_a), (runs_b, why_b) = chosen[a], chosen[b]
                key_a = (a, protocol.profile, runs_a[0].config_hash) if runs_a else None
                key_b = (b, protocol.profile, runs_b[0].config_hash) if runs_b else None
                common = sorted({r.seed for r in runs_a} & {r.seed for r in runs_b})
                cell_a = _cell([r for r in runs_a if r.seed in common], primary.metric, a)
                cell_b = _cell([r for r in runs_b if r.seed in common], primary.metric, b)
                reason = "; ".join(w for w in (why_a, why_b) if w)
                if higher is None:
                    reason = reason or f"no run holds {primary.metric}"
                reason = reason or "; ".join(f"{side} {c.refusal}" for side, c in (("A", cell_a), ("B", cell_b))
                                             if c.refusal)
                reason = reason or comparison_refusal(cell_a.eval_protocol, cell_b.eval_protocol)
                if not reason and set(cell_a.seeds) != set(cell_b.seeds):
                    reason = "the two sides hold the metric at different seeds"
                if not reason and len(cell_a.values) < 2:
                    reason = f"fewer than 2 common declared seeds ({' '.join(map(str, common)) or 'none'})"
                if reason:
                    comparison = refused(cell_a, cell_b, bool(higher), reason)
                else:
                    comparison = compare(cell_a.values, cell_b.values, bool(higher), a_seeds=cell_a.seeds,
                                         b_seeds=cell_b.seeds, paired=True, alpha=protocol.alpha)
                    missing = sorted(set(protocol.seeds) - set(common))
                    if missing:
                        note = f"declared seeds missing: {' '.join(map(str, missing))}"
                        comparison = dataclasses.replace(comparison, note="; ".join(t for t in (comparison.note, note) if t))
                tests.append(ConfirmatoryTest(dataset, primary.table, primary.metric, a, b, key_a, key_b, common,
                                              comparison))
    p_values = [t.comparison.p_value if math.isfinite(t.comparison.p_value) else 1.0 for t in tests]
    adjusted = multipletests(p_values, alpha=protocol.alpha, method="holm")[1] if tests else []
    for test, p in zip(tests, adjusted):
        c = test.comparison
        if not math.isfinite(c.p_value):
            test.comparison = dataclasses.replace(c, verdict="n/a")
            continue
        if p < protocol.alpha and c.difference != 0.0:
            verdict = "A better" if (c.difference > 0) == c.higher_is_better else "B better"
        else:
            verdict = "not separated"
        test.comparison = dataclasses.replace(c, p_adjusted=float(p), verdict=verdict)
    return tests


def family_label(protocol: Protocol) -> str:
    return (f"confirmatory: {protocol.label}, Holm over {protocol.family_size()} declared tests "
            f"({len(protocol.models) * (len(protocol.models) - 1) // 2} pairs x {len(protocol.primary)} primary "
            f"metrics x {len(protocol.datasets)} datasets)")


def confirmatory_map(tests: list[ConfirmatoryTest], protocol: Protocol, dataset: str
                     ) -> dict[ConfirmatoryKey, tuple[Comparison, str]]:
    """The family's tests of ``dataset``, keyed as ``comparisons.adjust_families`` looks them up."""
    label = family_label(protocol)
    return {(t.metric, t.key_a, t.key_b): (t.comparison, label) for t in tests
            if t.dataset == dataset and t.key_a is not None and t.key_b is not None}


def family_frame(tests: list[ConfirmatoryTest], protocol: Protocol) -> pd.DataFrame:
    label = family_label(protocol)
    rows: list[dict[str, Any]] = []
    for t in tests:
        c = t.comparison
        rows.append({"dataset": t.dataset, "table": t.table, "metric": t.metric, "profile": protocol.profile,
                     "model_a": t.model_a, "model_b": t.model_b, "config_a": t.key_a[2] if t.key_a else "",
                     "config_b": t.key_b[2] if t.key_b else "", "seeds": " ".join(map(str, t.seeds)),
                     "higher_is_better": c.higher_is_better, "n_a": c.n_a, "n_b": c.n_b, "mean_a": c.mean_a,
                     "mean_b": c.mean_b, "difference": c.difference, "ci_low": c.low, "ci_high": c.high,
                     "test": c.test, "p_value": c.p_value, "p_holm": c.p_adjusted, "verdict": c.verdict,
                     "protocol": protocol.label, "family": label,
                     "note": "; ".join(x for x in (c.reason, c.note) if x)})
    return pd.DataFrame(rows, columns=CONFIRMATORY_COLUMNS)


def _num(value: Any, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def family_markdown(frame: pd.DataFrame, protocol: Protocol, audits: Sequence[ReleaseAudit] = ()) -> str:
    """The family as Markdown; ``audits``: each dataset's declared runs and whether they are one
    release (``release.audit_records``), listed before the tests."""
    lines = [f"# The confirmatory family of protocol {protocol.label}", "",
             f"- declared {protocol.declared or 'date not given'} in `{protocol.path or 'protocol.toml'}`; built {now()}",
             f"- {family_label(protocol)}; alpha {protocol.alpha}",
             f"- runs: profile `{protocol.profile}`, seeds {' '.join(map(str, protocol.seeds))} only, each model at "
             "its profile's settings; paired t by seed on the declared seeds both sides hold",
             "- a test that cannot be made counts as p = 1 in the Holm step (it never lowers another's adjusted p) "
             "and reads n/a with its reason"]
    if audits:
        lines.append("- the declared runs (`runner.py release`):")
        lines += [f"    - {line.strip()}" if line.startswith(" ") else f"  - {line}"
                  for audit in audits for line in audit.lines()]
    lines += ["",
             "| dataset | metric | A | B | seeds | difference [95 % CI] | p | p (Holm) | verdict | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in frame.itertuples():
        lines.append(f"| {row.dataset} | {row.metric} | {row.model_a} | {row.model_b} | {row.seeds} | "
                     f"{_num(row.difference)} [{_num(row.ci_low)}, {_num(row.ci_high)}] | {_num(row.p_value, 3)} | "
                     f"{_num(row.p_holm, 3)} | {row.verdict} | {row.note} |")
    return "\n".join(lines) + "\n"


def write_family(out: Path, tests: list[ConfirmatoryTest], protocol: Protocol,
                 audits: Sequence[ReleaseAudit] = ()) -> list[Path]:
    """``<out>/confirmatory.csv`` and ``.md``: the whole family of the study (the Markdown also
    lists ``audits``, each dataset's declared runs)."""
    frame = family_frame(tests, protocol)
    paths = [Path(out) / "confirmatory.csv", Path(out) / "confirmatory.md"]
    atomic_write_text(paths[0], frame.to_csv(index=False))
    atomic_write_text(paths[1], family_markdown(frame, protocol, audits))
    return paths
