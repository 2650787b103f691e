"""gvae_bench.stats against known answers: scipy/statsmodels themselves, closed forms, brute force."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from gvae_bench.stats import (Comparison, Interval, adjust, best_or_tied, compare, mean_interval,
                              rank_groups, separated_pairs)

# t_{2, 0.975} in closed form: for 2 df the t quantile is (2p - 1) / sqrt(2p(1 - p)).
T_2_975 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.302652729749464


def test_t_quantile_closed_form():
    assert T_2_975 == pytest.approx(st.t.ppf(0.975, 2), rel=1e-14)
    assert T_2_975 == pytest.approx(4.302652729911275, rel=1e-9)  # the value printed in tables


# ---------------------------------------------------------------- intervals

def test_interval_closed_form_one_two_three():
    iv = mean_interval([1.0, 2.0, 3.0])
    half = T_2_975 / math.sqrt(3)  # s = 1
    assert isinstance(iv, Interval)
    assert (iv.mean, iv.std, iv.n) == (2.0, 1.0, 3)
    assert iv.low == pytest.approx(2.0 - half, rel=1e-12)
    assert iv.high == pytest.approx(2.0 + half, rel=1e-12)
    assert "t" in iv.method


def test_interval_matches_scipy_t_interval():
    x = np.array([0.31, 0.27, 0.35, 0.29, 0.40])
    for conf in (0.9, 0.95, 0.99):
        iv = mean_interval(x, confidence=conf)
        low, high = st.t.interval(conf, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(len(x)))
        assert iv.low == pytest.approx(low, rel=1e-12) and iv.high == pytest.approx(high, rel=1e-12)
        assert iv.std == pytest.approx(x.std(ddof=1))


def test_interval_small_n_nan_and_zero_spread():
    one = mean_interval([0.7])
    assert one.mean == 0.7 and one.n == 1 and one.method == "one seed: no interval"
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.std)
    none = mean_interval([])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.low, none.high))
    assert mean_interval([float("nan"), 0.7]).method == "one seed: no interval"  # NaN dropped
    assert mean_interval([1.0, float("nan"), 2.0, 3.0]).low == pytest.approx(2.0 - T_2_975 / math.sqrt(3))
    flat = mean_interval([0.5, 0.5, 0.5])
    assert (flat.low, flat.high, flat.std) == (0.5, 0.5, 0.0)
    with pytest.raises(ValueError):
        mean_interval([1.0, 2.0], confidence=95)


# ---------------------------------------------------------------- tests of a difference

A5 = [0.81, 0.79, 0.84, 0.80, 0.83]
B5 = [0.78, 0.77, 0.80, 0.79, 0.74]


def test_welch_matches_scipy():
    c = compare(A5, B5, higher_is_better=True)
    ref = st.ttest_ind(A5, B5, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.test == "welch"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))
    assert c.difference == pytest.approx(np.mean(A5) - np.mean(B5))
    assert (c.n_a, c.n_b, c.verdict) == (5, 5, "")
    assert math.isnan(c.p_adjusted)


def test_paired_by_seed_matches_ttest_rel_and_aligns_seeds():
    seeds = [0, 1, 2, 3, 4]
    perm = [3, 0, 4, 1, 2]  # B's values listed in another seed order
    c = compare(A5, [B5[i] for i in perm], higher_is_better=True, a_seeds=seeds, b_seeds=perm)
    ref = st.ttest_rel(A5, B5)
    ci = ref.confidence_interval(0.95)
    assert c.test == "paired t by seed"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))


def test_pairing_rules():
    seeds = [0, 1, 2, 3, 4]
    assert compare(A5, B5, True, a_seeds=seeds, b_seeds=seeds, paired=False).test == "welch"
    assert compare(A5, B5, True, a_seeds=seeds, b_seeds=[0, 1, 2, 3, 9]).test == "welch"
    assert compare(A5, B5, True, a_seeds=[0, 0, 1, 2, 3], b_seeds=[0, 0, 1, 2, 3]).test == "welch"
    assert compare(A5, B5, True, a_seeds=seeds).test == "welch"
    with pytest.raises(ValueError):
        compare(A5, B5, True, paired=True)
    with pytest.raises(ValueError):
        compare(A5, B5, True, a_seeds=[0, 1], b_seeds=seeds)  # seeds do not match the values
    # A NaN value goes with its seed; the remaining seeds differ, so Welch.
    a_nan = [float("nan")] + A5[1:]
    c = compare(a_nan, B5, True, a_seeds=seeds, b_seeds=seeds)
    assert c.test == "welch" and c.n_a == 4
    assert c.p_value == pytest.approx(st.ttest_ind(A5[1:], B5, equal_var=False).pvalue)


def test_one_seed_no_interval_no_test():
    c = compare([0.8], [0.7, 0.75, 0.72], higher_is_better=True)
    assert c.test == "none" and math.isnan(c.p_value) and math.isnan(c.low) and math.isnan(c.high)
    assert c.reason == "needs >= 2 seeds per model; A has 1"
    assert c.seeds_for_power is None and c.power_reason
    assert c.difference == pytest.approx(0.8 - np.mean([0.7, 0.75, 0.72]))
    [adj] = adjust([c])
    assert adj.verdict == "no test" and math.isnan(adj.p_adjusted)
    assert "B has 0" in compare([0.1, 0.2], [], True).reason


def test_zero_variance_is_explicit():
    same = compare([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], True)
    assert (same.p_value, same.low, same.high) == (1.0, 0.0, 0.0) and "zero variance" in same.note
    diff = compare([0.5, 0.5, 0.5], [0.4, 0.4, 0.4], True)
    assert diff.p_value == 0.0 and diff.difference == pytest.approx(0.1) and diff.note
    assert diff.seeds_for_power is None and "zero spread" in diff.power_reason
    assert adjust([diff])[0].verdict == "A better"
    assert adjust([same])[0].verdict == "not separated"
    # paired: constant per-seed difference
    shift = compare([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], True, a_seeds=[1, 2, 3], b_seeds=[1, 2, 3])
    assert shift.test == "paired t by seed" and shift.p_value == 0.0 and shift.low == shift.high == 0.5


# ---------------------------------------------------------------- Holm

def _holm_brute(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):  # rank 0 ↔ i = 1 in p_(i) · (m - i + 1)
        running = max(running, p[i] * (m - rank))
        out[i] = min(1.0, running)
    return out


def _with_p(p: float, difference: float = 1.0, higher_is_better: bool = True) -> Comparison:
    test = "none" if math.isnan(p) else "welch"
    return Comparison(mean_a=difference, mean_b=0.0, n_a=3, n_b=3, difference=difference, low=0.0,
                      high=0.0, confidence=0.95, test=test, p_value=p, higher_is_better=higher_is_better)


def test_holm_matches_multipletests_and_brute_force():
    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5]
    out = adjust([_with_p(x) for x in p])
    ref = multipletests(p, alpha=0.05, method="holm")[1]
    brute = _holm_brute(p)
    assert [c.p_adjusted for c in out] == pytest.approx(list(ref), rel=1e-12)
    assert [c.p_adjusted for c in out] == pytest.approx(brute, rel=1e-12)
    assert [c.verdict for c in out] == ["A better" if b < 0.05 else "not separated" for b in brute]


def test_holm_leaves_untested_out_of_the_family():
    p = [0.01, float("nan"), 0.02]
    out = adjust([_with_p(x) for x in p])
    assert out[0].p_adjusted == pytest.approx(0.02) and out[2].p_adjusted == pytest.approx(0.02)
    assert math.isnan(out[1].p_adjusted) and out[1].verdict == "no test"
    assert adjust([]) == []


def test_verdict_direction_respects_higher_is_better():
    cases = {(1.0, True): "A better", (-1.0, True): "B better",
             (1.0, False): "B better", (-1.0, False): "A better"}
    for (d, hib), verdict in cases.items():
        assert adjust([_with_p(0.001, d, hib)])[0].verdict == verdict


# ---------------------------------------------------------------- power

def test_seeds_for_power_matches_statsmodels():
    a, b = np.array(A5), np.array(B5)
    pooled = math.sqrt((4 * a.var(ddof=1) + 4 * b.var(ddof=1)) / 8)
    d = abs(a.mean() - b.mean()) / pooled
    ref = TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.0,
                                      alternative="two-sided")
    assert compare(A5, B5, True).seeds_for_power == math.ceil(ref)
    # the paired test reports the same (independent-samples) count
    assert compare(A5, B5, True, a_seeds=range(5), b_seeds=range(5)).seeds_for_power == math.ceil(ref)


def test_seeds_for_power_sanity():
    z = np.array([-1.0, 0.0, 1.0])  # sd 1, so d = shift / 0.01
    huge = compare(1.0 + 0.01 * z, 0.9 + 0.01 * z, True)  # d = 10
    assert huge.seeds_for_power in (2, 3)
    assert compare(1.0 + z, 0.0 + z, True).seeds_for_power == 17  # d = 1 (Cohen: 17 per group)
    tiny = compare(1.0 + z, 0.9 + z, True)  # d = 0.1
    assert tiny.seeds_for_power is not None and tiny.seeds_for_power > 1000
    none = compare([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], True)
    assert none.seeds_for_power is None and "zero difference" in none.power_reason
    assert compare(1.0 + z, 1.0 - 1e-5 + z, True).seeds_for_power is None  # beyond the cap


# ---------------------------------------------------------------- what three seeds can and cannot say

def test_close_pair_with_three_seeds_is_not_separated():
    a, b = [0.80, 0.85, 0.75], [0.79, 0.84, 0.76]  # means 0.02 apart, spread 0.05
    [c] = adjust([compare(a, b, True)])
    assert c.verdict == "not separated"
    means = {"A": float(np.mean(a)), "B": float(np.mean(b))}
    sep = separated_pairs({("A", "B"): c})
    assert sep == set()
    assert best_or_tied(["A", "B"], means, True, sep) == {"A", "B"}
    letters = rank_groups(["A", "B"], means, True, sep)
    assert set(letters["A"]) & set(letters["B"]) and letters == {"A": "a", "B": "a"}


def test_ten_seeds_separate_what_three_do_not():
    z3 = np.array([-1.0, 0.0, 1.0])
    z10 = np.linspace(-1.0, 1.0, 10)
    z10 = (z10 - z10.mean()) / z10.std(ddof=1)  # sd 1 as well: d = 1 in both cases
    for z, verdict in ((z3, "not separated"), (z10, "B better")):
        a, b = 1.0 + 0.3 * z, 1.3 + 0.3 * z[::-1]
        [c] = adjust([compare(a, b, higher_is_better=True)])
        assert c.test == "welch" and c.verdict == verdict, (len(z), c.p_value)
        assert c.seeds_for_power == 17
    [lower] = adjust([compare(1.0 + 0.3 * z10, 1.3 + 0.3 * z10, higher_is_better=False)])
    assert lower.verdict == "A better"


def test_permutation_test_with_three_seeds_cannot_reach_005():
    def diff(x, y, axis):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    res = st.permutation_test(([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]), diff, vectorized=True,
                              permutation_type="independent", alternative="two-sided")
    assert math.comb(6, 3) == 20 == len(res.null_distribution)
    assert res.pvalue == pytest.approx(2 / 20)
    # the Welch test on the same samples does separate them
    assert compare([1.0, 2.0, 3.0], [10.0, 11.0, 12.0], False).p_value < 0.001


# ---------------------------------------------------------------- letters

def test_letters_non_transitive():
    means = {"A": 3.0, "B": 2.0, "C": 1.0}
    sep = {frozenset(("A", "C"))}
    assert rank_groups(["C", "A", "B"], means, True, sep) == {"A": "a", "B": "ab", "C": "b"}
    assert rank_groups(["A", "B", "C"], means, True, lambda x, y: {x, y} == {"A", "C"}) == \
        {"A": "a", "B": "ab", "C": "b"}
    assert best_or_tied(["A", "B", "C"], means, True, sep) == {"A", "B"}
    # lower is better: C is best and gets 'a'
    assert rank_groups(["A", "B", "C"], means, False, sep) == {"C": "a", "B": "ab", "A": "b"}


def test_letters_all_separated_and_none_separated():
    names = ["w", "x", "y", "z"]
    means = dict(zip(names, [4.0, 3.0, 2.0, 1.0]))
    all_sep = {frozenset(p) for p in itertools.combinations(names, 2)}
    assert rank_groups(names, means, True, all_sep) == {"w": "a", "x": "b", "y": "c", "z": "d"}
    assert rank_groups(names, means, True, set()) == dict.fromkeys(names, "a")
    assert best_or_tied(names, means, True, all_sep) == {"w"}
    assert rank_groups([], {}, True, set()) == {} and best_or_tied([], {}, True, set()) == set()


def _check_letters(names, means, sep, letters):
    best = max(names, key=lambda n: means[n])
    assert "a" in letters[best]
    for n in names:
        assert letters[n], n
    for x, y in itertools.combinations(names, 2):
        shares = bool(set(letters[x]) & set(letters[y]))
        assert shares == (frozenset((x, y)) not in sep), (x, y, letters)
    used = sorted(set("".join(letters.values())))
    assert "".join(used) == "abcdefghijklmnopqrstuvwxyz"[:len(used)]
    for drop in used:  # no redundant letter: dropping any one breaks a row or a pair
        rest = {n: set(v) - {drop} for n, v in letters.items()}
        ok = all(rest.values()) and all(
            bool(rest[x] & rest[y]) for x, y in itertools.combinations(names, 2)
            if frozenset((x, y)) not in sep)
        assert not ok, (drop, letters)


def test_letters_redundant_clique_is_swept():
    # 1, 2, 3 are mutually tied, and each pair of them is also tied with its own extra row:
    # the letter of {1, 2, 3} covers nothing the others do not, so it must not be kept.
    names = ["1", "2", "3", "x", "y", "z"]
    means = dict(zip(names, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]))
    tied = {frozenset(p) for p in [("1", "2"), ("2", "3"), ("1", "3"), ("1", "x"), ("2", "x"),
                                   ("2", "y"), ("3", "y"), ("1", "z"), ("3", "z")]}
    sep = {frozenset(p) for p in itertools.combinations(names, 2)} - tied
    letters = rank_groups(names, means, True, sep)
    _check_letters(names, means, sep, letters)
    assert len(set("".join(letters.values()))) == 3


def test_letters_random_graphs_brute_force():
    rng = np.random.default_rng(20040)
    for _ in range(200):
        k = int(rng.integers(1, 8))
        names = [f"m{i}" for i in range(k)]
        means = {n: float(v) for n, v in zip(names, rng.permutation(k))}
        sep = {frozenset(p) for p in itertools.combinations(names, 2) if rng.random() < 0.5}
        letters = rank_groups(names, means, True, sep)
        _check_letters(names, means, sep, letters)
        best = max(names, key=lambda n: means[n])
        assert best_or_tied(names, means, True, sep) == {best} | {
            n for n in names if frozenset((best, n)) not in sep}


# ---------------------------------------------------------------- hygiene

def test_module_imports_no_models_metrics_or_benchmarks():
    code = ("import sys, gvae_bench.stats; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['gvae_bench', 'models'], "
            "['gvae_bench', 'metrics'], ['gvae_bench', 'benchmarks']) or m.split('.')[0] in "
            "('models', 'metrics', 'benchmarks', 'torch')]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
