"""A-priori power of a study protocol: how many seeds each confirmatory test needs, from a pilot.

For each declared pair of models and primary metric of each declared dataset, the pilot (runs made
before the protocol's own: for the reference release, the committed ``tuned`` runs at n = 3; a
dataset with none falls back to its ``quick`` runs, and the table says so) gives the per-seed
differences d_i = a_i - b_i on the seeds both models ran, and their standard deviation s_d. The
protocol's test is the paired t-test, a one-sample t-test on d, so the seeds it needs to detect the
declared smallest difference Δ with the declared power at two-sided level α follow from the
effect δ = Δ / s_d (``seeds_for_paired_power``, statsmodels ``TTestPower``). Three columns:

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
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.stats.power import TTestPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from gvae_bench.atomic import atomic_write_text
from gvae_bench.results.comparisons import _cell, commit_of
from gvae_bench.errors import UserError
from gvae_bench.results.protocol import Protocol
from gvae_bench.results.release import profile_runs
from gvae_bench.execution.records import RunRecord, now

MAX_SEEDS_FOR_POWER = 10_000
FALLBACK_PILOT_PROFILE = "quick"
UPPER_SD_CONFIDENCE = 0.8


def _paired_power(analysis: TTestPower, effect: float, n: int, alpha: float) -> float:
    """Power of the two-sided one-sample t-test on n differences at standardised effect ``effect``:
    statsmodels' value, or where scipy's noncentral t gives NaN (a large noncentrality, e.g. δ √n
    above about 15) the same probability integrated over the chi-square of the variance estimate:
    power = ∫ [Φ(δ√n - t_c √(v/ν)) + Φ(-δ√n - t_c √(v/ν))] χ²_ν(v) dv, ν = n - 1, t_c = t_{ν, 1-α/2}."""
    value = float(analysis.power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided"))
    if math.isfinite(value):
        return value
    from scipy import integrate

    df, nc = n - 1, effect * math.sqrt(n)
    critical = float(st.t.ppf(1 - alpha / 2, df))

    def integrand(v: float) -> float:
        scale = critical * math.sqrt(v / df)
        return float((st.norm.cdf(nc - scale) + st.norm.cdf(-nc - scale)) * st.chi2.pdf(v, df))

    return float(integrate.quad(integrand, 0, math.inf)[0])


def seeds_for_paired_power(sd_difference: float, smallest_difference: float, alpha: float,
                           power: float = 0.8) -> tuple[int | None, str]:
    """Seeds a two-sided paired t-test needs to detect ``smallest_difference`` with ``power``, a priori.

    The paired t-test is a one-sample t-test on the per-seed differences d_i = a_i - b_i, so its
    power depends on the standardised effect δ = Δ / σ_d (Δ the smallest difference worth
    detecting, σ_d the standard deviation of the differences, taken from a pilot study) and n, the
    number of pairs: power = P(|T| > t_{n-1, 1-α/2}) with T noncentral t, n - 1 df, noncentrality
    δ √n (Cohen 1988, ch. 2; statsmodels ``TTestPower().solve_power``). Returns the smallest such n
    (at least 2, rounded up), or None and why (no spread, or more than MAX_SEEDS_FOR_POWER).
    """
    if not (math.isfinite(sd_difference) and math.isfinite(smallest_difference)):
        return None, "spread or difference undefined"
    if smallest_difference <= 0:
        raise ValueError(f"smallest_difference must be > 0, got {smallest_difference}")
    if sd_difference <= 0:
        return None, "zero spread of the differences: any difference is detected"
    effect = smallest_difference / sd_difference
    analysis = TTestPower()
    kwargs = dict(effect_size=effect, alpha=alpha, alternative="two-sided")
    # two pairs are the fewest with a degree of freedom; power rises with n, so small answers are
    # found by counting up (statsmodels' root finder fails for large effects at small n)
    for n in range(2, 101):
        if _paired_power(analysis, effect, n, alpha) >= power:
            return n, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nobs = float(analysis.solve_power(power=power, **kwargs))
    if not math.isfinite(nobs):
        return None, f"power solver did not converge (effect {effect:.3g})"
    if nobs > MAX_SEEDS_FOR_POWER:
        return None, f"more than {MAX_SEEDS_FOR_POWER} seeds (effect {effect:.3g})"
    return max(2, math.ceil(nobs - 1e-9)), ""


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
            runs = {model: profile_runs(records, model, profile)[0] for model in protocol.models}
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
             "per-seed differences); method in `gvae_bench/results/power.py` and docs/protocol.md",
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
