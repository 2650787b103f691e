"""A-priori power of a study protocol: how many seeds each confirmatory test needs, from a pilot.

For each declared pair of models and primary metric of each declared dataset, the pilot (runs made
before the protocol's own: for the reference release, the committed ``tuned`` runs at n = 3; a
dataset with none falls back to its ``quick`` runs, and the table says so) gives the per-seed
differences d_i = a_i - b_i on the seeds both models ran, and their standard deviation s_d. The
protocol's test is the paired t-test, a one-sample t-test on d, so the seeds it needs to detect the
declared smallest difference Δ with the declared power at two-sided level α follow from the
effect δ = Δ / s_d (``stats.seeds_for_paired_power``, statsmodels ``TTestPower``). Three columns:

- ``seeds_at_alpha``: at the declared α (a test on its own);
- ``seeds_at_alpha_over_m``: at α / M, the level the smallest p of the Holm family must beat
  (M the family's size): what a test needs to be sure to survive the correction;
- ``seeds_at_upper_sd``: at α / M with s_d replaced by its one-sided 80 % upper confidence limit
  s_d √((n - 1) / χ²_{0.2, n-1}) (Browne 1995): a pilot of three seeds estimates s_d with 2 df, so
  its own value is optimistic half the time.

This is computed once, before the release runs, and committed (``power.csv`` / ``.md`` beside the
protocol): recomputed after the runs it would be post-hoc. The pilot's per-seed differences are
stored in the CSV, so the numbers recompute from the file alone.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from gvae_bench.atomic import atomic_write_text
from gvae_bench.results.comparisons import _cell, commit_of
from gvae_bench.errors import UserError
from gvae_bench.results.protocol import Protocol
from gvae_bench.execution.records import RunRecord, RunStatus, now
from gvae_bench.results.stats import seeds_for_paired_power

FALLBACK_PILOT_PROFILE = "quick"
UPPER_SD_CONFIDENCE = 0.8


def _pilot_runs(records: list[RunRecord], model: str, profile: str) -> list[RunRecord]:
    from gvae_bench.results.collect import at_profile_settings

    runs = [r for r in records if r.model == model and r.profile == profile and r.status == RunStatus.FINISHED]
    if len({r.config_hash for r in runs}) > 1:
        runs = [r for r in runs if at_profile_settings(r)]
    return runs if len({r.config_hash for r in runs}) == 1 else []


def upper_sd(sd: float, n: int, confidence: float = UPPER_SD_CONFIDENCE) -> float:
    """One-sided upper confidence limit of a normal standard deviation from n values:
    s √((n - 1) / χ²_{1-confidence, n-1})."""
    return sd * math.sqrt((n - 1) / st.chi2.ppf(1.0 - confidence, n - 1))


def power_frame(records_by_dataset: dict[str, list[RunRecord]], protocol: Protocol) -> pd.DataFrame:
    """One row per dataset, primary metric and pair: the pilot and the seeds each test needs."""
    rows: list[dict[str, Any]] = []
    m = protocol.family_size()
    for dataset in protocol.datasets:
        records = records_by_dataset.get(dataset, [])
        for profile in (protocol.profile, FALLBACK_PILOT_PROFILE):
            runs = {model: _pilot_runs(records, model, profile) for model in protocol.models}
            if sum(bool(r) for r in runs.values()) >= 2:
                break
        for primary in sorted(protocol.primary, key=lambda p: p.metric):
            for a, b in itertools.combinations(sorted(protocol.models), 2):
                cell_a, cell_b = _cell(runs[a], primary.metric, a), _cell(runs[b], primary.metric, b)
                by_seed_b = dict(zip(cell_b.seeds, cell_b.values))
                pairs = [(s, v, by_seed_b[s]) for s, v in zip(cell_a.seeds, cell_a.values) if s in by_seed_b]
                diffs = np.array([va - vb for _, va, vb in pairs])
                row: dict[str, Any] = {
                    "dataset": dataset, "metric": primary.metric, "model_a": a, "model_b": b,
                    "pilot_profile": profile, "pilot_seeds": " ".join(str(s) for s, _, _ in pairs),
                    "pilot_commits": " ".join(sorted({commit_of(r) for r in runs[a] + runs[b] if r.seed in
                                                      {s for s, _, _ in pairs}})),
                    "pilot_differences": " ".join(repr(float(d)) for d in diffs),
                    "smallest_difference": primary.smallest_difference, "alpha": protocol.alpha,
                    "family_size": m, "power": protocol.power}
                if diffs.size < 2:
                    row.update({"sd_difference": math.nan, "effect_size": math.nan, "seeds_at_alpha": None,
                                "seeds_at_alpha_over_m": None, "seeds_at_upper_sd": None,
                                "note": f"pilot has {diffs.size} common seed(s): no spread"})
                    rows.append(row)
                    continue
                sd = float(np.std(diffs, ddof=1))
                upper = upper_sd(sd, diffs.size)
                n1, why1 = seeds_for_paired_power(sd, primary.smallest_difference, protocol.alpha, protocol.power)
                n2, why2 = seeds_for_paired_power(sd, primary.smallest_difference, protocol.alpha / m, protocol.power)
                n3, why3 = seeds_for_paired_power(upper, primary.smallest_difference, protocol.alpha / m, protocol.power)
                row.update({"sd_difference": sd, "effect_size": primary.smallest_difference / sd if sd > 0 else math.inf,
                            "seeds_at_alpha": n1, "seeds_at_alpha_over_m": n2, "seeds_at_upper_sd": n3,
                            "note": "; ".join(dict.fromkeys(w for w in (why1, why2, why3) if w))})
                rows.append(row)
    return pd.DataFrame(rows)


def _n(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))


def power_markdown(frame: pd.DataFrame, protocol: Protocol) -> str:
    declared = len(protocol.seeds)
    lines = [f"# A-priori power of protocol {protocol.label}", "",
             f"- built {now()}, before the release runs, from the pilot runs named in each row (`power.csv` holds their "
             "per-seed differences); method in `gvae_bench/power.py` and docs/protocol.md",
             f"- test: paired t by seed, two-sided; power {protocol.power}; alpha {protocol.alpha}; the family has "
             f"M = {protocol.family_size()} tests, so alpha / M = {protocol.alpha / protocol.family_size():.3g}",
             f"- the protocol declares {declared} seeds; a test whose `seeds at alpha / M` is at most {declared} is "
             "powered for the declared smallest difference even against the whole family's correction", ""]
    for metric, part in frame.groupby("metric", sort=True):
        delta = part.smallest_difference.iloc[0]
        lines += [f"## `{metric}`: smallest difference {delta:g}", "",
                  "| dataset | A | B | pilot (profile, seeds) | s_d | δ = Δ / s_d | seeds at alpha | seeds at alpha / M | "
                  "seeds at alpha / M, s_d at its 80 % upper limit | note |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.itertuples():
            lines.append(f"| {row.dataset} | {row.model_a} | {row.model_b} | {row.pilot_profile}, {row.pilot_seeds or '–'} "
                         f"| {row.sd_difference:.3g} | {row.effect_size:.3g} | {_n(row.seeds_at_alpha)} | "
                         f"{_n(row.seeds_at_alpha_over_m)} | {_n(row.seeds_at_upper_sd)} | {row.note} |")
        lines.append("")
    return "\n".join(lines)


def write_power(out: Path, protocol: Protocol, dest: Path) -> list[Path]:
    """Compute the a-priori table from the records under ``out`` and write ``dest/power.csv`` and ``.md``."""
    from gvae_bench.results.collect import read_records

    by_dataset = {d: read_records(Path(out), d) for d in protocol.datasets}
    if not any(by_dataset.values()):
        raise UserError(f"no pilot run records under {Path(out) / 'runs'} for {', '.join(protocol.datasets)}")
    frame = power_frame(by_dataset, protocol)
    paths = [Path(dest) / "power.csv", Path(dest) / "power.md"]
    atomic_write_text(paths[0], frame.to_csv(index=False))
    atomic_write_text(paths[1], power_markdown(frame, protocol))
    return paths
