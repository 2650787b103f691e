"""Independent recomputation of the committed tables: every interval of every measured cell and every
p, interval and Holm-adjusted p of every comparisons.csv, from runs.csv alone, with scipy and
statsmodels called directly (not through gvae_bench.results.stats), to 1e-12."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from gvae_bench.results.stats import range_of

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"
BOARDS = REFERENCE / "leaderboards"
DATASETS = sorted(p.name for p in BOARDS.iterdir() if (p / "comparisons.csv").is_file() and (p / "runs.csv").is_file())
TESTED = ("paired t by seed", "welch")


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"config_hash": str, "config_a": str,
                                                                          "config_b": str, "seeds": str})


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def _interval(x: np.ndarray, name: str, resolution: float | None) -> tuple[float, float]:
    """The t interval on the metric's scale, mapped back (written out again from the definition)."""
    bounds = range_of(name)
    lo, hi = bounds.low, bounds.high
    if np.ptp(x) <= 1e-12 * np.max(np.abs(x)):
        return float(np.mean(x)), float(np.mean(x))
    if math.isfinite(lo) and math.isfinite(hi):
        r = min((resolution or 1e-9 * (hi - lo)) / (hi - lo), 0.25)
        u = np.clip((x - lo) / (hi - lo), r, 1 - r)
        y, back = np.log(u / (1 - u)), (lambda v: lo + (hi - lo) / (1 + math.exp(-v)))
    elif math.isfinite(lo):
        r = resolution or 1e-9 * (float(np.max(np.abs(x - lo))) or 1.0)
        y, back = np.log(np.maximum(x - lo, r)), (lambda v: lo + math.exp(v))
    else:
        y, back = x, float
    if np.ptp(y) <= 1e-12 * np.max(np.abs(y)):
        return back(float(np.mean(y))), back(float(np.mean(y)))
    half = st.t.ppf(0.975, y.size - 1) * np.std(y, ddof=1) / math.sqrt(y.size)
    a, b = back(float(np.mean(y) - half)), back(float(np.mean(y) + half))
    return min(a, b), max(a, b)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_committed_cell_interval_recomputes_from_runs_csv(dataset):
    runs = _csv(BOARDS / dataset / "runs.csv")
    runs = runs[(runs.status == "finished") & runs.metric.notna()]
    checked, with_interval = 0, 0
    for path in sorted((BOARDS / dataset).glob("table*.csv")):
        if path.name == "table7_bounds.csv":
            continue
        table = _csv(path)
        names = [c[: -len("_ci_low")] for c in table.columns if c.endswith("_ci_low")]
        for row in table[table.row_kind == "measured"].itertuples():
            mine = runs[(runs.model == row.model) & (runs.profile == row.profile) & (runs.config_hash == row.config_hash)]
            for name in names:
                low, high, n = getattr(row, f"{name}_ci_low"), getattr(row, f"{name}_ci_high"), getattr(row, f"{name}_n")
                if math.isnan(getattr(row, f"{name}_mean")) or n < 2:
                    continue
                with_interval += 1
                cell = mine[mine.metric == name]
                x = cell.value.to_numpy(float)
                counts = np.maximum(cell.n_generated.fillna(0).to_numpy(float), cell.n_real.fillna(0).to_numpy(float))
                resolution = 0.5 / counts.min() if counts.size and counts.min() > 0 else None
                assert x.size == n, (path.name, row.model, name)
                expected = _interval(x, name, resolution)
                assert _close(low, expected[0]) and _close(high, expected[1]), (path.name, row.model, row.profile, name)
                bounds = range_of(name)
                assert bounds.low <= low <= high <= bounds.high, (path.name, row.model, name, low, high)
                checked += 1
    assert checked == with_interval  # ct_folder has one seed a row: no interval to check


def _labels(dataset: str) -> dict[tuple[str, str, str], str]:
    """(table, profile, row label) -> config hash, the way the comparisons name the rows."""
    found = {}
    for path in (BOARDS / dataset).glob("table*.csv"):
        if path.name == "table7_bounds.csv":
            continue
        table = _csv(path)
        measured = table[table.row_kind == "measured"]
        for row in measured.itertuples():
            several = ((measured.model == row.model) & (measured.profile == row.profile)).sum() > 1
            label = row.model
            if several:
                label = f"{row.model} (latent {int(row.latent_dim)})" if not pd.isna(row.latent_dim) else f"{row.model} ({row.config_hash})"
            found[(path.stem, row.profile, label)] = row.config_hash
            found[(path.stem, "across profiles", f"{row.model} ({row.profile})")] = row.config_hash
    return found


def _by_row(runs: pd.DataFrame) -> dict[tuple[str, str, str, str], dict[int, float]]:
    """(model, profile, config hash, metric) -> {seed: value}."""
    found: dict[tuple[str, str, str, str], dict[int, float]] = defaultdict(dict)
    for row in runs.itertuples():
        found[(row.model, row.profile, row.config_hash, row.metric)][int(row.seed)] = float(row.value)
    return found


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_committed_comparison_and_holm_value_recomputes_from_runs_csv(dataset):
    runs = _csv(BOARDS / dataset / "runs.csv")
    runs = runs[(runs.status == "finished") & runs.metric.notna()]
    pairs = _csv(BOARDS / dataset / "comparisons.csv")
    labels = _labels(dataset)
    values = _by_row(runs)
    family = _csv(REFERENCE / "confirmatory.csv") if (REFERENCE / "confirmatory.csv").is_file() else None
    exploratory: dict[tuple[str, str], dict[tuple[str, str], float]] = defaultdict(dict)
    for row in pairs.itertuples():
        if row.test not in TESTED:
            assert math.isnan(row.p_value) and row.verdict in ("no test", "n/a")
            continue
        model_a, model_b = row.model_a.split(" (")[0], row.model_b.split(" (")[0]
        config_a, config_b = labels[(row.table, row.profile, row.model_a)], labels[(row.table, row.profile, row.model_b)]
        profile_a = row.model_a.split(" (")[1][:-1] if row.profile == "across profiles" else row.profile
        profile_b = row.model_b.split(" (")[1][:-1] if row.profile == "across profiles" else row.profile
        a = values[(model_a, profile_a, config_a, row.metric)]
        b = values[(model_b, profile_b, config_b, row.metric)]
        if row.role == "confirmatory":
            seeds = [int(s) for s in family[(family.dataset == dataset) & (family.metric == row.metric) & (
                family.model_a == row.model_a) & (family.model_b == row.model_b)].seeds.iloc[0].split()]
            a, b = {s: a[s] for s in seeds}, {s: b[s] for s in seeds}
        if row.role == "exploratory":
            exploratory[(row.metric, row.profile)][(config_a + profile_a, config_b + profile_b)] = row.p_value
        if "zero variance" in str(row.note):  # p set to 0 or 1 by definition (gvae_bench.results.stats.compare)
            assert row.p_value in (0.0, 1.0)
            continue
        if row.test == "paired t by seed":
            seeds = sorted(a)
            assert seeds == sorted(b)
            res = st.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
        else:
            res = st.ttest_ind(list(a.values()), list(b.values()), equal_var=False)
        ci = res.confidence_interval(0.95)
        assert _close(row.p_value, float(res.pvalue)), (row.table, row.metric, row.model_a, row.model_b)
        assert _close(row.ci_low, float(ci.low)) and _close(row.ci_high, float(ci.high))
    # exploratory Holm: over the distinct pairs of one metric and profile, whichever tables show them
    for row in pairs[(pairs.role == "exploratory") & pairs.test.isin(TESTED)].itertuples():
        family_p = exploratory[(row.metric, row.profile)]
        keys = list(family_p)
        adjusted = dict(zip(keys, multipletests([family_p[k] for k in keys], method="holm")[1]))
        profile_a = row.model_a.split(" (")[1][:-1] if row.profile == "across profiles" else row.profile
        profile_b = row.model_b.split(" (")[1][:-1] if row.profile == "across profiles" else row.profile
        key = (labels[(row.table, row.profile, row.model_a)] + profile_a, labels[(row.table, row.profile, row.model_b)] + profile_b)
        assert _close(row.p_holm, float(adjusted[key])), (row.table, row.metric, row.model_a, row.model_b)
    # confirmatory Holm: the whole family at once (a test not made counts as p = 1), the same value in every table
    if family is not None and (pairs.role == "confirmatory").any():
        p = family.p_value.fillna(1.0).to_numpy(float)
        adjusted = multipletests(p, method="holm")[1]
        made = family.p_value.notna().to_numpy()
        assert np.allclose(family.p_holm.to_numpy(float)[made], adjusted[made], rtol=1e-12, atol=0)
        for row in pairs[pairs.role == "confirmatory"].itertuples():
            match = family[(family.dataset == dataset) & (family.metric == row.metric) & (family.model_a == row.model_a)
                           & (family.model_b == row.model_b)]
            assert len(match) == 1 and _close(row.p_holm, float(match.p_holm.iloc[0]))
